package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rawFile assembles a safetensors file from a literal header and data.
func rawFile(header string, data []byte) []byte {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	return append(append(n[:], header...), data...)
}

// sample is a set of tensors covering every dtype, a scalar and an empty tensor.
func sample() []Tensor {
	return []Tensor{
		{Name: "w", DType: F32, Shape: []int{2, 3}, F32: []float32{1, -2, 3.5, float32(math.Inf(1)), 0, -0.25}},
		{Name: "labels", DType: I32, Shape: []int{3}, I32: []int32{0, -7, math.MaxInt32}},
		{Name: "step", DType: I64, Shape: []int{}, I64: []int64{math.MinInt64}},
		{Name: "empty", DType: F32, Shape: []int{0, 4}, F32: []float32{}},
	}
}

// sameTensors compares two tensor lists by name, dtype, shape and bits.
func sameTensors(t *testing.T, got, want []Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d tensors, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.DType != w.DType || !reflect.DeepEqual(append([]int{}, g.Shape...), append([]int{}, w.Shape...)) {
			t.Fatalf("tensor %d: got %s %s %v, want %s %s %v", i, g.Name, g.DType, g.Shape, w.Name, w.DType, w.Shape)
		}
		if len(g.F32) != len(w.F32) || len(g.I32) != len(w.I32) || len(g.I64) != len(w.I64) {
			t.Fatalf("tensor %q: data lengths differ", w.Name)
		}
		for j := range w.F32 {
			if math.Float32bits(g.F32[j]) != math.Float32bits(w.F32[j]) {
				t.Fatalf("tensor %q [%d]: got %v, want %v", w.Name, j, g.F32[j], w.F32[j])
			}
		}
		for j := range w.I32 {
			if g.I32[j] != w.I32[j] {
				t.Fatalf("tensor %q [%d]: got %v, want %v", w.Name, j, g.I32[j], w.I32[j])
			}
		}
		for j := range w.I64 {
			if g.I64[j] != w.I64[j] {
				t.Fatalf("tensor %q [%d]: got %v, want %v", w.Name, j, g.I64[j], w.I64[j])
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	meta := map[string]string{"magic": "alexcl", "version": "1"}
	if err := Write(path, sample(), meta); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if h := binary.LittleEndian.Uint64(raw); h%8 != 0 {
		t.Errorf("header length %d is not padded to 8 bytes", h)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, f.Tensors, sample())
	if !reflect.DeepEqual(f.Meta, meta) {
		t.Errorf("meta: got %v, want %v", f.Meta, meta)
	}
	w, err := f.Get("w")
	if err != nil || w.Len() != 6 {
		t.Errorf("Get(w): %v, len %d", err, w.Len())
	}
	if _, err := f.Get("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Get(nope): got %v, want an error naming it", err)
	}
	g, err := DecodeReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, g.Tensors, sample())
}

func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	if err := Write(path, sample()[:1], nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	// A failing write (shape mismatch) must leave the old file and no temp file.
	bad := []Tensor{{Name: "w", DType: F32, Shape: []int{5}, F32: []float32{1}}}
	if err := Write(path, bad, nil); err == nil {
		t.Fatal("Write with a shape mismatch succeeded")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("failed Write changed the existing file")
	}
	// A successful write replaces it.
	if err := Write(path, sample(), nil); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the checkpoint", names)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, f.Tensors, sample())
	if err := Write(filepath.Join(dir, "no", "such", "dir", "x"), sample(), nil); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := map[string]struct {
		ts   []Tensor
		want string
	}{
		"duplicate":  {[]Tensor{{Name: "a", DType: F32, Shape: []int{1}, F32: []float32{1}}, {Name: "a", DType: F32, Shape: []int{1}, F32: []float32{1}}}, "duplicate"},
		"mismatch":   {[]Tensor{{Name: "a", DType: F32, Shape: []int{2, 2}, F32: []float32{1}}}, "needs 4 elements"},
		"dtype":      {[]Tensor{{Name: "a", DType: "F16", Shape: []int{1}}}, "unsupported dtype"},
		"empty name": {[]Tensor{{Name: "", DType: F32, Shape: []int{1}, F32: []float32{1}}}, "invalid name"},
		"meta name":  {[]Tensor{{Name: "__metadata__", DType: F32, Shape: []int{1}, F32: []float32{1}}}, "invalid name"},
		"negative":   {[]Tensor{{Name: "a", DType: F32, Shape: []int{-1}}}, "negative"},
	}
	for name, c := range cases {
		var buf bytes.Buffer
		err := Encode(&buf, c.ts, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestDecodeAcceptsPaddingAndOrder(t *testing.T) {
	// Entries listed out of data order, header padded with spaces.
	h := `{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}    `
	data := []byte{7, 0, 0, 0, 0, 0, 0x80, 0x3f}
	f, err := Decode(rawFile(h, data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Tensor{{Name: "a", DType: I32, Shape: []int{1}, I32: []int32{7}}, {Name: "b", DType: F32, Shape: []int{1}, F32: []float32{1}}}
	sameTensors(t, f.Tensors, want)
	if len(f.Meta) != 0 {
		t.Errorf("meta: got %v, want empty", f.Meta)
	}
}

func TestDecodeErrors(t *testing.T) {
	four := []byte{0, 0, 0x80, 0x3f}
	ent := func(dtype, shape, off string) string {
		return `{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + off + `}`
	}
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, MaxHeader+1)
	long := make([]byte, 8)
	binary.LittleEndian.PutUint64(long, 1<<62)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short length", []byte{1, 2, 3}, "truncated"},
		{"header past end", rawFile(`{}`, nil)[:9], "larger than"},
		{"header length huge", append(long, "{}"...), "exceeds"},
		{"header over limit", append(huge, "{}"...), "exceeds"},
		{"bad json", rawFile(`{"a":`, nil), "bad JSON"},
		{"not an object", rawFile(`[1,2]`, nil), "want an object"},
		{"trailing garbage", rawFile(`{} x`, nil), "trailing"},
		{"unknown field", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, four), "unknown field"},
		{"missing field", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, four), "required"},
		{"duplicate name", rawFile(`{"a":`+ent("F32", "[1]", "[0,4]")+`,"a":`+ent("F32", "[1]", "[0,4]")+`}`, four), "duplicate"},
		{"empty name", rawFile(`{"":`+ent("F32", "[1]", "[0,4]")+`}`, four), "empty tensor name"},
		{"metadata not strings", rawFile(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"unknown dtype", rawFile(`{"a":`+ent("BF16", "[2]", "[0,4]")+`}`, four), "unsupported dtype"},
		{"offsets out of range", rawFile(`{"a":`+ent("F32", "[2]", "[0,8]")+`}`, four), "out of range of the 4 data bytes after it: the file is truncated"},
		{"offsets reversed", rawFile(`{"a":`+ent("F32", "[0]", "[4,0]")+`}`, four), "out of range"},
		{"offsets huge", rawFile(`{"a":`+ent("F32", "[1]", "[18446744073709551612,18446744073709551615]")+`}`, four), "out of range"},
		{"three offsets", rawFile(`{"a":`+ent("F32", "[1]", "[0,4,8]")+`}`, four), "want 2"},
		{"negative offset", rawFile(`{"a":`+ent("F32", "[1]", "[-4,0]")+`}`, four), "bad JSON"},
		{"shape mismatch", rawFile(`{"a":`+ent("F32", "[3]", "[0,4]")+`}`, four), "needs 3"},
		{"shape mismatch I64", rawFile(`{"a":`+ent("I64", "[1]", "[0,4]")+`}`, four), "needs 1"},
		{"negative dim", rawFile(`{"a":`+ent("F32", "[-1,-1]", "[0,4]")+`}`, four), "negative"},
		{"shape overflow", rawFile(`{"a":`+ent("F32", "[4294967296,4294967296]", "[0,4]")+`}`, four), "overflows"},
		{"shape product wraps", rawFile(`{"a":`+ent("I64", "[2305843009213693952]", "[0,4]")+`}`, four), "needs"},
		{"fractional dim", rawFile(`{"a":`+ent("F32", "[1.5]", "[0,4]")+`}`, four), "bad JSON"},
		{"overlap", rawFile(`{"a":`+ent("F32", "[1]", "[0,4]")+`,"b":`+ent("F32", "[1]", "[0,4]")+`}`, four), "overlap"},
		{"hole", rawFile(`{"a":`+ent("F32", "[1]", "[4,8]")+`}`, append(four, four...)), "belong to no tensor"},
		{"uncovered tail", rawFile(`{"a":`+ent("F32", "[1]", "[0,4]")+`}`, append(four, four...)), "belong to no tensor"},
		{"data without tensors", rawFile(`{}`, four), "belong to no tensor"},
	}
	for _, c := range cases {
		f, err := Decode(c.file)
		if err == nil {
			t.Errorf("%s: decoded %d tensors, want an error containing %q", c.name, len(f.Tensors), c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %q, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Read of a missing file succeeded")
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// survives an Encode/Decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	if err := Encode(&buf, sample(), map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(rawFile(`{}`, nil))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, []byte{1, 2, 3, 4}))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Decode(data)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, g.Tensors, g.Meta); err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		h, err := Decode(out.Bytes())
		if err != nil {
			t.Fatalf("decoding the re-encoded file: %v", err)
		}
		sameTensors(t, h.Tensors, g.Tensors)
		if len(g.Meta) != len(h.Meta) {
			t.Fatalf("meta: got %v, want %v", h.Meta, g.Meta)
		}
		for k, v := range g.Meta {
			if h.Meta[k] != v {
				t.Fatalf("meta %q: got %q, want %q", k, h.Meta[k], v)
			}
		}
	})
}

// torchPython returns the path of a python3 with torch, or skips.
func torchPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		t.Skipf("%s with torch not available: %v", py, err)
	}
	return py
}

// TestPythonInterop writes a file from Go, has ci/torch/st.py read it and
// write it back, and reads the result in Go.
func TestPythonInterop(t *testing.T) {
	py := torchPython(t)
	st, err := filepath.Abs("../../ci/torch")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "go.safetensors"), filepath.Join(dir, "py.safetensors")
	ts := sample()
	if err := Write(in, ts, map[string]string{"from": "go"}); err != nil {
		t.Fatal(err)
	}
	script := `
import sys
sys.path.insert(0, sys.argv[1])
import st, torch
d = st.load(sys.argv[2])
assert d['w'].dtype == torch.float32 and list(d['w'].shape) == [2, 3], d['w']
assert d['w'][0, 2].item() == 3.5 and d['w'][1, 0].item() == float('inf')
assert d['labels'].tolist() == [0, -7, 2**31 - 1]
assert d['step'].dtype == torch.int64 and d['step'].shape == () and d['step'].item() == -2**63
assert list(d['empty'].shape) == [0, 4]
d['w'] = d['w'] * 2
st.save(d, sys.argv[3], {'from': 'python', 'torch': torch.__version__})
`
	cmd := exec.Command(py, "-c", script, st, in, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, msg)
	}
	f, err := Read(out)
	if err != nil {
		t.Fatal(err)
	}
	w, err := f.Get("w")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ts[0].F32 {
		if w.F32[i] != 2*v {
			t.Errorf("w[%d]: got %v, want %v", i, w.F32[i], 2*v)
		}
	}
	if f.Meta["from"] != "python" || f.Meta["torch"] == "" {
		t.Errorf("meta: got %v", f.Meta)
	}
	step, err := f.Get("step")
	if err != nil || step.DType != I64 || step.I64[0] != math.MinInt64 {
		t.Errorf("step: got %+v, %v", step, err)
	}
}

func TestFirstDifference(t *testing.T) {
	a := &File{Tensors: []Tensor{{Name: "w", DType: "F32", Shape: []int{3}, F32: []float32{1, 2, 3}}}}
	same := &File{Tensors: []Tensor{{Name: "w", DType: "F32", Shape: []int{3}, F32: []float32{1, 2, 3}}}}
	if err := a.FirstDifference(same); err != nil {
		t.Fatalf("identical files: %v", err)
	}
	negZero := float32(math.Copysign(0, -1))
	for _, c := range []struct {
		g    *File
		want string
	}{
		{&File{}, "1 tensors against 0"},
		{&File{Tensors: []Tensor{{Name: "v", F32: []float32{1, 2, 3}}}}, `no tensor "w"`},
		{&File{Tensors: []Tensor{{Name: "w", F32: []float32{1, 2}}}}, "w: 3 against 2 float32 elements"},
		{&File{Tensors: []Tensor{{Name: "w", F32: []float32{1, 2, 4}}}}, "w[2]: 3 against 4"},
	} {
		if err := a.FirstDifference(c.g); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FirstDifference = %v, want %q", err, c.want)
		}
	}
	zero := &File{Tensors: []Tensor{{Name: "z", F32: []float32{0}}}}
	if err := zero.FirstDifference(&File{Tensors: []Tensor{{Name: "z", F32: []float32{negZero}}}}); err == nil {
		t.Error("0 and -0 compare equal; FirstDifference must compare bits")
	}
}
