// Package safetensors reads and writes the safetensors tensor file format
// (https://github.com/huggingface/safetensors), which alexcl uses for
// checkpoints and for the PyTorch test fixtures.
//
// A file is an 8-byte little-endian header length n, n bytes of JSON header
//
//	{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//	 "__metadata__": {"key": "value", ...}}
//
// (possibly padded with spaces), then the raw little-endian tensor data;
// data_offsets are relative to the first data byte. The package supports the
// dtypes F32, I32 and I64, and checks every number in the header against the
// size of the input before it allocates anything, so a corrupt or hostile
// file yields an error, never a panic or a huge allocation.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// MaxHeader is the largest JSON header accepted, in bytes.
const MaxHeader = 100 << 20

// Supported dtype names, as written in the header.
const (
	F32 = "F32"
	I32 = "I32"
	I64 = "I64"
)

// metadataKey is the reserved header entry holding the string metadata.
const metadataKey = "__metadata__"

// Tensor is one named tensor. Exactly the slice matching DType holds the
// elements, in row-major order; its length is the product of Shape (1 for
// a scalar with an empty Shape).
type Tensor struct {
	Name  string
	DType string // F32, I32 or I64
	Shape []int
	F32   []float32
	I32   []int32
	I64   []int64
}

// File is a decoded safetensors file.
type File struct {
	// Tensors are in the order their data appears in the file.
	Tensors []Tensor
	// Meta is the __metadata__ string map; empty when the file has none.
	Meta map[string]string
}

// Get returns the tensor called name, or an error listing that it is missing.
func (f *File) Get(name string) (*Tensor, error) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], nil
		}
	}
	return nil, fmt.Errorf("safetensors: no tensor %q (file has %d tensors)", name, len(f.Tensors))
}

// FirstDifference returns nil when f and g hold the same tensors (by name)
// with the same float32 bits, and otherwise an error naming the first
// difference: a tensor count, a missing name, a length or an element.
// Exact-resume checks compare checkpoints with it.
func (f *File) FirstDifference(g *File) error {
	if len(f.Tensors) != len(g.Tensors) {
		return fmt.Errorf("%d tensors against %d", len(f.Tensors), len(g.Tensors))
	}
	for _, a := range f.Tensors {
		b, err := g.Get(a.Name)
		if err != nil {
			return err
		}
		if len(a.F32) != len(b.F32) {
			return fmt.Errorf("%s: %d against %d float32 elements", a.Name, len(a.F32), len(b.F32))
		}
		for i := range a.F32 {
			if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
				return fmt.Errorf("%s[%d]: %v against %v", a.Name, i, a.F32[i], b.F32[i])
			}
		}
	}
	return nil
}

// Len is the number of elements the shape describes.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// elemSize is the size in bytes of one element of dtype, or 0 if unknown.
func elemSize(dtype string) int {
	switch dtype {
	case F32, I32:
		return 4
	case I64:
		return 8
	}
	return 0
}

// dataLen is the number of elements t holds in the slice of its DType.
func (t *Tensor) dataLen() (int, error) {
	switch t.DType {
	case F32:
		return len(t.F32), nil
	case I32:
		return len(t.I32), nil
	case I64:
		return len(t.I64), nil
	}
	return 0, fmt.Errorf("safetensors: tensor %q: unsupported dtype %q (want F32, I32 or I64)", t.Name, t.DType)
}

// headerEntry is one tensor's description in the JSON header.
type headerEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// Encode writes tensors and meta in safetensors format to w. Tensor names
// must be unique, non-empty and not "__metadata__"; each tensor's data
// length must match its shape.
func Encode(w io.Writer, tensors []Tensor, meta map[string]string) error {
	header := make(map[string]any, len(tensors)+1)
	var off uint64
	for i := range tensors {
		t := &tensors[i]
		if t.Name == "" || t.Name == metadataKey {
			return fmt.Errorf("safetensors: tensor %d: invalid name %q", i, t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("safetensors: duplicate tensor name %q", t.Name)
		}
		n, err := t.dataLen()
		if err != nil {
			return err
		}
		want, err := shapeElems(t.Shape)
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", t.Name, err)
		}
		if want != uint64(n) {
			return fmt.Errorf("safetensors: tensor %q: shape %v needs %d elements, data has %d", t.Name, t.Shape, want, n)
		}
		size := uint64(n) * uint64(elemSize(t.DType))
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: []uint64{off, off + size}}
		off += size
	}
	if len(meta) > 0 {
		header[metadataKey] = meta
	}
	h, err := json.Marshal(header) // map keys are sorted: the output is deterministic
	if err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	if pad := (8 - len(h)%8) % 8; pad > 0 {
		h = append(h, bytes.Repeat([]byte(" "), pad)...)
	}
	bw := bufio.NewWriter(w)
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(len(h)))
	bw.Write(n8[:])
	bw.Write(h)
	var buf [8]byte
	for i := range tensors {
		t := &tensors[i]
		switch t.DType {
		case F32:
			for _, v := range t.F32 {
				binary.LittleEndian.PutUint32(buf[:4], math.Float32bits(v))
				bw.Write(buf[:4])
			}
		case I32:
			for _, v := range t.I32 {
				binary.LittleEndian.PutUint32(buf[:4], uint32(v))
				bw.Write(buf[:4])
			}
		case I64:
			for _, v := range t.I64 {
				binary.LittleEndian.PutUint64(buf[:], uint64(v))
				bw.Write(buf[:])
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

// Write stores tensors and meta at path atomically: it writes a temporary
// file in the same directory, syncs it to disk and renames it over path, so
// a crash leaves either the old file or the complete new one.
func Write(path string, tensors []Tensor, meta map[string]string) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = Encode(f, tensors, meta); err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("safetensors: sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("safetensors: close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("safetensors: rename %s to %s: %w", tmp, path, err)
	}
	// Make the rename itself durable; not every platform can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Read reads and decodes the safetensors file at path.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return f, nil
}

// DecodeReader reads r to the end and decodes it. Memory use is bounded by
// what r actually delivers, never by a number in the header.
func DecodeReader(r io.Reader) (*File, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read: %w", err)
	}
	return Decode(data)
}

// Decode parses a complete safetensors file held in data. The returned
// tensors do not alias data.
func Decode(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("safetensors: truncated: %d bytes, need at least 8 for the header length", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > MaxHeader {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit", hlen, MaxHeader)
	}
	if hlen > uint64(len(data)-8) {
		return nil, fmt.Errorf("safetensors: truncated: header length %d is larger than the %d bytes after it", hlen, len(data)-8)
	}
	entries, order, meta, err := parseHeader(data[8 : 8+hlen])
	if err != nil {
		return nil, err
	}
	body := data[8+hlen:]
	if err := checkLayout(entries, order, uint64(len(body))); err != nil {
		return nil, err
	}
	f := &File{Meta: meta, Tensors: make([]Tensor, 0, len(order))}
	sort.SliceStable(order, func(i, j int) bool {
		return entries[order[i]].DataOffsets[0] < entries[order[j]].DataOffsets[0]
	})
	for _, name := range order {
		e := entries[name]
		raw := body[e.DataOffsets[0]:e.DataOffsets[1]] // checked by checkLayout
		t := Tensor{Name: name, DType: e.DType, Shape: append([]int{}, e.Shape...)}
		switch e.DType {
		case F32:
			t.F32 = make([]float32, len(raw)/4)
			for i := range t.F32 {
				t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case I32:
			t.I32 = make([]int32, len(raw)/4)
			for i := range t.I32 {
				t.I32[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case I64:
			t.I64 = make([]int64, len(raw)/8)
			for i := range t.I64 {
				t.I64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		}
		f.Tensors = append(f.Tensors, t)
	}
	return f, nil
}

// parseHeader decodes the JSON header, rejecting duplicate names, unknown
// fields, non-string metadata and trailing garbage. order lists the tensor
// names as they appear.
func parseHeader(h []byte) (map[string]headerEntry, []string, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(h))
	bad := func(err error) error { return fmt.Errorf("safetensors: bad JSON header: %w", err) }
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, nil, bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, nil, bad(fmt.Errorf("want an object, got %v", tok))
	}
	entries := map[string]headerEntry{}
	var order []string
	meta := map[string]string{}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, bad(err)
		}
		name, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, nil, bad(fmt.Errorf("entry %q: %w", name, err))
		}
		if name == metadataKey {
			if seenMeta {
				return nil, nil, nil, bad(errors.New("duplicate __metadata__"))
			}
			seenMeta = true
			if err := strictUnmarshal(raw, &meta); err != nil {
				return nil, nil, nil, bad(fmt.Errorf("__metadata__ must map strings to strings: %w", err))
			}
			continue
		}
		if name == "" {
			return nil, nil, nil, bad(errors.New("empty tensor name"))
		}
		if _, dup := entries[name]; dup {
			return nil, nil, nil, bad(fmt.Errorf("duplicate tensor name %q", name))
		}
		var e headerEntry
		if err := strictUnmarshal(raw, &e); err != nil {
			return nil, nil, nil, bad(fmt.Errorf("tensor %q: %w", name, err))
		}
		if e.DType == "" || e.Shape == nil || e.DataOffsets == nil {
			return nil, nil, nil, bad(fmt.Errorf("tensor %q: dtype, shape and data_offsets are all required", name))
		}
		entries[name] = e
		order = append(order, name)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, nil, bad(err)
	}
	if rest := h[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		return nil, nil, nil, bad(errors.New("trailing data after the header object"))
	}
	if meta == nil { // "__metadata__": null
		meta = map[string]string{}
	}
	return entries, order, meta, nil
}

// strictUnmarshal decodes raw into v, rejecting unknown fields.
func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// shapeElems is the product of shape, refusing negative dimensions and
// products that overflow.
func shapeElems(shape []int) (uint64, error) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt64/uint64(d) {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		n *= uint64(d)
	}
	return n, nil
}

// checkLayout verifies each entry's dtype, that its offsets lie inside a
// body of size bytes and match its shape, and that together the tensors
// cover the body exactly, without overlaps or holes.
func checkLayout(entries map[string]headerEntry, order []string, size uint64) error {
	type span struct {
		name       string
		begin, end uint64
	}
	// Tensors that end past the data: the file was cut short (a copy or
	// write that did not finish), said as such rather than per tensor.
	var end uint64
	for _, name := range order {
		if o := entries[name].DataOffsets; len(o) == 2 && o[0] <= o[1] {
			end = max(end, o[1])
		}
	}
	if end > size {
		return fmt.Errorf("safetensors: the header places tensors up to byte %d of the data, out of range of the %d data bytes after it: "+
			"the file is truncated (a copy or write that did not finish?) or its header is corrupt", end, size)
	}
	spans := make([]span, 0, len(order))
	for _, name := range order {
		e := entries[name]
		es := elemSize(e.DType)
		if es == 0 {
			return fmt.Errorf("safetensors: tensor %q: unsupported dtype %q (want F32, I32 or I64)", name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return fmt.Errorf("safetensors: tensor %q: data_offsets has %d numbers, want 2", name, len(e.DataOffsets))
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b > en || en > size {
			return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] out of range of the %d data bytes", name, b, en, size)
		}
		n, err := shapeElems(e.Shape)
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if n > (en-b)/uint64(es) || n*uint64(es) != en-b {
			return fmt.Errorf("safetensors: tensor %q: shape %v needs %d %s elements of %d bytes, data_offsets [%d, %d] hold %d bytes",
				name, e.Shape, n, e.DType, es, b, en, en-b)
		}
		spans = append(spans, span{name, b, en})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var pos uint64
	for i, s := range spans {
		if s.begin < pos {
			return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] overlap tensor %q", s.name, s.begin, s.end, spans[i-1].name)
		}
		if s.begin > pos {
			return fmt.Errorf("safetensors: data bytes [%d, %d) belong to no tensor", pos, s.begin)
		}
		pos = s.end
	}
	if pos != size {
		return fmt.Errorf("safetensors: data bytes [%d, %d) belong to no tensor", pos, size)
	}
	return nil
}
