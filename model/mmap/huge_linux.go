package mmap

import "golang.org/x/sys/unix"

// adviseHuge asks for transparent huge pages (THP in "madvise" mode, the
// usual default); without THP the memory works as it is.
func adviseHuge(b []byte) { _ = unix.Madvise(b, unix.MADV_HUGEPAGE) }
