package tensor

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/armor-llm/armor/kernels"
)

// quantizeQ8_0 and quantizeQ4_0 follow ggml's reference quantizers
// (quantize_row_q8_0_ref, quantize_row_q4_0_ref), so decoding their output
// checks our reading of the block layouts.
func quantizeQ8_0(x []float32) []byte {
	out := make([]byte, 0, len(x)/32*34)
	for b := 0; b < len(x)/32; b++ {
		blk := x[b*32 : (b+1)*32]
		var amax float32
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		id := float32(0)
		if d != 0 {
			id = 1 / d
		}
		out = binary.LittleEndian.AppendUint16(out, kernels.F32ToF16(d))
		for _, v := range blk {
			out = append(out, byte(int8(math.Round(float64(v*id)))))
		}
	}
	return out
}

func quantizeQ4_0(x []float32) []byte {
	out := make([]byte, 0, len(x)/32*18)
	for b := 0; b < len(x)/32; b++ {
		blk := x[b*32 : (b+1)*32]
		var amax, mx float32
		for _, v := range blk {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, mx = a, v
			}
		}
		d := mx / -8
		id := float32(0)
		if d != 0 {
			id = 1 / d
		}
		out = binary.LittleEndian.AppendUint16(out, kernels.F32ToF16(d))
		for j := 0; j < 16; j++ {
			q0 := min(15, int(int8(blk[j]*id+8.5)))
			q1 := min(15, int(int8(blk[j+16]*id+8.5)))
			out = append(out, byte(q0)|byte(q1)<<4)
		}
	}
	return out
}

func TestDequantize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 32*7)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, c := range []struct {
		dt  DType
		q   []byte
		tol float64 // in units of the block's max |x|
	}{{Q8_0, quantizeQ8_0(x), 0.5 / 127 * 1.01}, {Q4_0, quantizeQ4_0(x), 1.0 / 8 * 1.01}} {
		got := make([]float32, len(x))
		DecodeF32(got, c.dt, c.q)
		for b := 0; b < len(x)/32; b++ {
			var amax float64
			for _, v := range x[b*32 : (b+1)*32] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			for j := b * 32; j < (b+1)*32; j++ {
				if d := math.Abs(float64(got[j] - x[j])); d > c.tol*amax+1e-3*amax {
					t.Fatalf("%v: element %d: %v vs %v (block max %v)", c.dt, j, got[j], x[j], amax)
				}
			}
		}
		// Row access agrees with whole-tensor decoding.
		tt := &Tensor{Name: "w", DType: c.dt, Shape: []int{7, 32}, Data: c.q}
		row := make([]float32, 32)
		tt.Row(row, 3)
		for j := range row {
			if row[j] != got[3*32+j] {
				t.Fatalf("%v: Row disagrees with DecodeF32", c.dt)
			}
		}
	}
}
