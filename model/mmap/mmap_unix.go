//go:build unix

package mmap

import (
	"os"

	"golang.org/x/sys/unix"
)

func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	// Weights are read front to back once per token: ask for read-ahead.
	_ = unix.Madvise(data, unix.MADV_WILLNEED)
	return data, func() error { return unix.Munmap(data) }, nil
}
