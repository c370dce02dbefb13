package gguf

import (
	"encoding/binary"
	"github.com/armor-llm/armor/internal/hostile"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/armor-llm/armor/model/limits"
)

// raw builds GGUF bytes by hand, so that tests can write what Write refuses.
type raw struct{ b []byte }

func newRaw(nt, nkv uint64) *raw {
	r := &raw{b: []byte("GGUF")}
	r.u32(3)
	r.u64(nt)
	r.u64(nkv)
	return r
}
func (r *raw) u32(v uint32) *raw { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }

// tensorInfo appends an F32 tensor info of shape [n] at offset off.
func (r *raw) tensorInfo(name string, n, off uint64) *raw {
	return r.str(name).u32(1).u64(n).u32(0).u64(off)
}

// pad aligns to 32 and appends n data bytes.
func (r *raw) data(n int) *raw {
	for len(r.b)%32 != 0 {
		r.b = append(r.b, 0)
	}
	r.b = append(r.b, make([]byte, n)...)
	return r
}

// openHostile writes b to a file, opens it, and checks that it fails fast,
// with little memory, with an error naming the file and containing want.
func openHostile(t *testing.T, b []byte, want string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hostile.gguf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var f *File
	var err error
	hostile.Bounded(t, want, func() { f, err = Open(path) })
	if err == nil {
		f.Close()
		t.Fatalf("%s opened without error", want)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the file and %q", err, want)
	}
}

func TestHostileOffsetWraps(t *testing.T) {
	// An offset near 2^64 (aligned) must not pass the end-of-file check by
	// wrapping around.
	off := uint64(math.MaxUint64) &^ 31
	b := newRaw(1, 0).tensorInfo("w", 8, off).data(32).b
	openHostile(t, b, "beyond the end")
	b = newRaw(1, 0).tensorInfo("w", 8, off-uint64(64)).data(32).b
	openHostile(t, b, "truncated")
}

func TestHostileDimensionsOverflow(t *testing.T) {
	b := newRaw(1, 0).str("w").u32(2).u64(1 << 32).u64(1 << 32).u32(0).u64(0).data(32).b
	openHostile(t, b, `tensor "w": bad dimensions`)
}

func TestHostileUnknownArrayType(t *testing.T) {
	// A huge array of an unknown element type: rejected before any
	// allocation (it used to be sized at one byte per element).
	b := newRaw(0, 1).str("k").u32(typeArray).u32(99).u64(1 << 40).b
	openHostile(t, b, "unknown element type 99")
}

func TestHostileArrayTooLong(t *testing.T) {
	b := newRaw(0, 1).str("k").u32(typeArray).u32(typeUint8).u64(limits.MaxArrayElems + 1).b
	b = append(b, make([]byte, limits.MaxArrayElems+1)...)
	openHostile(t, b, "exceeds the limit")
}

func TestHostileDuplicateKey(t *testing.T) {
	b := newRaw(0, 2).str("general.architecture").u32(typeString).str("llama").
		str("general.architecture").u32(typeString).str("qwen2").b
	openHostile(t, b, `metadata key "general.architecture" appears twice`)
}

func TestHostileOverlappingTensors(t *testing.T) {
	b := newRaw(2, 0).tensorInfo("a", 16, 0).tensorInfo("b", 8, 32).data(128).b
	openHostile(t, b, `tensors "a" and "b" overlap`)
	b = newRaw(2, 0).tensorInfo("a", 8, 0).tensorInfo("b", 8, 0).data(64).b
	openHostile(t, b, "overlap")
	b = newRaw(2, 0).tensorInfo("a", 8, 0).tensorInfo("a", 8, 32).data(64).b
	openHostile(t, b, `tensor "a" appears twice`)
}

// A large metadata array is stored typed: a 16 MB uint32 array costs 16 MB,
// not 16+ bytes per element as []any did.
func TestLargeArrayTyped(t *testing.T) {
	const n = 4 << 20
	r := newRaw(0, 1).str("k").u32(typeArray).u32(typeUint32).u64(n)
	r.b = append(r.b, make([]byte, 4*n)...)
	path := filepath.Join(t.TempDir(), "big.gguf")
	if err := os.WriteFile(path, r.b, 0o644); err != nil {
		t.Fatal(err)
	}
	r.b = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f, err := Open(path)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, ok := f.KV["k"].([]uint32); !ok || len(v) != n {
		t.Fatalf("k is %T", f.KV["k"])
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 24<<20 {
		t.Errorf("a 16 MB array allocated %d MB", a>>20)
	}
}
