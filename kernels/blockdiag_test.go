package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randBlockDiag(r *rand.Rand, dt DType, n, b int) *BlockDiag {
	v := randDense(r, dt, 1, BlockDiagLen(n, b))
	return &BlockDiag{DType: dt, N: n, B: b, F32: v.F32, U16: v.U16}
}

// bdRef applies d in float64 to each of n tokens of x, returning the result
// and the same product with absolute values (for error bounds).
func bdRef(d *BlockDiag, x, xabs []float64, n int) (y, yabs []float64) {
	y, yabs = make([]float64, n*d.N), make([]float64, n*d.N)
	w := make([]float64, d.N*d.B) // row i's block values, widened once
	for i := 0; i < d.N; i++ {
		k := i / d.B
		for j := k * d.B; j < min(d.N, (k+1)*d.B); j++ {
			w[i*d.B+j-k*d.B] = float64(d.At(i, j))
		}
	}
	for t := 0; t < n; t++ {
		for i := 0; i < d.N; i++ {
			k := i / d.B
			for j := k * d.B; j < min(d.N, (k+1)*d.B); j++ {
				wv := w[i*d.B+j-k*d.B]
				y[t*d.N+i] += wv * x[t*d.N+j]
				yabs[t*d.N+i] += math.Abs(wv) * xabs[t*d.N+j]
			}
		}
	}
	return
}

func to64(v []float32) (x, abs []float64) {
	x, abs = make([]float64, len(v)), make([]float64, len(v))
	for i, f := range v {
		x[i], abs[i] = float64(f), math.Abs(float64(f))
	}
	return
}

var bdShapes = [][2]int{{1, 1}, {5, 2}, {16, 16}, {33, 8}, {100, 32}, {130, 128}, {64, 7}, {40, 64}}

func TestBlockDiagLen(t *testing.T) {
	for _, c := range []struct{ n, b, want int }{{8, 4, 32}, {10, 4, 36}, {3, 8, 9}, {1, 1, 1}} {
		if got := BlockDiagLen(c.n, c.b); got != c.want {
			t.Errorf("BlockDiagLen(%d, %d) = %d, want %d", c.n, c.b, got, c.want)
		}
	}
}

func TestBlockDiag(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range bdShapes {
				for _, n := range []int{1, 3, 4, 9} {
					d := randBlockDiag(r, dt, sh[0], sh[1])
					if err := d.Check(); err != nil {
						t.Fatal(err)
					}
					x := randVec(r, n*d.N)
					y := poisoned(n * d.N)
					if n == 1 {
						d.MatVec(y, x)
					} else {
						d.MatMul(y, x, n)
					}
					x64, xabs := to64(x)
					want, abs := bdRef(d, x64, xabs, n)
					checkCloseRel(t, fmt.Sprintf("%v n=%d b=%d tokens=%d", dt, sh[0], sh[1], n), y, want, abs, sh[1], bf16Slack(dt, n, 1))
				}
			}
		}
	})
}

func TestArmor(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		shapes := []struct{ out, in, bpre, bpost int }{
			{4, 4, 4, 4}, {1, 8, 3, 1}, {12, 36, 8, 5}, {33, 64, 16, 16}, {64, 128, 32, 48}, {100, 260, 128, 128},
			{200, 1100, 128, 96}, // several 2:4 column strips, ragged blocks
			{20, 8200, 16, 8},    // a wide core in column panels (Panelize): tokens 1 and 70 only
		}
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range shapes {
				for _, n := range []int{1, 2, 4, 7, 14, 16, 50, 70, 100, 130} {
					if sh.in > wideCols {
						if n != 1 && n != 70 {
							continue
						}
					} else if n == 70 || (n == 130 && sh.in*sh.out > 50000 && sh.in <= 1000) || (sh.in > 1000 && n != 16 && n != 50 && n != 130) {
						continue // the large shape is there for the batched paths (130: tiles sharing strips)
					}
					core, err := Pack24(rand24(r, sh.out, sh.in), sh.out, sh.in, dt)
					if err != nil {
						t.Fatal(err)
					}
					if sh.in > wideCols {
						core = core.Panelize(nil)
					}
					a := &Armor{
						Pre:  randBlockDiag(r, dt, sh.in, sh.bpre),
						Core: core,
						Post: randBlockDiag(r, dt, sh.out, sh.bpost),
					}
					if r.IntN(2) == 0 {
						a.Bias = randVec(r, sh.out)
					}
					if err := a.Check(); err != nil {
						t.Fatal(err)
					}
					x := randVec(r, n*sh.in)
					y := poisoned(n * sh.out)
					if n == 1 {
						a.MatVec(y, x)
					} else {
						a.MatMul(y, x, n)
					}
					// float64 reference chain, with the matching chain of
					// absolute values: each stage's f32 error is bounded by
					// its accumulation length times 2⁻²⁴ times the absolute
					// product, and propagates through the later stages by
					// their absolute values, so the total is within
					// (bpre + in/2 + bpost + slack)·2⁻²⁴·|Post|·|Core|·|Pre|·|x|.
					x64, xabs := to64(x)
					t1, t1a := bdRef(a.Pre, x64, xabs, n)
					d := core.Unpack()
					t2, t2a := make([]float64, n*sh.out), make([]float64, n*sh.out)
					for tk := 0; tk < n; tk++ {
						for i := 0; i < sh.out; i++ {
							for j := 0; j < sh.in; j++ {
								w := at64(dt, d.F32, d.U16, i*sh.in+j)
								t2[tk*sh.out+i] += w * t1[tk*sh.in+j]
								t2a[tk*sh.out+i] += math.Abs(w) * t1a[tk*sh.in+j]
							}
						}
					}
					want, abs := bdRef(a.Post, t2, t2a, n)
					if a.Bias != nil {
						for i := range want {
							b := float64(a.Bias[i%sh.out])
							want[i] += b
							abs[i] += math.Abs(b)
						}
					}
					checkCloseRel(t, fmt.Sprintf("%v %+v tokens=%d", dt, sh, n), y, want, abs, sh.bpre+sh.in/2+sh.bpost+4, bf16Slack(dt, n, 2))
				}
			}
		}
	})
}

func TestArmorCheck(t *testing.T) {
	core, _ := Pack24(make([]float32, 8*16), 8, 16, F32)
	a := &Armor{Pre: &BlockDiag{DType: F32, N: 8, B: 4, F32: make([]float32, 32)}, Core: core,
		Post: &BlockDiag{DType: F32, N: 8, B: 4, F32: make([]float32, 32)}}
	if err := a.Check(); err == nil {
		t.Error("pre of size 8 accepted for a core with 16 columns")
	}
	a.Pre = &BlockDiag{DType: F32, N: 16, B: 4, F32: make([]float32, 64)}
	if err := a.Check(); err != nil {
		t.Errorf("valid layer rejected: %v", err)
	}
	a.Bias = make([]float32, 3)
	if err := a.Check(); err == nil {
		t.Error("bias of 3 accepted for 8 outputs")
	}
}
