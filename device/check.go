package device

import "fmt"

// CheckBuf returns an error naming op and the argument when b is nil or
// holds fewer than elems 4-byte elements. Every Device implementation calls
// it before queueing work, so both report bad sizes the same way.
func CheckBuf(op, name string, b Buffer, elems int) error {
	if b == nil {
		return fmt.Errorf("%s: %s is nil", op, name)
	}
	if need := 4 * elems; b.Size() < need {
		return fmt.Errorf("%s: %s holds %d bytes, the shape needs %d (%d float32)", op, name, b.Size(), need, elems)
	}
	return nil
}
