//go:build unix && !linux

package mmap

// adviseHuge does nothing: transparent huge pages are a Linux feature.
func adviseHuge(b []byte) {}
