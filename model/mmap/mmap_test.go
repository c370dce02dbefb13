package mmap

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestModesReadTheSameBytes(t *testing.T) {
	defer SetMode(CurrentMode())
	dir := t.TempDir()
	want := make([]byte, 3<<20+123) // not a multiple of the page or huge-page size
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	path := filepath.Join(dir, "w.bin")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mode{Map, Copy, Auto} {
		SetMode(m)
		f, err := Open(path)
		if err != nil {
			t.Fatalf("mode %v: %v", m, err)
		}
		if !bytes.Equal(f.Data, want) {
			t.Errorf("mode %v: contents differ from the file", m)
		}
		if m == Map && !f.Mapped || m == Copy && f.Mapped {
			t.Errorf("mode %v: Mapped = %v", m, f.Mapped)
		}
		// Auto copies a file that takes under half of the available memory.
		if m == Auto && AvailableMemory() > 2*int64(len(want)) && f.Mapped {
			t.Errorf("auto mapped a %d-byte file with %d bytes available", len(want), AvailableMemory())
		}
		if !f.Mapped && unsafePointerMod(f.Data, hugePage) != 0 && hugePageAligned {
			t.Errorf("mode %v: copy not aligned to 2 MiB", m)
		}
		mapped, copied := Held()
		if f.Mapped && mapped < int64(len(want)) || !f.Mapped && copied < int64(len(want)) {
			t.Errorf("mode %v: Held() = %d mapped, %d copied with a %d-byte file open", m, mapped, copied, len(want))
		}
		if err := f.Close(); err != nil {
			t.Errorf("mode %v: close: %v", m, err)
		}
	}
}

// A copy is read-only like a mapping: a stray write through a tensor slice
// faults instead of silently changing the weights.
func TestCopyIsReadOnly(t *testing.T) {
	if !hugePageAligned {
		t.Skip("copies are plain heap memory on this OS")
	}
	defer SetMode(CurrentMode())
	path := filepath.Join(t.TempDir(), "w.bin")
	if err := os.WriteFile(path, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	SetMode(Copy)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	faulted := func() (ok bool) {
		defer func() { ok = recover() != nil }()
		f.Data[0] = 'W'
		return false
	}()
	if !faulted {
		t.Fatal("writing to a copied file did not fault")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file opened")
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	f, err := Open(empty)
	if err != nil || len(f.Data) != 0 {
		t.Errorf("empty file: %v, %d bytes", err, len(f.Data))
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]Mode{"auto": Auto, "yes": Map, "no": Copy, "": Auto} {
		if m, err := ParseMode(s); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", s, m, err, want)
		}
	}
	if _, err := ParseMode("sometimes"); err == nil || !strings.Contains(err.Error(), `--mmap "sometimes": use auto`) {
		t.Errorf("bad value: %v", err)
	}
	// As a flag, the flag package names the flag and the value once.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	var m Mode
	fs.Var(&m, "mmap", FlagHelp)
	if err := fs.Parse([]string{"--mmap", "sometimes"}); err == nil || strings.Count(err.Error(), "sometimes") != 1 ||
		!strings.Contains(err.Error(), "-mmap") || !strings.Contains(err.Error(), "use auto") {
		t.Errorf("flag error: %v", err)
	}
}

func unsafePointerMod(b []byte, n uintptr) uintptr {
	return uintptr(unsafe.Pointer(&b[0])) % n
}

func TestAnon(t *testing.T) {
	b, free, err := Anon(5<<20 + 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 5<<20+7 || cap(b) != len(b) {
		t.Fatalf("len %d cap %d", len(b), cap(b))
	}
	if hugePageAligned && unsafePointerMod(b, hugePage) != 0 {
		t.Error("not aligned to 2 MiB")
	}
	for i := 0; i < len(b); i += 4093 {
		if b[i] != 0 {
			t.Fatalf("byte %d not zero", i)
		}
		b[i] = 1
	}
	if err := free(); err != nil {
		t.Fatal(err)
	}
}

// Release frees the whole pages of a slice of a copied file (they read as
// zeros) and leaves the rest, and does nothing to a mapped file.
func TestRelease(t *testing.T) {
	defer SetMode(CurrentMode())
	want := bytes.Repeat([]byte{7}, 5*4096+100)
	path := writeTemp(t, want)
	m := openAs(t, Map, path)
	if Private(m.Data) {
		t.Error("a mapped file counts as a private copy")
	}
	Release(m.Data[:4096*3])
	if !bytes.Equal(m.Data, want) {
		t.Error("Release changed a mapped file")
	}
	m.Close()
	c := openAs(t, Copy, path)
	if !Private(c.Data[10:20]) || Private(want) {
		t.Fatal("Private does not tell the copy from other memory")
	}
	if !hugePageAligned {
		c.Close()
		return
	}
	Release(c.Data[100 : 3*4096+200]) // whole pages 1 and 2 only
	for i, b := range c.Data {
		zero := i >= 4096 && i < 3*4096
		if zero && b != 0 || !zero && b != 7 {
			t.Fatalf("byte %d = %d after Release", i, b)
		}
	}
	data := c.Data
	c.Close()
	if Private(data) {
		t.Error("a closed copy still counts as private")
	}
}

// Evict drops the pages of a mapped file from memory without changing what
// is read (they come back from the file), and leaves a private copy alone.
func TestEvict(t *testing.T) {
	defer SetMode(CurrentMode())
	want := make([]byte, 8*4096+100)
	for i := range want {
		want[i] = byte(i*7 + 3)
	}
	path := writeTemp(t, want)
	m := openAs(t, Map, path)
	if !bytes.Equal(m.Data, want) {
		t.Fatal("mapped file reads wrong")
	}
	Evict(m.Data)
	Evict(m.Data[100 : 5*4096])
	if !bytes.Equal(m.Data, want) {
		t.Error("Evict changed what a mapped file reads")
	}
	// On Linux the pages leave the resident set: a 32 MiB mapping, read
	// through, then evicted.
	if big, ok := rssFileOf(t, 32<<20); ok {
		before := rssFile()
		Evict(big.Data)
		if after := rssFile(); before-after < 24<<20 {
			t.Errorf("RssFile %d → %d bytes after evicting a 32 MiB mapping", before, after)
		}
		big.Close()
	}
	data := m.Data
	m.Close()
	if within(&maps, data) {
		t.Error("a closed mapping still counts as mapped")
	}
	c := openAs(t, Copy, path)
	defer c.Close()
	if within(&maps, c.Data) {
		t.Fatal("a private copy counts as mapped")
	}
	Evict(c.Data)
	if !bytes.Equal(c.Data, want) {
		t.Error("Evict changed a private copy")
	}
	heap := append([]byte(nil), want...)
	Evict(heap)
	if !bytes.Equal(heap, want) {
		t.Error("Evict changed heap memory")
	}
}

// Copying reports its progress in chunks up to the whole file; mapping
// reports nothing.
func TestReadProgress(t *testing.T) {
	defer SetMode(CurrentMode())
	path := filepath.Join(t.TempDir(), "w.bin")
	size := int64(130<<20 + 5) // three chunks of 64 MiB, the last short
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	var reports []int64
	SetReadProgress(func(p string, done, total int64) {
		if p != path || total != size {
			t.Errorf("report for %s of %d bytes", p, total)
		}
		reports = append(reports, done)
	})
	defer SetReadProgress(nil)
	SetMode(Copy)
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if len(reports) != 3 || reports[0] != 64<<20 || reports[2] != size {
		t.Errorf("copy reports %v", reports)
	}
	reports = nil
	SetMode(Map)
	if m, err = Open(path); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if len(reports) != 0 {
		t.Errorf("map reports %v", reports)
	}
}

// rssFileOf maps a new file of n bytes and reads it through (Linux only).
func rssFileOf(t *testing.T, n int) (*File, bool) {
	if runtime.GOOS != "linux" {
		return nil, false
	}
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, n), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for i := 0; i < len(f.Data); i += 4096 {
		sum += int(f.Data[i])
	}
	if sum != n/4096 {
		t.Fatalf("read %d pages of ones, sum %d", n/4096, sum)
	}
	return f, true
}

// rssFile is RssFile of /proc/self/status in bytes.
func rssFile() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// writeTemp writes data to a new file in the test's folder.
func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openAs opens path in mode (which stays set; the tests restore theirs).
func openAs(t *testing.T, mode Mode, path string) *File {
	t.Helper()
	SetMode(mode)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
