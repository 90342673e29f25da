package device

import "testing"

func TestSwitch(t *testing.T) {
	for v, want := range map[string][2]bool{
		"off": {true, true}, " OFF ": {true, true}, "0": {true, true}, "false": {true, true}, "No": {true, true},
		"": {false, true}, "on": {false, true}, "1": {false, true}, "TRUE": {false, true}, "yes": {false, true}, "auto": {false, true},
		"bogus": {false, false}, "force": {false, false}, "2": {false, false},
	} {
		if off, ok := Switch(v); off != want[0] || ok != want[1] {
			t.Errorf("Switch(%q) = %v, %v; want %v, %v", v, off, ok, want[0], want[1])
		}
	}
}
