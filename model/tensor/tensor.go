// Package tensor describes a tensor as a view on bytes (usually a memory-mapped
// file) plus a dtype and a shape. Readers never copy unless they must convert.
package tensor

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/armor-llm/armor/kernels"
)

// DType is the element type of stored tensor data, including the quantized
// GGUF types that are dequantized on load.
type DType uint8

const (
	F32 DType = iota
	F16
	BF16
	Q8_0 // GGUF: blocks of 32 int8 with one f16 scale
	Q4_0 // GGUF: blocks of 32 4-bit values with one f16 scale
	F64
	I32
	U8
)

var names = [...]string{"F32", "F16", "BF16", "Q8_0", "Q4_0", "F64", "I32", "U8"}

// ParseDType is the inverse of String.
func ParseDType(s string) (DType, bool) {
	for i, n := range names {
		if n == s {
			return DType(i), true
		}
	}
	return 0, false
}

func (d DType) String() string {
	if int(d) < len(names) {
		return names[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// BlockSize is the number of elements per storage block (32 for the
// quantized types, 1 otherwise) and BlockBytes its size in bytes.
func (d DType) BlockSize() int {
	if d == Q8_0 || d == Q4_0 {
		return 32
	}
	return 1
}

func (d DType) BlockBytes() int {
	switch d {
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case F64:
		return 8
	case U8:
		return 1
	case Q8_0:
		return 34
	case Q4_0:
		return 18
	}
	return 0
}

// Kernel maps the dtype to the weight dtype the kernels use in place, if any.
func (d DType) Kernel() (kernels.DType, bool) {
	switch d {
	case F32:
		return kernels.F32, true
	case F16:
		return kernels.F16, true
	case BF16:
		return kernels.BF16, true
	}
	return 0, false
}

// Tensor is a named view on stored bytes. Shape is outermost first: a weight
// of d_out × d_in has Shape [d_out, d_in] and rows of d_in contiguous values.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Elements is the product of the shape.
func (t *Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// ByteSize returns the number of bytes that n elements of d occupy, or an
// error if n is not a whole number of blocks or overflows.
func ByteSize(d DType, n int64) (int64, error) {
	bs := int64(d.BlockSize())
	if d.BlockBytes() == 0 {
		return 0, fmt.Errorf("unsupported dtype %v", d)
	}
	if n < 0 || n%bs != 0 {
		return 0, fmt.Errorf("%d elements is not a whole number of %v blocks of %d", n, d, bs)
	}
	b := n / bs
	if b > math.MaxInt64/int64(d.BlockBytes()) {
		return 0, fmt.Errorf("tensor size overflows")
	}
	return b * int64(d.BlockBytes()), nil
}

// Rows and Cols view the tensor as a matrix: Cols is the innermost dimension
// and Rows the product of the others (1 for a vector).
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

func (t *Tensor) Rows() int {
	c := t.Cols()
	if c == 0 {
		return 0
	}
	return t.Elements() / c
}

// String describes the tensor for error messages.
func (t *Tensor) String() string { return fmt.Sprintf("%s %v %v", t.Name, t.DType, t.Shape) }

// F32View returns the data as []float32 without copying, if the dtype is F32
// and the bytes are 4-aligned; ok is false otherwise.
func (t *Tensor) F32View() (v []float32, ok bool) {
	if t.DType != F32 || len(t.Data) == 0 || uintptr(unsafe.Pointer(&t.Data[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), len(t.Data)/4), true
}

// U16View returns F16 or BF16 data as []uint16 without copying when the bytes
// are 2-aligned.
func (t *Tensor) U16View() (v []uint16, ok bool) {
	if (t.DType != F16 && t.DType != BF16) || len(t.Data) == 0 || uintptr(unsafe.Pointer(&t.Data[0]))%2 != 0 {
		return nil, false
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&t.Data[0])), len(t.Data)/2), true
}

// ToF32 returns all elements as float32: a view for aligned F32 data,
// otherwise a converted copy.
func (t *Tensor) ToF32() []float32 {
	if v, ok := t.F32View(); ok {
		return v
	}
	out := make([]float32, t.Elements())
	DecodeF32(out, t.DType, t.Data)
	return out
}

// Row converts row i (Cols elements) into dst.
func (t *Tensor) Row(dst []float32, i int) {
	c := t.Cols()
	bs := t.DType.BlockSize()
	per := c / bs * t.DType.BlockBytes()
	DecodeF32(dst[:c], t.DType, t.Data[i*per:(i+1)*per])
}

// DecodeF32 converts len(dst) elements of type d from src (little-endian).
func DecodeF32(dst []float32, d DType, src []byte) {
	le16 := func(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
	switch d {
	case F32:
		for i := range dst {
			b := src[4*i:]
			dst[i] = math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
		}
	case F16:
		for i := range dst {
			dst[i] = kernels.F16ToF32(le16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = kernels.BF16ToF32(le16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			b := src[8*i:]
			var u uint64
			for k := 7; k >= 0; k-- {
				u = u<<8 | uint64(b[k])
			}
			dst[i] = float32(math.Float64frombits(u))
		}
	case Q8_0:
		for blk := 0; blk < len(dst)/32; blk++ {
			b := src[blk*34:]
			scale := kernels.F16ToF32(le16(b))
			for j := 0; j < 32; j++ {
				dst[blk*32+j] = scale * float32(int8(b[2+j]))
			}
		}
	case Q4_0:
		// ggml layout: byte j holds element j (low nibble) and j+16 (high).
		for blk := 0; blk < len(dst)/32; blk++ {
			b := src[blk*18:]
			scale := kernels.F16ToF32(le16(b))
			for j := 0; j < 16; j++ {
				q := b[2+j]
				dst[blk*32+j] = scale * float32(int(q&0xf)-8)
				dst[blk*32+j+16] = scale * float32(int(q>>4)-8)
			}
		}
	default:
		panic("tensor.DecodeF32: unsupported dtype " + d.String())
	}
}
