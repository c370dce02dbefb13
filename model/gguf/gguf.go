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
	KV      map[string]any // uint8..int64, float32/64, bool, string, []any
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

// minSize is the smallest encoding of one value of type t, used to reject
// array lengths that cannot fit in the file before allocating.
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
	return 1
}

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
		et := r.u32()
		n := r.u64()
		if r.err != nil {
			return nil
		}
		if n > uint64((len(r.b)-r.off)/minSize(et)) {
			r.err = fmt.Errorf("%w: array of %d elements at offset %d", errShort, n, r.off)
			return nil
		}
		return r.array(et, int(n), depth)
	}
	if r.err == nil {
		r.err = fmt.Errorf("unknown metadata value type %d at offset %d", t, r.off)
	}
	return nil
}

// array decodes homogeneous arrays into typed slices for the common cases.
func (r *reader) array(et uint32, n int, depth int) any {
	switch et {
	case typeString:
		out := make([]string, n)
		for i := range out {
			out[i] = r.str()
		}
		return out
	case typeFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(r.u32())
		}
		return out
	case typeInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(r.u32())
		}
		return out
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
		return nil, fmt.Errorf("header claims %d tensors and %d metadata keys, more than a %d-byte file can hold", nt, nkv, len(b))
	}
	for i := uint64(0); i < nkv; i++ {
		k := r.str()
		t := r.u32()
		v := r.value(t, 0)
		if r.err != nil {
			return nil, fmt.Errorf("metadata key %d (%q): %w", i, k, r.err)
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
		ne := make([]int, nd)
		n := int64(1)
		for d := range ne {
			v := r.u64()
			if v == 0 || v > 1<<40 || n > math.MaxInt64/int64(v) {
				if r.err == nil {
					return nil, fmt.Errorf("tensor %q: bad dimension %d", name, v)
				}
			}
			ne[d] = int(v)
			n *= int64(v)
		}
		gt := r.u32()
		off := r.u64()
		if r.err != nil {
			return nil, fmt.Errorf("tensor info %q: %w", name, r.err)
		}
		dt, ok := ggmlTypes[gt]
		if !ok {
			tn := ggmlTypeNames[gt]
			if tn == "" {
				tn = fmt.Sprintf("type %d", gt)
			}
			return nil, fmt.Errorf("tensor %q: ggml type %s is not supported (supported: F32, F16, BF16, Q8_0, Q4_0)", name, tn)
		}
		if ne[0]%dt.BlockSize() != 0 {
			return nil, fmt.Errorf("tensor %q: row of %d elements is not a whole number of %v blocks", name, ne[0], dt)
		}
		size, err := tensor.ByteSize(dt, n)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		shape := make([]int, nd)
		for d := range ne {
			shape[d] = ne[len(ne)-1-d] // GGUF lists the innermost dimension first
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
		start := dataStart + in.offset
		if start > uint64(len(b)) || uint64(in.size) > uint64(len(b))-start {
			return nil, fmt.Errorf("tensor %q: data [%d, %d) lies beyond the end of the file (%d bytes): truncated file", in.t.Name, start, start+uint64(in.size), len(b))
		}
		in.t.Data = b[start : start+uint64(in.size)]
		f.Tensors = append(f.Tensors, in.t)
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
