package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// forLevels runs fn once per ISA level usable on this CPU (and, at AVX-512
// with AVX512-BF16, once more with the bf16 dot-product path switched off).
func forLevels(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	orig, origDP := ISA(), useBF16Dot
	defer func() { SetISA(orig); useBF16Dot = origDP }()
	for _, l := range Levels() {
		if err := SetISA(l); err != nil {
			t.Fatal(err)
		}
		t.Run(l.String(), fn)
		if l == AVX512 && hasBF16Dot {
			useBF16Dot = false
			t.Run("avx512-nobf16dot", fn)
		}
	}
}

func newRand(t *testing.T) *rand.Rand {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 1))
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// poisoned returns a slice of NaNs: a kernel that leaves an element
// unwritten leaves a NaN that every comparison catches.
func poisoned(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}

// randDense returns a random rows×cols matrix stored in dt.
func randDense(r *rand.Rand, dt DType, rows, cols int) *Dense {
	m := &Dense{DType: dt, Rows: rows, Cols: cols}
	v := randVec(r, rows*cols)
	if dt == F32 {
		m.F32 = v
		return m
	}
	m.U16 = make([]uint16, len(v))
	for i, f := range v {
		if dt == F16 {
			m.U16[i] = F32ToF16(f)
		} else {
			m.U16[i] = F32ToBF16(f)
		}
	}
	return m
}

// at64 returns a stored weight exactly (f16 and bf16 widen exactly).
func at64(dt DType, f32 []float32, u16 []uint16, i int) float64 {
	switch dt {
	case F32:
		return float64(f32[i])
	case F16:
		return float64(F16ToF32(u16[i]))
	}
	return float64(BF16ToF32(u16[i]))
}

// refGemm is the float64 reference: y[t*rows+i] = Σ_j W[i,j]·x[t*cols+j],
// with abs[t*rows+i] = Σ_j |W[i,j]·x[t*cols+j]| for the error bound.
func refGemm(w func(i, j int) float64, rows, cols int, x []float32, n int) (y, abs []float64) {
	y = make([]float64, n*rows)
	abs = make([]float64, n*rows)
	for t := 0; t < n; t++ {
		for i := 0; i < rows; i++ {
			var s, a float64
			for j := 0; j < cols; j++ {
				p := w(i, j) * float64(x[t*cols+j])
				s += p
				a += math.Abs(p)
			}
			y[t*rows+i], abs[t*rows+i] = s, a
		}
	}
	return
}

// f32 accumulation of k products (each exact in f32 when weights are
// f16/bf16, rounded once when f32) is within about k·2⁻²⁴·Σ|w·x| of the
// exact sum whatever the order (the recursive-summation bound γ_k), plus one
// rounding per product. With k ≤ ~300 in these tests the bound stays far
// below the size of any single term, so a dropped, doubled or misplaced
// element still fails.
func accTol(k int, abs float64) float64 {
	return float64(k+2)*math.Ldexp(1, -24)*abs + 1e-30
}

// checkClose compares got with want element by element.
func checkClose(t *testing.T, what string, got []float32, want, abs []float64, k int) {
	t.Helper()
	bad := 0
	for i := range want {
		g := float64(got[i])
		tol := accTol(k, abs[i])
		if !(math.Abs(g-want[i]) <= tol) {
			if bad < 5 {
				t.Errorf("%s: element %d = %v, want %v (tol %.3g)", what, i, g, want[i], tol)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements wrong", what, bad, len(want))
	}
}

// checkCloseRel is checkClose with an extra relative slack rel·Σ|w·x|.
// It is used where VDPBF16PS rounds activations to bf16 (relative error
// ≤ 2⁻⁹ per activation, so ≤ 2⁻⁹·Σ|w·x| per product stage); the exact
// semantics of that path are checked element by element in
// TestDenseMatMul.
func checkCloseRel(t *testing.T, what string, got []float32, want, abs []float64, k int, rel float64) {
	t.Helper()
	a2 := make([]float64, len(abs))
	for i, a := range abs {
		a2[i] = a * (1 + rel/(float64(k+2)*math.Ldexp(1, -24)))
	}
	checkClose(t, what, got, want, a2, k)
}

// bf16Slack is the relative slack of a product chain of stages stages in
// dtype dt over n tokens at the current level.
func bf16Slack(dt DType, n, stages int) float64 {
	if dt == BF16 && n > 1 && HasBF16Dot() {
		return float64(stages) * math.Ldexp(1, -8)
	}
	return 0
}
