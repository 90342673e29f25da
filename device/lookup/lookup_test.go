package lookup

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/device/opencl"
)

func TestListAlwaysHasCPU(t *testing.T) {
	entries, err := List()
	if len(entries) == 0 || entries[0].ID != "cpu" {
		t.Fatalf("List() = %+v, %v; want cpu first", entries, err)
	}
	autos := 0
	for _, e := range entries {
		t.Logf("%s %v auto=%v %s (%s)", e.ID, e.Aliases, e.Auto, e.Name, e.Type)
		if e.Auto {
			autos++
		}
	}
	if autos != 1 {
		t.Errorf("%d entries are marked auto", autos)
	}
	if err != nil {
		if !errors.Is(err, ErrNoOpenCL) {
			t.Errorf("error does not wrap ErrNoOpenCL: %v", err)
		}
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but: %v", err)
		}
	}
}

func TestOpen(t *testing.T) {
	d, err := Open("cpu", opencl.Options{})
	if err != nil || d.Info().ID != "cpu" {
		t.Fatalf("Open(cpu) = %v, %v", d, err)
	}
	d.Close()

	_, err = Open("tpu7", opencl.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown device "tpu7"`) || !strings.Contains(err.Error(), "cpu") {
		t.Errorf("Open(tpu7) error = %v", err)
	}
	_, err = Open("gpu99", opencl.Options{})
	if err == nil || !strings.Contains(err.Error(), `no device "gpu99"`) {
		t.Errorf("Open(gpu99) error = %v", err)
	}

	entries, listErr := List()
	if listErr != nil {
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but: %v", listErr)
		}
		t.Skipf("no OpenCL: %v", listErr)
	}
	// Every id and alias opens the device it names; auto opens the Auto one.
	for _, e := range entries {
		ids := e.IDs()
		if e.Auto {
			ids = append(ids, "auto", "")
		}
		for _, id := range ids {
			d, err := Open(id, opencl.Options{Version: "test", NoCache: true})
			if err != nil {
				t.Fatalf("Open(%q): %v", id, err)
			}
			if got := d.Info().ID; got != e.ID {
				t.Errorf("Open(%q) opened %s, want %s", id, got, e.ID)
			}
			d.Close()
		}
	}
}
