package convert

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randLayer returns a random rows×cols weight with heavy-ish tails and
// log-normal input statistics h, like real layers.
func randLayer(rng *rand.Rand, rows, cols int) (Matrix, []float64) {
	w := Matrix{Rows: rows, Cols: cols, Data: make([]float64, rows*cols)}
	colScale := make([]float64, cols)
	for j := range colScale {
		colScale[j] = math.Exp(0.5 * rng.NormFloat64())
	}
	for i := range w.Data {
		w.Data[i] = rng.NormFloat64() * colScale[i%cols] * 0.05
	}
	h := make([]float64, cols)
	for j := range h {
		h[j] = math.Exp(1.5 * rng.NormFloat64())
	}
	return w, h
}

func newRng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

// perturb makes A, B and X of a state generic (not the identity / W̄) so
// that gradient and update tests exercise every term.
func perturb(rng *rand.Rand, st *state, scale float64) {
	for _, blocks := range [][][]float64{st.A, st.B} {
		for _, b := range blocks {
			for k := range b {
				b[k] += scale * rng.NormFloat64()
			}
		}
	}
	for k := range st.X {
		st.X[k] += scale * 0.1 * rng.NormFloat64()
	}
}

func relErr(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(1e-300, math.Max(math.Abs(a), math.Abs(b)))
}

// matVec computes W x for a row-major matrix.
func matVec(w []float64, rows, cols int, x []float64) []float64 {
	y := make([]float64, rows)
	for i := 0; i < rows; i++ {
		y[i] = dot(w[i*cols:(i+1)*cols], x)
	}
	return y
}

// testState builds a perturbed state with ragged blocks.
func testState(t *testing.T, seed uint64, rows, cols, b int) *state {
	t.Helper()
	rng := newRng(seed)
	w, h := randLayer(rng, rows, cols)
	st, _, err := newState(w, h, Options{Block: b, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	perturb(rng, st, 0.2)
	return st
}
