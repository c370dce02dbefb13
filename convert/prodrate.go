package convert

import (
	"time"

	"github.com/armor-llm/armor/kernels"
)

// The f32 products' own rate, apart from the rest of a sweep (the scalar
// group updates, the b×b solves, the elementwise passes). Every product of
// the f32 path goes through nn or tn, which add the kernel's multiply-adds
// (m·k·n, as kernels.MatMulNNF32 computes them, zeros of S included) and
// the time the call took to the state. Each call runs on one thread, so the
// sum of the times is thread time: the products' rate while they run is
// prodOps / prodTime per thread (Factorization.ProductGFLOPS). Two clock
// reads a call cost about 50 ns against products of 128³ multiply-adds and
// more (tens of µs).

// nn is kernels.MatMulNNF32, timed into st.
func (st *state) nn(c []float32, ldc int, a []float32, lda, m, k int, b []float32, ldb, n int, acc bool) {
	t0 := time.Now()
	kernels.MatMulNNF32(c, ldc, a, lda, m, k, b, ldb, n, acc)
	st.product(t0, m, k, n)
}

// tn is kernels.MatMulTNF32, timed into st.
func (st *state) tn(c []float32, ldc int, a []float32, lda, m, k int, b []float32, ldb, n int, acc bool) {
	t0 := time.Now()
	kernels.MatMulTNF32(c, ldc, a, lda, m, k, b, ldb, n, acc)
	st.product(t0, m, k, n)
}

// product adds a product of m·k·n multiply-adds that began at t0.
func (st *state) product(t0 time.Time, m, k, n int) {
	st.prodOps.Add(int64(m) * int64(k) * int64(n))
	st.prodNS.Add(int64(time.Since(t0)))
}

// productGFLOPS is 2·multiply-adds per thread-second inside the products
// (0 when none ran).
func (st *state) productGFLOPS() float64 {
	ns := st.prodNS.Load()
	if ns <= 0 {
		return 0
	}
	return 2 * float64(st.prodOps.Load()) / float64(ns)
}
