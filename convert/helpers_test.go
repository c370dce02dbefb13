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

// checkGradients compares the analytic gradients of st's loss with respect
// to A, B and the kept values of X with central finite differences, and
// returns Ŵ, the scratch T and dL/dX for further checks.
func checkGradients(t *testing.T, st *state) (What, T, GX []float64) {
	t.Helper()
	n, m := st.n, st.m
	P := make([]float64, n*m)
	What = make([]float64, n*m)
	st.forwardP(P)
	st.forwardW(P, What)
	G, Q := make([]float64, n*m), make([]float64, n*m)
	T, GX = make([]float64, n*m), make([]float64, n*m)
	gA, gB := zerosLike(st.A), zerosLike(st.B)
	st.lossGradient(What, G)
	st.gradients(P, G, Q, T, GX, gA, gB)
	check := func(name string, p *float64, g float64) {
		t.Helper()
		const eps = 1e-6
		old := *p
		*p = old + eps
		lp := st.loss()
		*p = old - eps
		lm := st.loss()
		*p = old
		fd := (lp - lm) / (2 * eps)
		if math.Abs(fd-g) > 1e-6*math.Max(1e-3, math.Abs(fd)) {
			t.Fatalf("%s: analytic %v, finite difference %v", name, g, fd)
		}
	}
	for J := range st.A {
		for k := range st.A[J] {
			check("A", &st.A[J][k], gA[J][k])
		}
	}
	for K := range st.B {
		for k := range st.B[K] {
			check("B", &st.B[K][k], gB[K][k])
		}
	}
	for k := range st.X {
		if st.M[k] == 1 {
			check("X", &st.X[k], GX[k])
		}
	}
	return What, T, GX
}
