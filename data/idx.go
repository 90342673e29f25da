package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
)

// IDX is the format of the MNIST files: a magic number 0x0000TTDD (TT the element type,
// 0x08 for unsigned bytes; DD the number of dimensions), DD big-endian uint32 sizes, then
// the elements in row-major order. Files may be gzipped; that is detected from their
// first bytes, not from their name.

// maxIDXBytes bounds the data an IDX header may announce (1 GiB; MNIST's largest is 47 MB).
const maxIDXBytes = 1 << 30

// idxFile is a parsed IDX file of unsigned bytes.
type idxFile struct {
	Dims []int  // sizes, outermost first
	Data []byte // Data is (Dims[0], Dims[1], ...)
}

// readIDX reads an IDX file of unsigned bytes with ndims dimensions, gzipped or not, from
// r. name is the file's name for errors. Each inner dimension must be at most maxInner.
// Memory is allocated as data arrives, never from the header alone.
func readIDX(r io.Reader, name string, ndims, maxInner int) (idxFile, error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return idxFile{}, fmt.Errorf("%s: bad gzip header: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return idxFile{}, fmt.Errorf("%s: truncated: no IDX magic number (%w)", name, readErr(err))
	}
	magic := binary.BigEndian.Uint32(hdr[:])
	want := uint32(0x0800 | ndims)
	if magic != want {
		return idxFile{}, fmt.Errorf("%s: bad magic 0x%08x: want 0x%08x (IDX, unsigned bytes, %d dimensions); is this the right file?", name, magic, want, ndims)
	}
	dims := make([]int, ndims)
	total := int64(1)
	for i := range dims {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return idxFile{}, fmt.Errorf("%s: truncated header: missing size of dimension %d (%w)", name, i, readErr(err))
		}
		d := int64(binary.BigEndian.Uint32(hdr[:]))
		if d == 0 {
			return idxFile{}, fmt.Errorf("%s: dimension %d has size 0: the file holds no data", name, i)
		}
		if i > 0 && d > int64(maxInner) {
			return idxFile{}, fmt.Errorf("%s: dimension %d has size %d, over the limit of %d: corrupt header?", name, i, d, maxInner)
		}
		total *= d // d < 2^32 and total <= maxIDXBytes before: no overflow
		if total > maxIDXBytes {
			return idxFile{}, fmt.Errorf("%s: header announces more than %d bytes of data (size %d in dimension %d): corrupt header?", name, maxIDXBytes, d, i)
		}
		dims[i] = int(d)
	}
	data, err := io.ReadAll(io.LimitReader(br, total+1))
	if err != nil {
		return idxFile{}, fmt.Errorf("%s: reading data: %w", name, err)
	}
	if int64(len(data)) < total {
		return idxFile{}, fmt.Errorf("%s: truncated: header says %v = %d bytes of data, file has %d", name, dims, total, len(data))
	}
	if int64(len(data)) > total {
		return idxFile{}, fmt.Errorf("%s: trailing bytes after the %d bytes of data the header %v announces", name, total, dims)
	}
	return idxFile{Dims: dims, Data: data}, nil
}

// readErr names a short read.
func readErr(err error) error {
	if err == io.ErrUnexpectedEOF {
		return io.EOF
	}
	return err
}
