package devicetest_test

import (
	"testing"

	"github.com/alexcl/alexcl/device/devicetest"
)

// TestCaseNames checks that every case has an op, a shape and a name no
// other case has, so a failure names exactly one check.
func TestCaseNames(t *testing.T) {
	seen := map[string]bool{}
	cs := append(devicetest.Cases(), devicetest.TorchCases()...)
	for _, c := range cs {
		if c.Op == "" || c.Shape == "" || c.Run == nil {
			t.Errorf("incomplete case %q %q", c.Op, c.Shape)
		}
		if seen[c.Name()] {
			t.Errorf("two cases are called %q", c.Name())
		}
		seen[c.Name()] = true
	}
	torch := devicetest.TorchCases()
	if len(torch) < 10 {
		t.Errorf("%d PyTorch fixture cases, want one per file written by ci/torch/layer_fixtures.py (10)", len(torch))
	}
	for _, c := range torch {
		if c.Op == "torch" { // a fixture that failed to load or has an unknown op
			t.Errorf("fixture %s: %v", c.Shape, c.Run(nil).Err)
		}
	}
}
