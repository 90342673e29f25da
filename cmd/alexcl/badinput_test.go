//go:build unix

package main

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/model"
	"github.com/alexcl/alexcl/model/safetensors"
)

// runAlexcl runs the binary and returns its output and exit status.
func runAlexcl(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("alexcl %s: %v", strings.Join(args, " "), err)
	return "", -1
}

// copyDir copies the regular files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(dst, e.Name()), b)
	}
	return dst
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pngBytes is a 28×28 grey gradient shifted by k, as a PNG.
func pngBytes(t *testing.T, k int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 0; y < 28; y++ {
		for x := 0; x < 28; x++ {
			img.SetGray(x, y, color.Gray{Y: uint8(9*x + 3*y + 20*k)})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageFolder writes a folder dataset of two classes, 4 training and 2
// validation images each, and applies edit to it.
func imageFolder(t *testing.T, edit func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	for c, class := range []string{"a", "b"} {
		for i := 0; i < 4; i++ {
			mustWrite(t, filepath.Join(dir, "train", class, string(rune('0'+i))+".png"), pngBytes(t, 4*c+i))
		}
		for i := 0; i < 2; i++ {
			mustWrite(t, filepath.Join(dir, "val", class, string(rune('0'+i))+".png"), pngBytes(t, 4*c+i+1))
		}
	}
	if edit != nil {
		edit(dir)
	}
	return dir
}

// cifarDir writes a CIFAR-10 binary tree (5 training batches of 3 records,
// a test batch of 4) and applies edit to the training batch bytes.
func cifarDir(t *testing.T, edit func(batch2 []byte) []byte) string {
	t.Helper()
	dir := t.TempDir()
	records := func(first, n int) []byte {
		var b bytes.Buffer
		for i := first; i < first+n; i++ {
			b.WriteByte(byte(i % 10))
			b.Write(bytes.Repeat([]byte{byte(i)}, 3072))
		}
		return b.Bytes()
	}
	for k := 1; k <= 5; k++ {
		b := records(3*(k-1), 3)
		if k == 2 {
			b = edit(b)
		}
		mustWrite(t, filepath.Join(dir, "data_batch_"+string(rune('0'+k))+".bin"), b)
	}
	mustWrite(t, filepath.Join(dir, "test_batch.bin"), records(100, 4))
	return dir
}

// TestBadInput runs `alexcl train` (and eval) on each kind of bad input the
// user can hand it, and checks the message, the non-zero exit status, and
// that nothing was written.
func TestBadInput(t *testing.T) {
	bin := alexclBinary(t)
	netFile := narrowNetworkFile(t)
	netText, err := os.ReadFile(netFile)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := model.LoadConfig(netFile)
	if err != nil {
		t.Fatal(err)
	}
	mnist := smallMNIST(t, 64, 16)
	tmp := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(tmp, name)
		mustWrite(t, p, []byte(text))
		return p
	}
	netVariant := func(name, old, new string) string {
		if !strings.Contains(string(netText), old) {
			t.Fatalf("%q is not in the network file:\n%s", old, netText)
		}
		return file(name, strings.Replace(string(netText), old, new, 1))
	}

	// MNIST files: truncated, swapped (labels where images belong), a label of 10.
	truncated := copyDir(t, mnist)
	if err := os.Truncate(filepath.Join(truncated, "train-images-idx3-ubyte"), 1000); err != nil {
		t.Fatal(err)
	}
	swapped := copyDir(t, mnist)
	os.Rename(filepath.Join(swapped, "train-images-idx3-ubyte"), filepath.Join(swapped, "x"))
	os.Rename(filepath.Join(swapped, "train-labels-idx1-ubyte"), filepath.Join(swapped, "train-images-idx3-ubyte"))
	os.Rename(filepath.Join(swapped, "x"), filepath.Join(swapped, "train-labels-idx1-ubyte"))
	badLabel := copyDir(t, mnist)
	lab, _ := os.ReadFile(filepath.Join(badLabel, "train-labels-idx1-ubyte"))
	lab[8+5] = 10
	mustWrite(t, filepath.Join(badLabel, "train-labels-idx1-ubyte"), lab)

	// Checkpoints: a good one, cut short; one of another network; not safetensors at all.
	d := cpu.New()
	net, err := model.New(d, mc, 1)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(tmp, "good.safetensors")
	if err := net.Init(1); err != nil {
		t.Fatal(err)
	}
	if err := net.Save(good, nil); err != nil {
		t.Fatal(err)
	}
	net.Close()
	d.Close()
	goodBytes, _ := os.ReadFile(good)
	cut := file("cut.safetensors", string(goodBytes[:len(goodBytes)/2]))
	other := filepath.Join(tmp, "other.safetensors")
	if err := safetensors.Write(other, []safetensors.Tensor{
		{Name: "features.0.weight", DType: safetensors.F32, Shape: []int{3, 3}, F32: make([]float32, 9)},
		{Name: "extra.weight", DType: safetensors.F32, Shape: []int{2}, F32: make([]float32, 2)},
	}, nil); err != nil {
		t.Fatal(err)
	}
	notST := file("photo.safetensors", string(pngBytes(t, 0)))

	net2 := netVariant("net2.toml", "classes = 10", "classes = 2") // for the two-class folders
	train := func(data string, extra ...string) []string {
		net := netFile
		if strings.HasPrefix(data, "folder:") {
			net = net2
		}
		return append([]string{"train", "--config", net, "--device", "cpu", "--data", data, "--batch", "4", "--max-steps", "2"}, extra...)
	}
	folder := func(edit func(string)) string { return "folder:" + imageFolder(t, edit) }
	cases := []struct {
		name string
		args []string
		want []string
	}{
		// Images.
		{"zero-byte image, strict", train(folder(func(d string) { mustWrite(t, filepath.Join(d, "train/a/zero.png"), nil) }), "--strict"),
			[]string{"train/a/zero.png: zero-byte file", "--strict"}},
		{"garbage image, strict", train(folder(func(d string) { mustWrite(t, filepath.Join(d, "train/a/x.jpg"), []byte("not a picture")) }), "--strict"),
			[]string{"train/a/x.jpg: not a readable JPEG or PNG", "--strict"}},
		{"unsupported format, strict", train(folder(func(d string) { mustWrite(t, filepath.Join(d, "train/a/x.gif"), []byte("GIF89a....")) }), "--strict"),
			[]string{"train/a/x.gif: unsupported format .gif: alexcl reads JPEG and PNG"}},
		{"empty class folder", train(folder(func(d string) { os.MkdirAll(filepath.Join(d, "train/c"), 0o755) })),
			[]string{"class folder", "train/c has no images (.jpg, .jpeg, .png)"}},
		{"class of unreadable images", train(folder(func(d string) { mustWrite(t, filepath.Join(d, "train/c/x.png"), []byte("no")) })),
			[]string{"train/c has no readable images (1 corrupt, empty or unsupported files skipped)"}},
		{"split with no images", train(folder(func(d string) { os.RemoveAll(filepath.Join(d, "val")); os.MkdirAll(filepath.Join(d, "val"), 0o755) })),
			[]string{"test data", "no class folders in", "/val"}},
		// MNIST and CIFAR files.
		{"truncated IDX", train("mnist:" + truncated), []string{"train-images-idx3-ubyte: truncated: header says [64 28 28] = 50176 bytes of data, file has 984"}},
		{"swapped IDX files", train("mnist:" + swapped), []string{"train-images-idx3-ubyte: bad magic 0x00000801: want 0x00000803", "is this the right file?"}},
		{"IDX label out of range", train("mnist:" + badLabel), []string{"train-labels-idx1-ubyte: label 10 of item 5 is out of range 0..9"}},
		{"truncated CIFAR", train("cifar10:" + cifarDir(t, func(b []byte) []byte { return b[:5000] })),
			[]string{"data_batch_2.bin: 5000 bytes is not a whole, non-zero number of 3073-byte records"}},
		{"CIFAR label out of range", train("cifar10:" + cifarDir(t, func(b []byte) []byte { b[3073] = 10; return b })),
			[]string{"data_batch_2.bin: record 1 has label 10, out of range 0..9"}},
		// Config files and sizes.
		{"TOML syntax", train("mnist:"+mnist, "--config", file("syntax.toml", "preset = \"mini\"\nbatch = = 3\n")), []string{"syntax.toml:2:"}},
		{"unknown training key", train("mnist:"+mnist, "--config", file("key.toml", "preset = \"mini\"\nbatchsize = 3\n")), []string{`key.toml: unknown key "batchsize"`}},
		{"unknown network key", train("mnist:"+mnist, "--config", netVariant("kernal.toml", "kernel = 5", "kernal = 5")),
			[]string{"kernal.toml:", `unknown key "features.kernal"`}},
		{"impossible layer shape", train("mnist:"+mnist, "--config", netVariant("shape.toml", "kernel = 5", "kernel = 64")),
			[]string{"shape.toml: features.0 conv: input 28x28x1 padded to 32x32 is smaller than the 64x64 kernel, output would be 0x0x8"}},
		{"1e12 channels", train("mnist:"+mnist, "--config", netVariant("wide.toml", "out = 8", "out = 1000000000000")),
			[]string{"wide.toml: features.0 conv: out = 1000000000000: must be at most 16777216"}},
		{"negative layer size", train("mnist:"+mnist, "--config", netVariant("neg.toml", "out = 8", "out = -8")),
			[]string{"neg.toml: features.0 conv: out = -8, kernel = 5: both must be positive"}},
		{"zero batch", train("mnist:"+mnist, "--batch", "0"), []string{"batch = 0: must be at least 1"}},
		{"negative batch", train("mnist:"+mnist, "--batch", "-3"), []string{"batch = -3: must be at least 1"}},
		{"negative epochs", train("mnist:"+mnist, "--epochs", "-1"), []string{"epochs = -1: must not be negative"}},
		{"negative keep", train("mnist:"+mnist, "--keep", "-1"), []string{"keep = -1"}},
		{"batch larger than the dataset", train("mnist:"+mnist, "--batch", "100"),
			[]string{"batch 100 is larger than the training split of mnist:" + mnist + " (64 samples): use --batch 64 or less"}},
		// Checkpoints.
		{"checkpoint of another network", train("mnist:"+mnist, "--init", other), []string{"--init: network narrow: load " + other,
			"does not match the network (17 problems)", "features.0.weight has shape [3 3], want [8 1 5 5]", "missing features.0.bias [8]",
			"unexpected extra.weight [2]", "Pass the --config or --preset it was trained with"}},
		{"truncated checkpoint", train("mnist:"+mnist, "--init", cut), []string{"load " + cut + ": not a readable safetensors file", "out of range of the 41976 data bytes after it: the file is truncated"}},
		{"not a checkpoint", train("mnist:"+mnist, "--init", notST), []string{"load " + notST + ": not a readable safetensors file", "safetensors.torch.save_file"}},
		{"eval of not a checkpoint", []string{"eval", "--weights", notST, "--device", "cpu"}, []string{notST + " is not a safetensors file"}},
		// Devices.
		{"unknown device", train("mnist:"+mnist, "--device", "tpu3"), []string{`unknown device "tpu3"`, "cpu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := tc.args
			if args[0] == "train" {
				args = append(args, "--out", out)
			}
			text, code := runAlexcl(t, bin, args...)
			if code == 0 {
				t.Fatalf("exit status 0, want non-zero:\n%s", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			if files := snapshot(t, out); len(files) > 0 {
				t.Errorf("a run that failed before training wrote %v", slices.Sorted(maps.Keys(files)))
			}
		})
	}

	// An image whose body is cut short passes the header check at start;
	// with --strict the step that reads it stops the run, which has no
	// checkpoint yet and says so, and leaves no checkpoint or temporary file.
	t.Run("truncated image, strict", func(t *testing.T) {
		b := pngBytes(t, 0)
		data := folder(func(d string) { mustWrite(t, filepath.Join(d, "train/a/cut.png"), b[:len(b)/2]) })
		out := filepath.Join(t.TempDir(), "run")
		text, code := runAlexcl(t, bin, append(train(data, "--strict", "--no-shuffle"), "--out", out)...)
		for _, w := range []string{"training data at epoch 1", "train/a/cut.png", "unexpected EOF", "training stopped during step 2", "no checkpoint was written yet"} {
			if code == 0 || !strings.Contains(text, w) {
				t.Errorf("exit %d, want non-zero and %q:\n%s", code, w, text)
			}
		}
		for f := range snapshot(t, out) {
			if strings.Contains(f, ".tmp") || strings.Contains(f, "state.json") || strings.Contains(f, "safetensors") {
				t.Errorf("a run that failed before its first checkpoint left %s", f)
			}
		}
	})

	// Corrupt images without --strict are skipped and counted (when their
	// header is bad) or replaced by a blank image (when only their body is),
	// and the run succeeds.
	t.Run("corrupt images skipped", func(t *testing.T) {
		data := folder(func(d string) {
			mustWrite(t, filepath.Join(d, "train/a/zero.png"), nil)
			mustWrite(t, filepath.Join(d, "train/b/x.gif"), []byte("GIF89a"))
			b := pngBytes(t, 0)
			mustWrite(t, filepath.Join(d, "train/a/cut.png"), b[:len(b)/2])
		})
		text, code := runAlexcl(t, bin, append(train(data, "--no-shuffle"), "--out", filepath.Join(t.TempDir(), "run"))...)
		for _, w := range []string{"note: skipped 2 unreadable images of the training split", "--strict", "note: 3 unreadable training images so far"} {
			if code != 0 || !strings.Contains(text, w) {
				t.Errorf("exit %d, want 0 and %q:\n%s", code, w, text)
			}
		}
	})

	// A good run directory survives failed commands on it byte for byte.
	t.Run("existing run untouched", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		if text, code := runAlexcl(t, bin, append(train("mnist:"+mnist, "--checkpoint-every", "1"), "--out", out)...); code != 0 {
			t.Fatalf("exit %d:\n%s", code, text)
		}
		before := snapshot(t, out)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"train", "--resume", "--out", out, "--max-steps", "5", "--device", "tpu3"}, `unknown device "tpu3"`},
			{[]string{"train", "--resume", "--out", out, "--max-steps", "5", "--batch", "2"}, "cannot resume " + out + " with different settings: batch 2 (was 4)"},
			{[]string{"train", "--resume", "--out", out, "--max-steps", "5", "--data", "mnist:" + truncated}, "with different settings: data"},
			{append(train("mnist:"+mnist), "--out", out), out + " already holds a training run"},
		} {
			text, code := runAlexcl(t, bin, tc.args...)
			if code == 0 || !strings.Contains(text, tc.want) {
				t.Errorf("alexcl %s: exit %d, want non-zero and %q:\n%s", strings.Join(tc.args, " "), code, tc.want, text)
			}
		}
		after := snapshot(t, out)
		if !maps.EqualFunc(before, after, bytes.Equal) {
			t.Errorf("failed commands changed %s: files before %v, after %v", out, slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
		}
		// A state.json cut short is reported as such.
		mustWrite(t, filepath.Join(out, "state.json"), []byte(`{"version": 1, "step": `))
		if text, code := runAlexcl(t, bin, "train", "--resume", "--out", out); code == 0 || !strings.Contains(text, "state.json is corrupt") {
			t.Errorf("corrupt state.json: exit %d:\n%s", code, text)
		}
	})
}

// snapshot reads every file under dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) && p == dir {
			return nil
		}
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[strings.TrimPrefix(p, dir)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
