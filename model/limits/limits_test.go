package limits

import (
	"errors"
	"math"
	"testing"
)

func TestArithmetic(t *testing.T) {
	if _, err := Add(math.MaxInt64, 1); !errors.Is(err, ErrOverflow) {
		t.Errorf("Add overflow: %v", err)
	}
	if s, err := Add(2, 3); err != nil || s != 5 {
		t.Errorf("Add(2,3) = %d, %v", s, err)
	}
	if _, err := Mul(1<<32, 1<<32); !errors.Is(err, ErrOverflow) {
		t.Errorf("Mul overflow: %v", err)
	}
	if _, err := Mul(-1, 2); err == nil {
		t.Error("Mul of a negative: no error")
	}
	if p, err := Mul(1<<31, 1<<31); err != nil || p != 1<<62 {
		t.Errorf("Mul(2^31,2^31) = %d, %v", p, err)
	}
	// A shape whose product wraps to 0 in 64 bits.
	if n, err := Elements([]int64{1 << 32, 1 << 32}); err == nil {
		t.Errorf("Elements wrapped to %d", n)
	}
	if n, err := Elements([]uint64{1 << 40, 1 << 40}); err == nil {
		t.Errorf("Elements wrapped to %d", n)
	}
	if _, err := Elements([]int{3, -1}); err == nil {
		t.Error("negative dimension accepted")
	}
	if n, err := Elements([]int{2, 3, 4}); err != nil || n != 24 {
		t.Errorf("Elements = %d, %v", n, err)
	}
	// An offset near 2^64 must not pass an end-of-file check.
	if _, err := SpanU(math.MaxUint64-15, 32, 1000); err == nil {
		t.Error("SpanU accepted a wrapping offset")
	}
	if _, err := Span(math.MaxInt64-15, 32, 1000); err == nil {
		t.Error("Span accepted a wrapping offset")
	}
	if end, err := Span(10, 20, 30); err != nil || end != 30 {
		t.Errorf("Span = %d, %v", end, err)
	}
	if _, err := Span(10, 21, 30); err == nil {
		t.Error("Span past the end accepted")
	}
}
