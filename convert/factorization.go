package convert

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Factorization is an ARMOR layer, W ≈ diag(r)·A·S·B·diag(c) (section 1).
// A and B are block-diagonal in blocks of Block (the last block of each may be
// smaller); S = X ⊙ Mask is 2:4 sparse along Cols. A, B and X live in the
// normalized space of W̄ = diag(r)⁻¹ W diag(c)⁻¹.
type Factorization struct {
	Rows, Cols, Block int
	A                 [][]float64 // A[J]: row block J, n_J×n_J row-major
	B                 [][]float64 // B[K]: column block K, m_K×m_K row-major
	X                 []float64   // Rows×Cols dense values; only kept entries matter
	Mask              []uint8     // Rows×Cols, 1 = kept; exactly 2 per group of 4
	R, C              []float64   // NoWag row and column norms
	Target            []float64   // W̄, the normalized weight being approximated

	// Filled in by Armor and ArmorFast.
	InitLoss float64 // proxy loss of the NoWag-P starting point
	BestLoss float64 // proxy loss of this (best) iterate
	Iters    int     // iterations (Armor) or sweeps (ArmorFast) run
	MulAdds  int64   // multiply-adds spent by the optimization
	// ProductGFLOPS: the rate of the f32 product kernels alone, 2·their
	// multiply-adds per thread-second spent in them, times the threads:
	// what compares with a GEMM's rate on as many threads (0 off the f32
	// path; see prodrate.go).
	ProductGFLOPS float64
	History       []Point // loss after every iteration/sweep
}

// Point records the best proxy loss after an iteration (or sweep) and the
// multiply-adds spent so far, for loss-versus-work comparisons.
type Point struct {
	Iter    int
	MulAdds int64
	Loss    float64
}

// Options controls Armor and ArmorFast. Zero values select the defaults.
type Options struct {
	Block    int     // block size b of A and B, a multiple of 4 (default 128)
	Iters    int     // maximum iterations (Armor, default 20000) or sweeps (ArmorFast, default 200)
	Seed     uint64  // seed of the sampling in Armor's sparse-core step
	Patience int     // stop after this many iterations (default 100) or sweeps (default 3) without improvement
	RTol     float64 // relative improvement that counts (default 1e-6; ArmorFast: fastRTol)
	ATol     float64 // absolute improvement that counts (default 1e-8)
	CGSteps  int     // ArmorFast: conjugate-gradient steps on the kept values per sweep (default 8, <0 none)
	// ArmorFast: skip the extrapolation after each sweep.
	NoExtrapolate bool
	// ArmorFast: joint L-BFGS steps on A, B, X added to every sweep once a
	// sweep improves the loss by less than LBFGSSwitch (relative, default
	// 0.002; negative: from the first sweep). LBFGSSteps: default 10,
	// negative: never.
	LBFGSSteps  int
	LBFGSSwitch float64
	Threads     int // goroutines over tiles and blocks (default GOMAXPROCS)
	// Exact computes every product in float64, as the reference does, even
	// for blocks large enough for the f32 SIMD path (see fastMinBlock).
	Exact bool
	// Progress, if set, is called after every iteration or sweep with the best
	// loss so far (from the calling goroutine).
	Progress func(iter int, loss float64)
	// Ctx, if set, stops the optimization early; the error is Ctx.Err().
	Ctx context.Context

	// ArmorFast: resume continues from a saved best iterate instead of
	// NoWag-P's start, and checkpoint, if set, is called with the best
	// iterate whenever checkpointEvery (default 5 minutes) of wall time has
	// passed since the last call, so that a killed conversion of a big
	// layer loses minutes, not hours (see convert/sweepckpt.go).
	resume          *sweepState
	checkpoint      func(*sweepState)
	checkpointEvery time.Duration
}

// state is the working form of a factorization shared by both optimizers.
type state struct {
	n, m, b int
	rb, cb  []int // row and column block bounds
	wbar    []float64
	h       []float64 // sanitized diag(XXᵀ)/N
	z       float64   // Σ h_j W̄²_ij, the loss normalizer
	A, B    [][]float64
	X       []float64
	M       []uint8
	spareX  []float64 // a second X for ArmorFast's extrapolation trials, reused
	// s32 is S = X ⊙ M in float32 on ArmorFast's f32 path, where its
	// products read S in place (nil elsewhere). There s32 is S: the sweeps
	// update s32 and M only, and X is stale (the values are float32
	// anyway; one float64 pass over the layer a sweep less); snapshot,
	// the extrapolation and L-BFGS's pack read s32, and syncS32 sets s32
	// from X where X is set (a resume, undoing a sweep, L-BFGS's unpack).
	// spare32 is the trial S of the extrapolation there, in place of spareX.
	s32, spare32 []float32
	// wbar32 is W̄ in float32 on that path, read by the products of the A
	// and B updates (nil elsewhere).
	wbar32  []float32
	threads int
	ops     atomic.Int64 // multiply-adds spent
	vecOps  atomic.Int64 // of those, in L-BFGS's memory-bound vector passes (see vecCost)
	// prodOps, prodNS: multiply-adds and thread nanoseconds inside the f32
	// product kernels (see prodrate.go).
	prodOps, prodNS atomic.Int64
	// exact keeps every product in float64 (Options.Exact); otherwise
	// layers with blocks of fastMinBlock or more use f32 products.
	exact bool

	// full, when set, replaces the diagonal proxy by the output error of
	// the full Hessian (see RefineFullH).
	full *fullLoss
}

func (st *state) add(k int) { st.ops.Add(int64(k)) }

// syncS32 sets s32 from X and M, if s32 is kept.
func (st *state) syncS32() {
	if st.s32 == nil {
		return
	}
	m := st.m
	parallelRows(st.threads, st.n, func(lo, hi int) {
		for k := lo * m; k < hi*m; k++ {
			st.s32[k] = float32(st.X[k]) * float32(st.M[k])
		}
	})
}

// newState normalizes W, sanitizes h and sets the NoWag-P starting point
// (section 3): M from the scores W̄²h, X = W̄, A = B = I.
func newState(w Matrix, h []float64, opt Options) (*state, *Factorization, error) {
	if err := w.check24(); err != nil {
		return nil, nil, err
	}
	b := opt.Block
	if b == 0 {
		b = 128
	}
	if b < 4 || b%4 != 0 {
		return nil, nil, fmt.Errorf("convert: ARMOR block size %d is not a positive multiple of 4 (the 2:4 groups must not straddle blocks)", b)
	}
	hs, err := SanitizeH(h, w.Cols)
	if err != nil {
		return nil, nil, err
	}
	wbar, r, c := normalize(w)
	st := &state{n: w.Rows, m: w.Cols, b: b, wbar: wbar, h: hs, threads: defaultThreads(opt.Threads), exact: opt.Exact}
	st.rb = blockBounds(st.n, b)
	st.cb = blockBounds(st.m, b)
	for i := 0; i < st.n; i++ {
		for j := 0; j < st.m; j++ {
			v := wbar[i*st.m+j]
			st.z += hs[j] * v * v
		}
	}
	if st.z == 0 {
		st.z = 1 // an all-zero weight: every loss is 0 anyway
	}
	st.A = identityBlocks(st.rb)
	st.B = identityBlocks(st.cb)
	st.X = append([]float64(nil), wbar...)
	st.M = nowagMask(st.n, st.m, wbar, hs)
	f := &Factorization{Rows: st.n, Cols: st.m, Block: b, R: r, C: c, Target: wbar}
	return st, f, nil
}

func identityBlocks(bounds []int) [][]float64 {
	out := make([][]float64, len(bounds)-1)
	for J := range out {
		s := bounds[J+1] - bounds[J]
		out[J] = make([]float64, s*s)
		for i := 0; i < s; i++ {
			out[J][i*s+i] = 1
		}
	}
	return out
}

func cloneBlocks(src [][]float64) [][]float64 {
	out := make([][]float64, len(src))
	for i, s := range src {
		out[i] = append([]float64(nil), s...)
	}
	return out
}

// snapshot copies the parameters into f (used to keep the best iterate).
func (st *state) snapshot(f *Factorization) {
	f.A = cloneBlocks(st.A)
	f.B = cloneBlocks(st.B)
	nm := len(st.X)
	if len(f.X) != nm {
		f.X = make([]float64, nm)
		f.Mask = make([]uint8, nm)
	}
	// Every sweep that improves takes one: on all threads, without
	// branches (the mask is random).
	m := st.m
	parallelRows(st.threads, st.n, func(lo, hi int) {
		copy(f.Mask[lo*m:hi*m], st.M[lo*m:hi*m])
		if st.s32 != nil {
			for k := lo * m; k < hi*m; k++ {
				f.X[k] = float64(st.s32[k]) // zero off the mask
			}
			return
		}
		for k := lo * m; k < hi*m; k++ {
			f.X[k] = st.X[k] * float64(st.M[k])
		}
	})
}

// forwardP computes P = S·B (Rows×Cols), skipping the pruned entries of S.
func (st *state) forwardP(P []float64) {
	if st.fast() {
		forwardPFast(st, P)
		return
	}
	n, m := st.n, st.m
	parallelFor(st.threads, n, func(i int) {
		prow := P[i*m : (i+1)*m]
		clear(prow)
		xr, mr := st.X[i*m:(i+1)*m], st.M[i*m:(i+1)*m]
		for K := 0; K+1 < len(st.cb); K++ {
			c0, c1 := st.cb[K], st.cb[K+1]
			s := c1 - c0
			BK := st.B[K]
			for k := c0; k < c1; k++ {
				if mr[k] == 0 {
					continue
				}
				v := xr[k]
				brow := BK[(k-c0)*s : (k-c0+1)*s]
				out := prow[c0:c1]
				for t, bv := range brow {
					out[t] += v * bv
				}
			}
		}
	})
	st.add(st.n * st.m / 2 * st.b) // half of S is zero
}

// forwardW computes Ŵ = A·P per row block.
func (st *state) forwardW(P, What []float64) {
	if st.fast() {
		forwardWFast(st, P, What)
		return
	}
	m := st.m
	parallelFor(st.threads, len(st.rb)-1, func(J int) {
		r0, r1 := st.rb[J], st.rb[J+1]
		s := r1 - r0
		AJ := st.A[J]
		for i := r0; i < r1; i++ {
			out := What[i*m : (i+1)*m]
			clear(out)
			for k := 0; k < s; k++ {
				a := AJ[(i-r0)*s+k]
				prow := P[(r0+k)*m : (r0+k+1)*m]
				for j, p := range prow {
					out[j] += a * p
				}
			}
		}
	})
	st.addBlockwise(st.rb, st.m)
}

// addBlockwise counts Σ_J n_J² · other multiply-adds (a block-diagonal
// factor applied to a dense matrix).
func (st *state) addBlockwise(bounds []int, other int) {
	t := 0
	for J := 0; J+1 < len(bounds); J++ {
		s := bounds[J+1] - bounds[J]
		t += s * s * other
	}
	st.add(t)
}

// lossOf evaluates the normalized proxy loss for a given Ŵ.
func (st *state) lossOf(What []float64) float64 {
	if st.full != nil {
		return st.full.loss(st, What, nil)
	}
	m := st.m
	sum := 0.0
	for i := 0; i < st.n; i++ {
		w, wb := What[i*m:(i+1)*m], st.wbar[i*m:(i+1)*m]
		for j := range w {
			d := w[j] - wb[j]
			sum += st.h[j] * d * d
		}
	}
	st.add(st.n * st.m)
	return sum / st.z
}

// loss evaluates the loss from scratch.
func (st *state) loss() float64 {
	P := make([]float64, st.n*st.m)
	W := make([]float64, st.n*st.m)
	st.forwardP(P)
	st.forwardW(P, W)
	return st.lossOf(W)
}

// stateOf rebuilds a working state from a factorization (for Loss and tests).
func (f *Factorization) stateOf(h []float64) (*state, error) {
	if f.Block < 4 || f.Cols%4 != 0 || len(f.Target) != f.Rows*f.Cols || len(f.X) != f.Rows*f.Cols || len(f.Mask) != f.Rows*f.Cols {
		return nil, fmt.Errorf("convert: factorization %d×%d (block %d) is incomplete", f.Rows, f.Cols, f.Block)
	}
	hs, err := SanitizeH(h, f.Cols)
	if err != nil {
		return nil, err
	}
	st := &state{n: f.Rows, m: f.Cols, b: f.Block, wbar: f.Target, h: hs, A: f.A, B: f.B, X: f.X, M: f.Mask, threads: 1, exact: true}
	st.rb = blockBounds(st.n, st.b)
	st.cb = blockBounds(st.m, st.b)
	if len(st.A) != len(st.rb)-1 || len(st.B) != len(st.cb)-1 {
		return nil, fmt.Errorf("convert: factorization %d×%d has %d A and %d B blocks, want %d and %d", f.Rows, f.Cols, len(st.A), len(st.B), len(st.rb)-1, len(st.cb)-1)
	}
	for J, a := range st.A {
		if s := st.rb[J+1] - st.rb[J]; len(a) != s*s {
			return nil, fmt.Errorf("convert: A block %d has %d values, want %d", J, len(a), s*s)
		}
	}
	for K, b := range st.B {
		if s := st.cb[K+1] - st.cb[K]; len(b) != s*s {
			return nil, fmt.Errorf("convert: B block %d has %d values, want %d", K, len(b), s*s)
		}
	}
	for i := 0; i < st.n; i++ {
		for j := 0; j < st.m; j++ {
			v := st.wbar[i*st.m+j]
			st.z += hs[j] * v * v
		}
	}
	if st.z == 0 {
		st.z = 1
	}
	return st, nil
}

// Loss is the normalized proxy loss L of section 2 of this factorization
// against its Target, with input statistics h (sanitized as in SanitizeH).
// It returns NaN if the factorization or h is malformed.
func (f *Factorization) Loss(h []float64) float64 {
	st, err := f.stateOf(h)
	if err != nil {
		return math.NaN()
	}
	return st.loss()
}

// Dense reconstructs Ŵ = diag(r)·A·S·B·diag(c) in the original space
// (Rows×Cols row-major), or nil if the factorization is malformed.
func (f *Factorization) Dense() []float64 {
	// h only matters for the loss; any valid h will do here.
	h := make([]float64, f.Cols)
	for j := range h {
		h[j] = 1
	}
	st, err := f.stateOf(h)
	if err != nil || len(f.R) != f.Rows || len(f.C) != f.Cols {
		return nil
	}
	// A reconstruction, not a loss decision: the f32 products (1e-7
	// relative) are plenty, and on a 4096×11008 layer they take a fraction
	// of a second where the float64 loops take many.
	st.exact, st.threads = false, defaultThreads(0)
	W := make([]float64, f.Rows*f.Cols)
	if st.fast() {
		P := make([]float32, f.Rows*f.Cols) // half the transient memory
		forwardPFast(st, P)
		leftBlocks(st, W, P, nil, false)
	} else {
		P := make([]float64, f.Rows*f.Cols)
		st.forwardP(P)
		st.forwardW(P, W)
	}
	for i := 0; i < f.Rows; i++ {
		for j := 0; j < f.Cols; j++ {
			W[i*f.Cols+j] *= f.R[i] * f.C[j]
		}
	}
	return W
}

// Deployed is what the runtime executes: y = A'·(S·(B'·x)) + bias, with the
// NoWag norms folded into the block-diagonal factors.
type Deployed struct {
	Rows, Cols, Block int
	A                 [][]float64 // A'_J = diag(r_J)·A_J (row blocks, n_J×n_J)
	S                 []float64   // Rows×Cols, zeros off the mask
	Mask              []uint8     // 1 = kept, exactly 2 per group of 4
	B                 [][]float64 // B'_K = B_K·diag(c_K) (column blocks, m_K×m_K)
}

// Deployed folds the norms into A and B (section 1).
func (f *Factorization) Deployed() *Deployed {
	d := &Deployed{Rows: f.Rows, Cols: f.Cols, Block: f.Block, Mask: append([]uint8(nil), f.Mask...)}
	d.S = make([]float64, len(f.X))
	for k, v := range f.X {
		if f.Mask[k] == 1 {
			d.S[k] = v
		}
	}
	rb, cb := blockBounds(f.Rows, f.Block), blockBounds(f.Cols, f.Block)
	d.A = cloneBlocks(f.A)
	for J, a := range d.A {
		r0, s := rb[J], rb[J+1]-rb[J]
		for i := 0; i < s; i++ {
			for k := 0; k < s; k++ {
				a[i*s+k] *= f.R[r0+i]
			}
		}
	}
	d.B = cloneBlocks(f.B)
	for K, b := range d.B {
		c0, s := cb[K], cb[K+1]-cb[K]
		for i := 0; i < s; i++ {
			for k := 0; k < s; k++ {
				b[i*s+k] *= f.C[c0+k]
			}
		}
	}
	return d
}

// Apply computes y = A'(S(B'x)) for one input vector (a float64 reference
// for the runtime's kernels).
func (d *Deployed) Apply(x []float64) []float64 {
	rb, cb := blockBounds(d.Rows, d.Block), blockBounds(d.Cols, d.Block)
	u := make([]float64, d.Cols)
	for K, b := range d.B {
		c0, s := cb[K], cb[K+1]-cb[K]
		for i := 0; i < s; i++ {
			t := 0.0
			for k := 0; k < s; k++ {
				t += b[i*s+k] * x[c0+k]
			}
			u[c0+i] = t
		}
	}
	v := make([]float64, d.Rows)
	for i := 0; i < d.Rows; i++ {
		t := 0.0
		for j := 0; j < d.Cols; j++ {
			t += d.S[i*d.Cols+j] * u[j]
		}
		v[i] = t
	}
	y := make([]float64, d.Rows)
	for J, a := range d.A {
		r0, s := rb[J], rb[J+1]-rb[J]
		for i := 0; i < s; i++ {
			t := 0.0
			for k := 0; k < s; k++ {
				t += a[i*s+k] * v[r0+k]
			}
			y[r0+i] = t
		}
	}
	return y
}
