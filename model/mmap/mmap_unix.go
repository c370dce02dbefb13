//go:build unix

package mmap

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"unsafe"

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

// hugePage is the size of an x86-64 and arm64 transparent huge page.
const hugePage = 2 << 20

// hugePageAligned says that copies are aligned to hugePage and read-only.
const hugePageAligned = true

// Anon returns size bytes of zeroed private memory aligned to 2 MiB and
// advised as transparent huge pages, and the function that frees it.
func Anon(size int) ([]byte, func() error, error) {
	raw, err := unix.Mmap(-1, 0, size+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, nil, err
	}
	off := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) % hugePage); r != 0 {
		off = hugePage - r
	}
	data := raw[off : off+size : off+size]
	adviseHuge(data)
	return data, func() error { return unix.Munmap(raw) }, nil
}

// copyFile reads the file into Anon memory, then makes it read-only like a
// mapped file.
func copyFile(f *os.File, size int) ([]byte, func() error, error) {
	data, free, err := Anon(size)
	if err != nil {
		return nil, nil, err
	}
	if err := readInto(f, data); err != nil {
		free()
		return nil, nil, err
	}
	if err := unix.Mprotect(data, unix.PROT_READ); err != nil {
		free()
		return nil, nil, err
	}
	return data, free, nil
}

// AvailableMemory is MemAvailable from /proc/meminfo in bytes, or 0 where
// it cannot be read (then Auto maps).
func AvailableMemory() int64 {
	fh, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// release frees the whole pages inside b (MADV_DONTNEED: private
// anonymous pages read as zeros afterwards).
func release(b []byte) {
	ps := uintptr(os.Getpagesize())
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	start := int((ps - lo%ps) % ps)
	end := len(b) - int((lo+uintptr(len(b)))%ps)
	if end-start <= 0 {
		return
	}
	_ = unix.Madvise(b[start:end], unix.MADV_DONTNEED)
}
