// Package mmap brings whole files read-only into memory, so that tensors can
// be used in place instead of decoded into fresh buffers.
//
// Two ways are offered (Mode). Mapping the file is instant and shares the
// page cache, but the kernel maps file pages 4 KiB at a time: a decode step
// streams every weight once, and at 4 KiB pages it misses the TLB once per
// page. Copying the file into private memory on 2 MiB transparent huge
// pages costs one read at load time and makes decode measurably faster
// (docs/benchmarks.md, "Weights in memory"). Auto copies what fits
// comfortably in the available memory and maps the rest.
package mmap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// readProgress, if set, is told how much of a file Open has copied so far.
var readProgress atomic.Pointer[func(path string, done, total int64)]

// SetReadProgress sets a function that Open calls while it copies a file
// into memory (Copy mode), with the bytes read so far, about every 64 MiB;
// nil removes it. Mapping is instant and reports nothing. Like SetMode it is
// process-wide: it is meant for commands that load one model at a time.
func SetReadProgress(fn func(path string, done, total int64)) {
	if fn == nil {
		readProgress.Store(nil)
		return
	}
	readProgress.Store(&fn)
}

// readInto fills data from the start of f, in chunks, reporting progress.
func readInto(f *os.File, data []byte) error {
	const chunk = 64 << 20
	fn := readProgress.Load()
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		if _, err := io.ReadFull(io.NewSectionReader(f, int64(off), int64(end-off)), data[off:end]); err != nil {
			return err
		}
		if fn != nil {
			(*fn)(f.Name(), int64(end), int64(len(data)))
		}
	}
	return nil
}

// Mode says how Open brings a file into memory.
type Mode int32

const (
	// Auto copies a file that takes less than half of the available memory
	// (MemAvailable) and maps a larger one.
	Auto Mode = iota
	// Map maps the file read-only: instant, shared with the page cache.
	Map
	// Copy reads the file into private read-only memory backed by
	// transparent huge pages where the system allows them.
	Copy
)

func (m Mode) String() string {
	switch m {
	case Map:
		return "yes"
	case Copy:
		return "no"
	}
	return "auto"
}

// modeChoices says which values an --mmap flag takes.
const modeChoices = "use auto, yes (map the file) or no (copy it into memory)"

// ParseMode reads the value of an --mmap flag: auto, yes or no.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return Auto, nil
	case "yes", "true", "1", "on":
		return Map, nil
	case "no", "false", "0", "off":
		return Copy, nil
	}
	return Auto, fmt.Errorf("--mmap %q: %s", s, modeChoices)
}

// Set parses a flag value, so that a *Mode can be a flag.Value. Its error
// leaves out the flag and the value, which the flag package prints.
func (m *Mode) Set(s string) error {
	v, err := ParseMode(s)
	if err != nil {
		return errors.New(modeChoices)
	}
	*m = v
	return nil
}

// FlagHelp is the help text of an --mmap flag.
const FlagHelp = "how the weights are held: yes maps the file (instant start, shared with the page cache), no copies it into memory on 2 MiB huge pages (decode reads them faster), auto copies when the file takes under half of the available memory (default auto)"

var mode atomic.Int32

// SetMode sets how later calls to Open bring files into memory.
func SetMode(m Mode) { mode.Store(int32(m)) }

// CurrentMode reports the mode set by SetMode (default Auto).
func CurrentMode() Mode { return Mode(mode.Load()) }

// File is a read-only view of a whole file.
type File struct {
	Data   []byte
	Mapped bool // Data maps the file (false: a private copy)
	unmap  func() error
}

// held counts the bytes of open Files: [0] mapped, [1] copied.
var held [2]atomic.Int64

// Held reports the bytes of the files open now, mapped and copied, so that a
// command can say how its model is held in memory.
func Held() (mapped, copied int64) { return held[0].Load(), held[1].Load() }

// HeldAs says in a word how the open files are held: "mapped", "copied"
// or "mapped+copied" ("" when none is open).
func HeldAs() string {
	mapped, copied := Held()
	switch {
	case mapped > 0 && copied > 0:
		return "mapped+copied"
	case copied > 0:
		return "copied"
	case mapped > 0:
		return "mapped"
	}
	return ""
}

// registry holds address ranges of open files.
type registry struct {
	sync.Mutex
	r []addrRange
}

// copies are the address ranges of the files open as private copies, maps
// those of the files mapped.
var copies, maps registry

type addrRange struct{ lo, hi uintptr }

// Private reports whether b lies in a file held as a private copy (not a
// mapping of the page cache), so that Release can give its pages back.
func Private(b []byte) bool { return within(&copies, b) }

// add registers the range of data and returns what removes it.
func (reg *registry) add(data []byte) (drop func()) {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	reg.Lock()
	reg.r = append(reg.r, addrRange{lo, lo + uintptr(len(data))})
	reg.Unlock()
	return func() {
		reg.Lock()
		reg.r = slices.DeleteFunc(reg.r, func(r addrRange) bool { return r.lo == lo })
		reg.Unlock()
	}
}

// within reports whether b lies in one of the ranges of reg.
func within(reg *registry, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(len(b))
	reg.Lock()
	defer reg.Unlock()
	for _, r := range reg.r {
		if r.lo <= lo && hi <= r.hi {
			return true
		}
	}
	return false
}

// Evict drops the whole pages inside b from this process's memory when b
// lies in a mapped file (else it does nothing). Unlike Release it changes
// nothing that is read: the pages come back from the file (the page cache,
// usually) when read again. It is for a reader that is done with a part of
// a large file for now, such as the converter after calibration: the
// mapped weights it touched otherwise stay in its resident memory.
func Evict(b []byte) {
	if within(&maps, b) {
		release(b)
	}
}

// Release gives the whole memory pages inside b back to the system when b
// lies in a privately copied file (else it does nothing); they read as
// zeros afterwards. It is for weights a runtime has copied into another
// layout and will not read again.
func Release(b []byte) {
	if Private(b) {
		release(b)
	}
}

// Open brings path into memory read-only, mapped or copied as the current
// mode says. An empty file gives an empty slice.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	size := st.Size()
	if size == 0 {
		return &File{Data: []byte{}, unmap: func() error { return nil }}, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%s: file too large to map (%d bytes)", path, size)
	}
	m := CurrentMode()
	if m == Auto {
		m = Map
		if avail := AvailableMemory(); avail > 0 && size < avail/2 {
			m = Copy
		}
	}
	if m == Copy {
		data, free, err := copyFile(f, int(size))
		if err != nil {
			return nil, fmt.Errorf("%s: reading into memory: %w", path, err)
		}
		held[1].Add(size)
		drop := copies.add(data)
		return &File{Data: data, unmap: func() error {
			drop()
			held[1].Add(-size)
			return free()
		}}, nil
	}
	data, unmap, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	held[0].Add(size)
	drop := maps.add(data)
	return &File{Data: data, Mapped: true, unmap: func() error {
		drop()
		held[0].Add(-size)
		return unmap()
	}}, nil
}

// Close releases the memory; Data must not be used afterwards.
func (m *File) Close() error {
	if m == nil || m.unmap == nil {
		return nil
	}
	err := m.unmap()
	m.unmap, m.Data = nil, nil
	return err
}
