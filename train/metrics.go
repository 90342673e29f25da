package train

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// metricsHeader is the first line of metrics.csv. Rows written during an
// epoch carry the training columns, the means since the row before; the
// row written after each evaluation carries the test columns and, as
// train_loss, the mean over the whole epoch (or the part of it trained).
// Empty cells are values not measured.
var metricsHeader = []string{"step", "epoch", "train_loss", "train_top1", "test_loss", "test_top1", "test_top5", "lr", "images_per_s", "wall_s"}

// Metric is one row of metrics.csv. Accuracies are fractions in [0, 1];
// a NaN field is written as an empty cell.
type Metric struct {
	Step      int64   // optimizer steps done
	Epoch     float64 // epochs done, fractional within an epoch
	TrainLoss float64 // running mean of the training loss since the previous row
	TrainTop1 float64 // training top-1 accuracy since the previous row
	TestLoss  float64
	TestTop1  float64
	TestTop5  float64
	LR        float64
	ImagesPS  float64 // training images per second since the previous row
	WallS     float64 // seconds of training since the run began, across resumes
}

func fmtCell(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 7, 64)
}

func (m Metric) record() []string {
	return []string{strconv.FormatInt(m.Step, 10), strconv.FormatFloat(m.Epoch, 'f', 4, 64),
		fmtCell(m.TrainLoss), fmtCell(m.TrainTop1), fmtCell(m.TestLoss), fmtCell(m.TestTop1),
		fmtCell(m.TestTop5), fmtCell(m.LR), fmtCell(m.ImagesPS), strconv.FormatFloat(m.WallS, 'f', 2, 64)}
}

// metricsLog appends rows to metrics.csv and keeps them for the plot.
type metricsLog struct {
	path string
	f    *os.File
	w    *csv.Writer
	rows []Metric
}

// openMetrics opens path for appending. When size >= 0 the file is first
// cut to size bytes, dropping rows written after the checkpoint a resumed
// run starts from; the rows that remain are read back for the plot.
func openMetrics(path string, size int64) (*metricsLog, error) {
	flags := os.O_RDWR | os.O_CREATE
	if size < 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m := &metricsLog{path: path, f: f}
	if size >= 0 {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("metrics: cut %s to its checkpointed size: %w", path, err)
		}
		if m.rows, err = readMetrics(io.LimitReader(f, size)); err != nil {
			f.Close()
			return nil, fmt.Errorf("metrics: %s: %w", path, err)
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m.w = csv.NewWriter(f)
	if size <= 0 {
		m.w.Write(metricsHeader)
		m.w.Flush()
		if err := m.w.Error(); err != nil {
			f.Close()
			return nil, fmt.Errorf("metrics: write %s: %w", path, err)
		}
	}
	return m, nil
}

// add appends one row and flushes it to the file.
func (m *metricsLog) add(r Metric) error {
	m.rows = append(m.rows, r)
	m.w.Write(r.record())
	m.w.Flush()
	if err := m.w.Error(); err != nil {
		return fmt.Errorf("metrics: write %s: %w", m.path, err)
	}
	return nil
}

// size is the file's current length in bytes, recorded in checkpoints.
func (m *metricsLog) size() (int64, error) {
	if err := m.f.Sync(); err != nil {
		return 0, fmt.Errorf("metrics: sync %s: %w", m.path, err)
	}
	fi, err := m.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	return fi.Size(), nil
}

func (m *metricsLog) close() error { return m.f.Close() }

// readMetrics parses metrics.csv as written by metricsLog.
func readMetrics(r io.Reader) ([]Metric, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = len(metricsHeader)
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	var out []Metric
	for i, rec := range recs {
		if i == 0 {
			continue // header
		}
		vals := make([]float64, len(rec))
		for j, s := range rec {
			if s == "" {
				vals[j] = math.NaN()
				continue
			}
			if vals[j], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("line %d, column %s: %w", i+1, metricsHeader[j], err)
			}
		}
		out = append(out, Metric{Step: int64(vals[0]), Epoch: vals[1], TrainLoss: vals[2], TrainTop1: vals[3],
			TestLoss: vals[4], TestTop1: vals[5], TestTop5: vals[6], LR: vals[7], ImagesPS: vals[8], WallS: vals[9]})
	}
	return out, nil
}
