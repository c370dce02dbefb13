//go:build !unix

package mmap

import (
	"os"
)

// mapFile falls back to reading the file where mmap is not available.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	return copyFile(f, size)
}

// Anon returns size bytes of zeroed memory (plain heap memory here).
func Anon(size int) ([]byte, func() error, error) {
	return make([]byte, size), func() error { return nil }, nil
}

func copyFile(f *os.File, size int) ([]byte, func() error, error) {
	data := make([]byte, size)
	if err := readInto(f, data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// AvailableMemory is 0 where the OS does not say (then Auto maps).
func AvailableMemory() int64 { return 0 }

const (
	hugePage        = 2 << 20
	hugePageAligned = false
)

// release does nothing where copies are Go memory.
func release(b []byte) {}
