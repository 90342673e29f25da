package device

import "strings"

// Switch reads the value of an environment variable that turns something
// off or on: off, 0, false or no (any case, spaces around ignored) is off;
// unset, on, 1, true, yes or auto is on; ok is false for anything else,
// which callers report.
func Switch(v string) (off, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "0", "false", "no":
		return true, true
	case "", "on", "1", "true", "yes", "auto":
		return false, true
	}
	return false, false
}
