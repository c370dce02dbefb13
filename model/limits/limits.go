// Package limits holds, in one place, the bounds that readers of untrusted
// model files enforce before they allocate or loop, and overflow-checked
// arithmetic for sizes and offsets read from those files.
//
// Every limit sits well above every real model (Llama 3: 128,256 tokens,
// 80 layers for 70B; 405B: 126 layers), so that only malformed or hostile
// files hit them. docs/limits.md lists them for users.
package limits

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
)

const (
	// MaxLayers bounds a transformer's block count (largest public models:
	// 126 layers).
	MaxLayers = 1024
	// MaxVocab bounds a vocabulary (largest public: ~262k tokens).
	MaxVocab = 4 << 20
	// MaxDim bounds dim, hidden, heads, head_dim and context.
	MaxDim = 16 << 20
	// MaxTensors bounds the number of tensors in one file.
	MaxTensors = 1 << 20
	// MaxHeader bounds a JSON header (.armor, safetensors) in bytes; real
	// ones are a few hundred KiB to a few MiB (an .armor header embeds the
	// tokenizer.json).
	MaxHeader = 256 << 20
	// MaxSafetensorsHeader is the Hugging Face reader's own bound.
	MaxSafetensorsHeader = 100 << 20
	// MaxArrayElems bounds one GGUF metadata array (a 4M-token vocabulary's
	// merges are the largest real ones).
	MaxArrayElems = 16 << 20
	// MaxDims bounds the rank of a tensor.
	MaxDims = 8
	// MaxDimSize bounds one tensor dimension.
	MaxDimSize = 1 << 40

	// RegexTimeout bounds one pre-tokenizer regex match; real patterns take
	// microseconds per word.
	RegexTimeout = 500 * time.Millisecond

	// Chat template rendering budget.
	TemplateSteps       = 1 << 20 // evaluated nodes, loop iterations and items built by calls
	TemplateTime        = time.Second
	TemplateDepth       = 1000    // nesting of blocks, expressions and macro calls
	TemplateOutputBytes = 8 << 20 // rendered text and any one string built (2M tokens)
	TemplateRange       = 1 << 16 // items of one list (range()) or loop
)

// ErrOverflow is returned when a size or offset computation overflows.
var ErrOverflow = errors.New("size overflows 64 bits")

// Add returns a+b for non-negative a, b, or ErrOverflow.
func Add(a, b int64) (int64, error) {
	if a < 0 || b < 0 {
		return 0, fmt.Errorf("negative size %d + %d", a, b)
	}
	s := a + b
	if s < a {
		return 0, ErrOverflow
	}
	return s, nil
}

// Mul returns a*b for non-negative a, b, or ErrOverflow.
func Mul(a, b int64) (int64, error) {
	if a < 0 || b < 0 {
		return 0, fmt.Errorf("negative size %d × %d", a, b)
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, ErrOverflow
	}
	return int64(lo), nil
}

// Elements returns the element count of shape, checking each dimension
// (0 ≤ d ≤ MaxDimSize, at most MaxDims of them) and the product.
func Elements[T ~int | ~int32 | ~int64 | ~uint64](shape []T) (int64, error) {
	if len(shape) > MaxDims {
		return 0, fmt.Errorf("shape %v has %d dimensions (limit %d)", shape, len(shape), MaxDims)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 || uint64(d) > MaxDimSize {
			return 0, fmt.Errorf("shape %v: dimension %d out of range", shape, d)
		}
		var err error
		if n, err = Mul(n, int64(d)); err != nil {
			return 0, fmt.Errorf("shape %v: element count %w", shape, err)
		}
	}
	return n, nil
}

// Span checks that [offset, offset+size) lies inside a region of fileSize
// bytes, without overflow, and returns the end.
func Span(offset, size, fileSize int64) (int64, error) {
	if offset < 0 || size < 0 {
		return 0, fmt.Errorf("negative offset %d or size %d", offset, size)
	}
	end, err := Add(offset, size)
	if err != nil || end > fileSize {
		return 0, fmt.Errorf("data [%d, +%d) lies beyond the end (%d bytes): truncated file", offset, size, fileSize)
	}
	return end, nil
}

// SpanU is Span for unsigned offsets and sizes as binary headers hold them.
func SpanU(offset, size uint64, fileSize int64) (int64, error) {
	if offset > math.MaxInt64 || size > math.MaxInt64 {
		return 0, fmt.Errorf("data [%d, +%d) lies beyond the end (%d bytes): truncated file", offset, size, fileSize)
	}
	return Span(int64(offset), int64(size), fileSize)
}
