// Package gguf reads and writes GGUF v2/v3 files (llama.cpp's model format).
// The reader memory-maps the file and validates every header field before it
// allocates; tensor data are views on the mapping.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/armor-llm/armor/model/limits"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/tensor"
)

// Value types of metadata.
const (
	typeUint8   = 0
	typeInt8    = 1
	typeUint16  = 2
	typeInt16   = 3
	typeUint32  = 4
	typeInt32   = 5
	typeFloat32 = 6
	typeBool    = 7
	typeString  = 8
	typeArray   = 9
	typeUint64  = 10
	typeInt64   = 11
	typeFloat64 = 12
)

// ggml tensor types we understand.
var ggmlTypes = map[uint32]tensor.DType{
	0:  tensor.F32,
	1:  tensor.F16,
	2:  tensor.Q4_0,
	8:  tensor.Q8_0,
	30: tensor.BF16,
}

var ggmlTypeNames = map[uint32]string{
	3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K",
	13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS",
	19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8",
	25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
}

// File is an open GGUF file.
type File struct {
	Path    string
	Version uint32
	// KV holds scalars (uint8..int64, float32/64, bool, string) and arrays
	// as typed slices ([]uint8..[]float64, []bool, []string; arrays of
	// arrays as []any).
	KV      map[string]any
	Tensors []*tensor.Tensor
	byName  map[string]*tensor.Tensor
	m       *mmap.File
}

// Open maps and parses path.
func Open(path string) (*File, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := parse(m.Data)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	f.Path, f.m = path, m
	return f, nil
}

// Parse parses a GGUF file held in memory (tests, fuzzing); path names it
// in errors. Tensors are views on b; Close must not be called.
func Parse(path string, b []byte) (*File, error) {
	f, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// Close unmaps the file; tensors must not be used afterwards.
func (f *File) Close() error { return f.m.Close() }

// Tensor returns the named tensor or nil.
func (f *File) Tensor(name string) *tensor.Tensor { return f.byName[name] }

type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("truncated file")

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: need %d bytes at offset %d, file has %d", errShort, n, r.off, len(r.b))
		return false
	}
	return true
}

func (r *reader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	r.off += 2
	return binary.LittleEndian.Uint16(r.b[r.off-2:])
}

func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	r.off += 4
	return binary.LittleEndian.Uint32(r.b[r.off-4:])
}

func (r *reader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	r.off += 8
	return binary.LittleEndian.Uint64(r.b[r.off-8:])
}

func (r *reader) str() string {
	n := r.u64()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)-r.off) {
		r.err = fmt.Errorf("%w: string of %d bytes at offset %d", errShort, n, r.off)
		return ""
	}
	r.off += int(n)
	return string(r.b[r.off-int(n) : r.off])
}

// minSize is the smallest encoding of one value of type t (0 for an unknown
// type), used to reject array lengths that cannot fit in the file before
// allocating.
func minSize(t uint32) int {
	switch t {
	case typeUint8, typeInt8, typeBool:
		return 1
	case typeUint16, typeInt16:
		return 2
	case typeUint32, typeInt32, typeFloat32:
		return 4
	case typeString, typeUint64, typeInt64, typeFloat64:
		return 8
	case typeArray:
		return 12
	}
	return 0
}

// maxNestedArray bounds an array of arrays, which real files do not use:
// each element costs an interface and a slice header, far more than its
// 12 encoded bytes.
const maxNestedArray = 4096

func (r *reader) value(t uint32, depth int) any {
	switch t {
	case typeUint8:
		return r.u8()
	case typeInt8:
		return int8(r.u8())
	case typeUint16:
		return r.u16()
	case typeInt16:
		return int16(r.u16())
	case typeUint32:
		return r.u32()
	case typeInt32:
		return int32(r.u32())
	case typeFloat32:
		return math.Float32frombits(r.u32())
	case typeBool:
		return r.u8() != 0
	case typeString:
		return r.str()
	case typeUint64:
		return r.u64()
	case typeInt64:
		return int64(r.u64())
	case typeFloat64:
		return math.Float64frombits(r.u64())
	case typeArray:
		if depth > 2 {
			r.err = fmt.Errorf("arrays nested too deeply at offset %d", r.off)
			return nil
		}
		at := r.off
		et := r.u32()
		n := r.u64()
		if r.err != nil {
			return nil
		}
		ms := minSize(et)
		switch {
		case ms == 0:
			r.err = fmt.Errorf("array at offset %d has unknown element type %d", at, et)
			return nil
		case n > limits.MaxArrayElems:
			r.err = fmt.Errorf("array of %d elements at offset %d exceeds the limit of %d", n, at, limits.MaxArrayElems)
			return nil
		case et == typeArray && n > maxNestedArray:
			r.err = fmt.Errorf("array of %d arrays at offset %d exceeds the limit of %d", n, at, maxNestedArray)
			return nil
		case n > uint64((len(r.b)-r.off)/ms):
			r.err = fmt.Errorf("%w: array of %d elements at offset %d", errShort, n, at)
			return nil
		}
		return r.array(et, int(n), depth)
	}
	if r.err == nil {
		r.err = fmt.Errorf("unknown metadata value type %d at offset %d", t, r.off)
	}
	return nil
}

// array decodes a homogeneous array into a typed slice ([]uint8 ...
// []float64, []bool, []string), so that an element costs its own size and
// not an interface; only arrays of arrays become []any. The caller has
// checked that n elements fit in the rest of the file.
func (r *reader) array(et uint32, n int, depth int) any {
	switch et {
	case typeString:
		out := make([]string, n)
		for i := range out {
			out[i] = r.str()
			if r.err != nil {
				return nil
			}
		}
		return out
	case typeUint8:
		return readN(r, n, 1, func(b []byte) uint8 { return b[0] })
	case typeInt8:
		return readN(r, n, 1, func(b []byte) int8 { return int8(b[0]) })
	case typeBool:
		return readN(r, n, 1, func(b []byte) bool { return b[0] != 0 })
	case typeUint16:
		return readN(r, n, 2, binary.LittleEndian.Uint16)
	case typeInt16:
		return readN(r, n, 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) })
	case typeUint32:
		return readN(r, n, 4, binary.LittleEndian.Uint32)
	case typeInt32:
		return readN(r, n, 4, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) })
	case typeFloat32:
		return readN(r, n, 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
	case typeUint64:
		return readN(r, n, 8, binary.LittleEndian.Uint64)
	case typeInt64:
		return readN(r, n, 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })
	case typeFloat64:
		return readN(r, n, 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })
	}
	out := make([]any, n)
	for i := range out {
		out[i] = r.value(et, depth+1)
		if r.err != nil {
			return nil
		}
	}
	return out
}

// readN decodes n fixed-size elements of size bytes each.
func readN[T any](r *reader, n, size int, dec func([]byte) T) []T {
	if !r.need(n * size) {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = dec(r.b[r.off+i*size:])
	}
	r.off += n * size
	return out
}

func parse(b []byte) (*File, error) {
	r := &reader{b: b}
	if len(b) < 4 || string(b[:4]) != "GGUF" {
		return nil, errors.New("not a GGUF file (bad magic)")
	}
	r.off = 4
	f := &File{KV: map[string]any{}, byName: map[string]*tensor.Tensor{}}
	f.Version = r.u32()
	if r.err == nil && (f.Version < 2 || f.Version > 3) {
		return nil, fmt.Errorf("unsupported GGUF version %d (want 2 or 3)", f.Version)
	}
	nt, nkv := r.u64(), r.u64()
	if r.err != nil {
		return nil, r.err
	}
	// Each KV pair takes at least 8+4+1 bytes and each tensor info 8+4+8+4+8.
	if nkv > uint64(len(b)/13) || nt > uint64(len(b)/32) {
		return nil, fmt.Errorf("header claims %d tensors and %d metadata keys, more than a %d-byte file can hold: truncated file?", nt, nkv, len(b))
	}
	if nt > limits.MaxTensors {
		return nil, fmt.Errorf("header claims %d tensors, more than the limit of %d", nt, limits.MaxTensors)
	}
	for i := uint64(0); i < nkv; i++ {
		k := r.str()
		t := r.u32()
		v := r.value(t, 0)
		if r.err != nil {
			return nil, fmt.Errorf("metadata key %d (%q): %w", i, k, r.err)
		}
		if _, dup := f.KV[k]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice", k)
		}
		f.KV[k] = v
	}
	align := uint64(32)
	if a, ok := f.KV["general.alignment"]; ok {
		av, ok := toUint(a)
		if !ok || av == 0 || av&(av-1) != 0 || av > 1<<20 {
			return nil, fmt.Errorf("general.alignment %v is not a power of two", a)
		}
		align = av
	}
	type info struct {
		t      *tensor.Tensor
		offset uint64
		size   int64
	}
	infos := make([]info, 0, nt)
	for i := uint64(0); i < nt; i++ {
		name := r.str()
		nd := r.u32()
		if r.err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, r.err)
		}
		if nd == 0 || nd > 4 {
			return nil, fmt.Errorf("tensor %q: %d dimensions (want 1 to 4)", name, nd)
		}
		ne := make([]uint64, nd)
		for d := range ne {
			ne[d] = r.u64()
		}
		gt := r.u32()
		off := r.u64()
		if r.err != nil {
			return nil, fmt.Errorf("tensor info %q: %w", name, r.err)
		}
		n, err := limits.Elements(ne)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("tensor %q: bad dimensions %v", name, ne)
		}
		dt, ok := ggmlTypes[gt]
		if !ok {
			tn := ggmlTypeNames[gt]
			if tn == "" {
				tn = fmt.Sprintf("type %d", gt)
			}
			return nil, fmt.Errorf("tensor %q: ggml type %s is not supported (supported: F32, F16, BF16, Q8_0, Q4_0)", name, tn)
		}
		if ne[0]%uint64(dt.BlockSize()) != 0 {
			return nil, fmt.Errorf("tensor %q: row of %d elements is not a whole number of %v blocks", name, ne[0], dt)
		}
		size, err := tensor.ByteSize(dt, n)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		shape := make([]int, nd)
		for d := range ne {
			shape[d] = int(ne[len(ne)-1-d]) // GGUF lists the innermost dimension first
		}
		if f.byName[name] != nil {
			return nil, fmt.Errorf("tensor %q appears twice", name)
		}
		t := &tensor.Tensor{Name: name, DType: dt, Shape: shape}
		f.byName[name] = t
		infos = append(infos, info{t, off, size})
	}
	dataStart := (uint64(r.off) + align - 1) / align * align
	for _, in := range infos {
		if in.offset%align != 0 {
			return nil, fmt.Errorf("tensor %q: data offset %d is not aligned to %d", in.t.Name, in.offset, align)
		}
		if in.offset > uint64(len(b)) {
			return nil, fmt.Errorf("tensor %q: data offset %d lies beyond the end of the file (%d bytes): truncated file", in.t.Name, in.offset, len(b))
		}
		end, err := limits.SpanU(dataStart+in.offset, uint64(in.size), int64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", in.t.Name, err)
		}
		in.t.Data = b[dataStart+in.offset : end]
		f.Tensors = append(f.Tensors, in.t)
	}
	// Tensors must not share bytes: two names for one region, or regions
	// that overlap, are a malformed (or deliberately confusing) file.
	sorted := append([]info(nil), infos...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].offset < sorted[j].offset })
	for i := 1; i < len(sorted); i++ {
		p, c := sorted[i-1], sorted[i]
		if c.offset < p.offset+uint64(p.size) {
			return nil, fmt.Errorf("tensors %q and %q overlap (data at offsets %d and %d, the first %d bytes long)", p.t.Name, c.t.Name, p.offset, c.offset, p.size)
		}
	}
	return f, nil
}

func toUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Uint returns an integer metadata value.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.KV[key]
	if !ok {
		return 0, false
	}
	return toUint(v)
}

// Float returns a float metadata value (integers are accepted too).
func (f *File) Float(key string) (float64, bool) {
	switch x := f.KV[key].(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	u, ok := f.Uint(key)
	return float64(u), ok
}

// String returns a string metadata value.
func (f *File) String(key string) (string, bool) {
	s, ok := f.KV[key].(string)
	return s, ok
}

// Bool returns a bool metadata value.
func (f *File) Bool(key string) (bool, bool) {
	b, ok := f.KV[key].(bool)
	return b, ok
}

// Strings returns a string-array metadata value.
func (f *File) Strings(key string) ([]string, bool) {
	s, ok := f.KV[key].([]string)
	return s, ok
}

// Keys lists metadata keys in order, for tools.
func (f *File) Keys() []string {
	ks := make([]string, 0, len(f.KV))
	for k := range f.KV {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
