//go:build unix

package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/model"
	"github.com/alexcl/alexcl/model/safetensors"
	"github.com/alexcl/alexcl/train"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// alexclBinary builds the real alexcl command once per test binary, as CI
// does (CGO_ENABLED=0), so tests can signal and kill it.
func alexclBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the alexcl binary")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "alexcl-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "alexcl")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// smallMNIST writes the first nTrain training and nTest test digits of the
// MNIST copy in package data as plain IDX files, for runs whose epochs
// take a fraction of a second.
func smallMNIST(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	dir := t.TempDir()
	for _, split := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		for _, kind := range []struct {
			name string
			dims int
		}{{"images-idx3-ubyte", 3}, {"labels-idx1-ubyte", 1}} {
			f, err := os.Open(filepath.Join("..", "..", "data", "mnist", split.prefix+"-"+kind.name+".gz"))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			header := make([]uint32, 1+kind.dims)
			if err := binary.Read(zr, binary.BigEndian, header); err != nil {
				t.Fatal(err)
			}
			rec := 1
			for _, d := range header[2:] {
				rec *= int(d)
			}
			header[1] = uint32(split.n)
			body := make([]byte, split.n*rec)
			if _, err := io.ReadFull(zr, body); err != nil {
				t.Fatal(err)
			}
			f.Close()
			var b bytes.Buffer
			binary.Write(&b, binary.BigEndian, header)
			b.Write(body)
			if err := os.WriteFile(filepath.Join(dir, split.prefix+"-"+kind.name), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// waitForStep polls out/state.json until it records at least step steps,
// or the process exits.
func waitForStep(t *testing.T, out string, step int64, exited <-chan struct{}, stderr *syncBuffer) train.State {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if st, err := train.ReadState(out); err == nil && st.Step >= step {
			return st
		}
		select {
		case <-exited:
			t.Fatalf("alexcl exited before step %d:\n%s", step, stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("no checkpoint at step %d after 2 minutes:\n%s", step, stderr.String())
	return train.State{}
}

// syncBuffer is a bytes.Buffer safe for a process to write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTrain starts alexcl with args; exited is closed when it ends.
func startTrain(t *testing.T, bin string, args ...string) (cmd *exec.Cmd, stderr *syncBuffer, exited chan struct{}, waitErr *error) {
	t.Helper()
	cmd = exec.Command(bin, args...)
	stderr = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan struct{})
	waitErr = new(error)
	go func() {
		*waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return cmd, stderr, exited, waitErr
}

// TestKillAndResumeBitExact kills a real `alexcl train` with SIGKILL after
// its first checkpoints, resumes it with `alexcl train --resume --out DIR`,
// and checks that the final weights and velocities equal, bit for bit,
// those of an uninterrupted run on the CPU device (dropout, shuffling and
// the step schedule on).
func TestKillAndResumeBitExact(t *testing.T) {
	bin := alexclBinary(t)
	netFile := narrowNetworkFile(t)
	dataSpec := "mnist:" + smallMNIST(t, 480, 64) // 15 steps of 32 per epoch
	dir := t.TempDir()
	args := func(out string) []string {
		return []string{"train", "--config", netFile, "--device", "cpu", "--data", dataSpec, "--batch", "32",
			"--epochs", "100", "--max-steps", "100", "--checkpoint-every", "4", "--out", out}
	}
	ref := filepath.Join(dir, "ref")
	if out, err := exec.Command(bin, args(ref)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}

	killed := filepath.Join(dir, "killed")
	cmd, stderr, exited, _ := startTrain(t, bin, args(killed)...)
	waitForStep(t, killed, 20, exited, stderr)
	time.Sleep(30 * time.Millisecond) // land inside a step or a checkpoint, not right after one
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	st, err := train.ReadState(killed)
	if err != nil {
		t.Fatal(err)
	}
	if st.Finished || st.Step >= 100 {
		t.Fatalf("the run finished (step %d) before SIGKILL landed; raise --max-steps", st.Step)
	}
	t.Logf("killed after the checkpoint at step %d", st.Step)

	out, err := exec.Command(bin, "train", "--resume", "--out", killed).CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "resuming at step") {
		t.Errorf("resume output does not say where it resumed:\n%s", out)
	}
	refSt, err := train.ReadState(ref)
	if err != nil {
		t.Fatal(err)
	}
	resSt, err := train.ReadState(killed)
	if err != nil {
		t.Fatal(err)
	}
	if refSt.Step != 100 || resSt.Step != 100 || !resSt.Finished {
		t.Fatalf("steps: uninterrupted %d, resumed %d (finished %v); want 100", refSt.Step, resSt.Step, resSt.Finished)
	}
	sameTensorBits(t, filepath.Join(ref, train.LastFile), filepath.Join(killed, train.LastFile))
	sameTensorBits(t, filepath.Join(ref, refSt.Velocity), filepath.Join(killed, resSt.Velocity))
	if refSt.Schedule != resSt.Schedule || refSt.BestTop1 != resSt.BestTop1 {
		t.Errorf("schedule or best differ: %+v / %v vs %+v / %v", refSt.Schedule, refSt.BestTop1, resSt.Schedule, resSt.BestTop1)
	}
}

// TestSignalSavesCheckpoint sends SIGINT (Ctrl-C) and SIGTERM to a real
// `alexcl train`: each finishes its step, saves a checkpoint that loads,
// prints where it is and the command that resumes, and exits non-zero.
func TestSignalSavesCheckpoint(t *testing.T) {
	bin := alexclBinary(t)
	netFile := narrowNetworkFile(t)
	dataSpec := "mnist:" + smallMNIST(t, 480, 64)
	mc, err := model.LoadConfig(netFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		out := filepath.Join(t.TempDir(), "run")
		cmd, stderr, exited, waitErr := startTrain(t, bin, "train", "--config", netFile, "--device", "cpu", "--data", dataSpec,
			"--batch", "32", "--epochs", "100", "--max-steps", "2000", "--checkpoint-every", "3", "--out", out)
		waitForStep(t, out, 3, exited, stderr)
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-exited:
		case <-time.After(time.Minute):
			t.Fatalf("%v: alexcl still running a minute later:\n%s", sig, stderr.String())
		}
		var exit *exec.ExitError
		if !errors.As(*waitErr, &exit) || exit.ExitCode() == 0 {
			t.Errorf("%v: exit %v, want a non-zero status", sig, *waitErr)
		}
		log := stderr.String()
		st, err := train.ReadState(out)
		if err != nil {
			t.Fatalf("%v: %v\n%s", sig, err, log)
		}
		for _, want := range []string{
			"stopping after this step to save a checkpoint",
			"interrupted at step " + strconv.FormatInt(st.Step, 10),
			"checkpoint saved: " + filepath.Join(out, train.LastFile),
			"resume with: alexcl train --resume --out " + out,
		} {
			if !strings.Contains(log, want) {
				t.Errorf("%v: output lacks %q:\n%s", sig, want, log)
			}
		}
		if st.Step >= 2000 || st.Finished {
			t.Errorf("%v: state at step %d, finished %v: the signal did not stop the run", sig, st.Step, st.Finished)
		}
		d := cpu.New()
		net, err := model.New(d, mc, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{train.LastFile, st.Weights} {
			if err := net.Load(filepath.Join(out, f)); err != nil {
				t.Errorf("%v: %s does not load: %v", sig, f, err)
			}
		}
		if err := net.LoadVelocity(filepath.Join(out, st.Velocity)); err != nil {
			t.Errorf("%v: velocity does not load: %v", sig, err)
		}
		net.Close()
		d.Close()
	}
}

// sameTensorBits fails unless safetensors files a and b hold the same
// tensors with the same bits.
func sameTensorBits(t *testing.T, a, b string) {
	t.Helper()
	fa, err := safetensors.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := safetensors.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := fa.FirstDifference(fb); err != nil {
		t.Fatalf("%s and %s differ: %v", a, b, err)
	}
}
