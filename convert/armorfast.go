package convert

import (
	"math"
	"sync"
	"time"

	"github.com/armor-llm/armor/kernels"
)

// ArmorFast is our alternating exact minimization (section 6). One sweep:
//
//  1. every A block by its closed-form weighted least squares
//     A_J = W̄_J D P_Jᵀ (P_J D P_Jᵀ)⁻¹, P = S·B;
//  2. every B column block by its closed-form least squares with the Gram
//     matrix of (A S)[:, K] (h_j cancels column by column);
//  3. per tile, CGSteps (default 8; none with blocks of fastMinBlock or
//     more) conjugate-gradient steps on the kept values of S (masked least
//     squares), then one cyclic pass of the exact group updates of section 4
//     over every (row, group) of the tile;
//  4. unless NoExtrapolate, a trial point θ + α(θ − θ_prev) beyond the sweep,
//     kept if lower (see extrapolate);
//  5. once a sweep improves the loss by less than LBFGSSwitch (default 0.2 %),
//     LBFGSSteps (default 10; none with blocks of fastMinBlock or more,
//     unless set) joint L-BFGS steps on A, B and the kept values
//     (see lbfgs) join the sweeps. With blocks of fastMinBlock or more, for
//     as long as they pay: a sweep with them costs about 5 plain ones, so
//     after each sweep the kind with the larger relative improvement per
//     multiply-add (each kind's latest) runs next; smaller blocks keep them.
//     On stories260K's w1 at b = 8 plain sweeps crawl (1000 of them end 4 %
//     above the reference's 10,000-iteration loss) while L-BFGS reaches it;
//     on 768-wide random layers at b = 128, plain sweeps still improve twice
//     as much per multiply-add when the switch first comes. Counting
//     multiply-adds, not seconds, keeps the result independent of the
//     machine (shards reproduce it byte for byte).
//
// Every step is accepted only if it lowers its own (exactly separable) part of
// the loss, so the loss never rises; a sweep whose exact loss nevertheless came
// out higher (rounding) is undone. It stops when converged: after Patience
// sweeps (default 3) without an improvement of more than ATol + RTol·loss
// (RTol default fastRTol), or after Iters sweeps (default 200). It needs no
// random numbers.
//
// largeBlockDefaults: with blocks of fastMinBlock or more the group pass
// alone, without CG and L-BFGS, reaches a lower loss in the same time. On
// random layers at b = 128 (2026-12-07, 2 threads): 2048×768, 200 sweeps,
// 0.006643 in 15.9 s without either, 0.006540 in 27.2 s with CG (8 steps)
// and 0.006522 in 31.5 s with CG and the adaptive L-BFGS (which at 15.9 s
// stood near 0.0070); 4096×4096, 40 sweeps, 0.02076 in 36 s without CG,
// 0.02070 in 60 s with it; 768×768, 200 sweeps, 0.002785 in 8.1 s without
// either, 0.002680 in 13.4 s with both (0.0029 at 8.1 s). The CG steps
// re-solve values that the group updates then set exactly anyway.
func ArmorFast(w Matrix, h []float64, opt Options) (*Factorization, error) {
	st, f, err := newState(w, h, opt)
	if err != nil {
		return nil, err
	}
	sweeps := opt.Iters
	if sweeps <= 0 {
		sweeps = 200
	}
	patience := opt.Patience
	if patience <= 0 {
		patience = 3
	}
	if opt.RTol <= 0 {
		opt.RTol = fastRTol
	}
	// Blocks of fastMinBlock or more run neither CG nor L-BFGS unless asked
	// to (see largeBlockDefaults).
	large := st.b >= fastMinBlock
	cgSteps := opt.CGSteps
	if cgSteps == 0 {
		cgSteps = 8
		if large {
			cgSteps = -1
		}
	}
	if opt.LBFGSSteps == 0 && large {
		opt.LBFGSSteps = -1
	}
	opt.Iters, opt.Patience, opt.CGSteps = sweeps, patience, cgSteps
	if st.fast() && st.full == nil {
		return armorFast[float32](st, f, opt)
	}
	return armorFast[float64](st, f, opt)
}

// armorFast runs the sweeps of ArmorFast with its n×m working matrices (P,
// Ŵ and the scratch of the updates) in E: float32 on the f32 path, where
// every product reads them as they are and they take half the memory,
// float64 otherwise.
func armorFast[E elem](st *state, f *Factorization, opt Options) (*Factorization, error) {
	sweeps, patience, cgSteps := opt.Iters, opt.Patience, opt.CGSteps
	n, m := st.n, st.m
	P := make([]E, n*m)
	What := make([]E, n*m)
	// updateB's scratch Q is Y: both are scratch between the A update,
	// which reads P, and the forward products that set P again.
	Y := make([]E, n*m)
	R := make([]E, n*m)

	first := 0 // sweeps already run (by the run a resume continues)
	if r := opt.resume; r.fits(st) {
		st.A, st.B = cloneBlocks(r.A), cloneBlocks(r.B)
		st.X = append([]float64(nil), r.X...)
		st.M = append([]uint8(nil), r.Mask...)
		st.ops.Store(r.MulAdds)
		first = r.Iters
	}
	if _, ok := any(P).([]float32); ok {
		st.s32 = make([]float32, n*m)
		st.syncS32()
		// W̄ in f32 too, for the products of the A and B updates, which
		// would otherwise convert it every sweep.
		st.wbar32 = make([]float32, n*m)
		parallelRows(st.threads, n, func(lo, hi int) {
			for k := lo * m; k < hi*m; k++ {
				st.wbar32[k] = float32(st.wbar[k])
			}
		})
		defer func() { st.s32, st.spare32, st.wbar32 = nil, nil, nil }()
	}
	fwdP(st, P)
	fwdW(st, P, What)
	loss := lossE(st, What)
	f.InitLoss, f.BestLoss = loss, loss
	if first > 0 {
		f.InitLoss = opt.resume.InitLoss // NoWag-P's, from the first run
	}
	f.Iters = first
	st.snapshot(f)
	f.History = append(f.History, Point{first, st.ops.Load(), loss})
	ckptEvery := opt.checkpointEvery
	if ckptEvery <= 0 {
		ckptEvery = 5 * time.Minute
	}
	lastCkpt := time.Now()
	ref, stale := loss, 0
	alpha := 1.0
	lbSteps, lbSwitch := opt.LBFGSSteps, opt.LBFGSSwitch
	if lbSteps == 0 {
		lbSteps = 10
	}
	// The L-BFGS history holds 2·mem vectors of every parameter; on big
	// layers (4096×11008: 45 M parameters) that would be gigabytes, so the
	// history is capped at lbfgsMaxBytes and L-BFGS is skipped below 2 pairs.
	nParams := n*m + st.b*(n+m)
	mem := min(10, lbfgsMaxBytes/(16*nParams))
	if mem < 2 {
		lbSteps = -1
	}
	lb := &lbfgs{mem: max(mem, 1)}
	if lbSwitch == 0 {
		lbSwitch = 0.002
	}
	useLB := lbSwitch < 0 && lbSteps > 0
	// Choose per sweep (5. above) on layers with large blocks; below
	// fastMinBlock, where sweeps are cheap, L-BFGS stays on once switched
	// on (there it kept stories260K's quality table 1-2 % better than
	// choosing).
	adaptive := !useLB && st.b >= fastMinBlock
	// Relative improvement per multiply-add of the latest sweep of each
	// kind (plain, with L-BFGS); -1: none yet.
	ratePlain, rateLB := -1.0, -1.0
	lbRun := 0 // consecutive sweeps with L-BFGS
	prevLoss, prevOps := loss, st.cost()
	for sw := first + 1; sw <= sweeps; sw++ {
		if opt.Ctx != nil {
			if err := opt.Ctx.Err(); err != nil {
				return nil, err
			}
		}
		updA(st, P)
		updB(st, Y)
		updS(st, Y, R, cgSteps, true)
		fwdP(st, P)
		fwdW(st, P, What)
		loss = lossE(st, What)
		ranLB, slowed := useLB, false
		if useLB {
			loss = lbfgsRun(lb, st, lbSteps, P, What)
		} else {
			// Once the alternating sweeps slow down, joint quasi-Newton
			// steps join them, which keep making progress there.
			slowed = lbSteps > 0 && f.BestLoss-loss < lbSwitch*f.BestLoss
		}
		if !opt.NoExtrapolate && loss < f.BestLoss {
			var ok bool
			if loss, ok = extrapolate(st, f, alpha, loss, Y, R); ok {
				P, Y = Y, P
				What, R = R, What
				alpha = min(alpha*alphaGrow, alphaMax)
			} else {
				alpha = 1
			}
		}
		f.Iters = sw
		if adaptive {
			ops := st.cost()
			rate := max(prevLoss-loss, 0) / prevLoss / float64(max(ops-prevOps, 1))
			if ranLB {
				lbRun++
			} else {
				lbRun, ratePlain = 0, rate
			}
			if ranLB && lbRun >= lbWarm {
				rateLB = rate
			}
			// The kind that gained more per multiply-add runs next (L-BFGS
			// first runs lbWarm sweeps, as its history fills). The other's
			// rate is older, and rates fall as the loss converges, so the
			// other kind runs again once the current one falls below it.
			useLB = ranLB && lbRun < lbWarm || rateLB > ratePlain || slowed && rateLB < 0
		} else {
			useLB = useLB || slowed
		}
		prevLoss, prevOps = min(loss, f.BestLoss), st.cost()
		if loss <= f.BestLoss {
			f.BestLoss = loss
			st.snapshot(f)
		} else {
			// Only rounding can get here; go back to the best iterate.
			st.A, st.B = cloneBlocks(f.A), cloneBlocks(f.B)
			copy(st.X, f.X)
			copy(st.M, f.Mask)
			st.syncS32()
			fwdP(st, P)
		}
		f.History = append(f.History, Point{sw, st.ops.Load(), f.BestLoss})
		if opt.checkpoint != nil && time.Since(lastCkpt) >= ckptEvery {
			opt.checkpoint(&sweepState{Iters: sw, MulAdds: st.ops.Load(), InitLoss: f.InitLoss, BestLoss: f.BestLoss,
				A: f.A, B: f.B, X: f.X, Mask: f.Mask})
			lastCkpt = time.Now()
		}
		if opt.Progress != nil {
			opt.Progress(sw, f.BestLoss)
		}
		if improved(ref, loss, opt) {
			ref, stale = loss, 0
		} else if stale++; stale >= patience {
			break
		}
	}
	f.MulAdds = st.ops.Load()
	f.ProductGFLOPS = st.productGFLOPS() * float64(st.threads)
	return f, nil
}

// updateA replaces every A block by its weighted least-squares optimum given
// P = S·B, if that lowers the block's loss
// tr(A G Aᵀ) − 2 tr(A Cᵀ) with G = P_J D P_Jᵀ, C = W̄_J D P_Jᵀ.
func (st *state) updateA(P []float64) {
	if st.fast() {
		updateAFast(st, P)
		return
	}
	m := st.m
	parallelFor(st.threads, len(st.rb)-1, func(J int) {
		r0, r1 := st.rb[J], st.rb[J+1]
		s := r1 - r0
		G := make([]float64, s*s)
		C := make([]float64, s*s)
		dp := make([]float64, m) // D·P_k
		for k := 0; k < s; k++ {
			pk := P[(r0+k)*m : (r0+k+1)*m]
			for j, v := range pk {
				dp[j] = st.h[j] * v
			}
			for l := k; l < s; l++ {
				v := dot(dp, P[(r0+l)*m:(r0+l+1)*m])
				G[k*s+l], G[l*s+k] = v, v
			}
			for r := 0; r < s; r++ {
				C[r*s+k] = dot(st.wbar[(r0+r)*m:(r0+r+1)*m], dp)
			}
		}
		st.add(s*m + s*(s+1)/2*m + s*s*m)
		st.acceptLS(st.A[J], G, C, nil, s)
	})
}

// acceptLS minimizes Σ_r w_r (x_rᵀ G x_r − 2 x_rᵀ c_r) over the rows x_r of
// the s×s matrix X (rows of C are c_r; w nil means all 1) by x_r = G⁻¹ c_r,
// and keeps the new X only if the objective went down.
//
// The solves run on all rows at once (cholSolveCols, columns = rows r), and
// the decision uses the change of the objective computed directly,
// Σ_r w_r (dᵀ G e − 2 dᵀ c_r) with d = x_new − x, e = x_new + x, rather than
// the difference of two large objectives, which cancels.
func (st *state) acceptLS(X, G, C, w []float64, s int) {
	L, ok := spdFactor(G, s)
	if !ok {
		return
	}
	sc := lsPool.Get().(*lsScratch)
	defer lsPool.Put(sc)
	// Column r of Z is the unknown x_r: Z = Cᵀ, solved in place; CT keeps
	// Cᵀ, so that the loops below all run along rows.
	Z, CT, D, E, GE, v := sc.grow(s)
	for r := 0; r < s; r++ {
		for k := 0; k < s; k++ {
			CT[k*s+r] = C[r*s+k]
		}
	}
	copy(Z, CT)
	cholSolveCols(L, s, Z, s)
	st.add(s*s*s/3 + s*s*s + s*s*s)
	for _, v := range Z {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
	}
	for k := 0; k < s; k++ {
		for r := 0; r < s; r++ {
			z, x := Z[k*s+r], X[r*s+k]
			D[k*s+r], E[k*s+r] = z-x, z+x // dᵀ, eᵀ
		}
	}
	clear(GE)
	for k := 0; k < s; k++ {
		kernels.AxpyRowsF64(GE[k*s:(k+1)*s], G[k*s:(k+1)*s], E, s)
	}
	// v[r] = dᵀ(G e − 2 c_r), summed over k in order for every r.
	clear(v)
	for k := 0; k < s; k++ {
		d, ge, ct := D[k*s:(k+1)*s], GE[k*s:(k+1)*s], CT[k*s:(k+1)*s]
		for r := range v {
			v[r] += d[r] * (ge[r] - 2*ct[r])
		}
	}
	delta := 0.0
	for r, x := range v {
		if w != nil {
			x *= w[r]
		}
		delta += x
	}
	if delta < 0 {
		for r := 0; r < s; r++ {
			for k := 0; k < s; k++ {
				X[r*s+k] = Z[k*s+r]
			}
		}
	}
}

// lsScratch is acceptLS's scratch: five s×s matrices and a vector, pooled
// (an A or B update calls acceptLS once per block, every sweep).
type lsScratch struct{ buf []float64 }

var lsPool = sync.Pool{New: func() any { return new(lsScratch) }}

func (sc *lsScratch) grow(s int) (Z, CT, D, E, GE, v []float64) {
	n := s * s
	if cap(sc.buf) < 5*n+s {
		sc.buf = make([]float64, 5*n+s)
	}
	b := sc.buf[:5*n+s]
	return b[:n], b[n : 2*n], b[2*n : 3*n], b[3*n : 4*n], b[4*n : 5*n], b[5*n:]
}

// updateB replaces every B column block by its least-squares optimum given
// Q = A·S: column j of B_K minimizes h_j ‖Q_K b − W̄[:, j]‖², so with
// H = Q_Kᵀ Q_K and C = Q_Kᵀ W̄_K, B_K = H⁻¹ C (solved per column, i.e. per row
// of B_Kᵀ). Q is scratch.
func (st *state) updateB(Q []float64) {
	if st.fast() {
		updateBFast(st, Q)
		return
	}
	m := st.m
	parallelFor(st.threads, len(st.rb)-1, func(J int) { st.aTimesS(J, Q) })
	st.addBlockwise(st.rb, m/2)
	parallelFor(st.threads, len(st.cb)-1, func(K int) {
		c0, c1 := st.cb[K], st.cb[K+1]
		s := c1 - c0
		H := make([]float64, s*s)
		Ct := make([]float64, s*s) // Cᵀ: row j holds c_j
		for i := 0; i < st.n; i++ {
			qr := Q[i*m+c0 : i*m+c1]
			wr := st.wbar[i*m+c0 : i*m+c1]
			for k, qv := range qr {
				if qv == 0 {
					continue
				}
				for l := k; l < s; l++ {
					H[k*s+l] += qv * qr[l]
				}
				for j, wv := range wr {
					Ct[j*s+k] += qv * wv
				}
			}
		}
		for k := 0; k < s; k++ {
			for l := 0; l < k; l++ {
				H[k*s+l] = H[l*s+k]
			}
		}
		st.add(st.n * (s*(s+1)/2 + s*s))
		// Work on Bᵀ so that the unknown columns b_j are rows.
		BK := st.B[K]
		Bt := make([]float64, s*s)
		for k := 0; k < s; k++ {
			for j := 0; j < s; j++ {
				Bt[j*s+k] = BK[k*s+j]
			}
		}
		st.acceptLS(Bt, H, Ct, st.h[c0:c1], s)
		for k := 0; k < s; k++ {
			for j := 0; j < s; j++ {
				BK[k*s+j] = Bt[j*s+k]
			}
		}
	})
}

// updateS improves S tile by tile with A and B fixed. In tile (J, K) the loss
// is the quadratic q(S) = tr(G_A S G_B Sᵀ) − 2⟨R, S⟩ + const with
// G_A = A_Jᵀ A_J, G_B = B_K D B_Kᵀ and R = A_Jᵀ W̄_JK D B_Kᵀ; tiles are
// independent. Y and R are scratch (W̄ D Bᵀ and Aᵀ Y). groups selects the
// pass of group updates after the conjugate-gradient steps.
func (st *state) updateS(Y, R []float64, cgSteps int, groups bool) {
	if st.fast() {
		updateSFast(st, Y, R, cgSteps, groups)
		return
	}
	m := st.m
	for i := 0; i < st.n; i++ {
		for j := 0; j < m; j++ {
			R[i*m+j] = st.wbar[i*m+j] * st.h[j] // R as scratch for W̄ D
		}
	}
	st.blockTimesBT(R, Y)
	st.aTransposeTimes(Y, R, false)
	nJ, nK := len(st.rb)-1, len(st.cb)-1
	GA := make([][]float64, nJ)
	GB := make([][]float64, nK)
	parallelFor(st.threads, nJ, func(J int) {
		s := st.rb[J+1] - st.rb[J]
		A := st.A[J]
		g := make([]float64, s*s)
		for k := 0; k < s; k++ {
			for l := k; l < s; l++ {
				v := 0.0
				for r := 0; r < s; r++ {
					v += A[r*s+k] * A[r*s+l]
				}
				g[k*s+l], g[l*s+k] = v, v
			}
		}
		GA[J] = g
	})
	parallelFor(st.threads, nK, func(K int) {
		c0, s := st.cb[K], st.cb[K+1]-st.cb[K]
		B := st.B[K]
		g := make([]float64, s*s)
		for k := 0; k < s; k++ {
			for l := k; l < s; l++ {
				v := 0.0
				for c := 0; c < s; c++ {
					v += B[k*s+c] * st.h[c0+c] * B[l*s+c]
				}
				g[k*s+l], g[l*s+k] = v, v
			}
		}
		GB[K] = g
	})
	for _, bounds := range [][]int{st.rb, st.cb} {
		for J := 0; J+1 < len(bounds); J++ {
			s := bounds[J+1] - bounds[J]
			st.add(s * s * (s + 1) / 2)
		}
	}
	parallelFor(st.threads, nJ*nK, func(tile int) {
		J, K := tile/nK, tile%nK
		tl := st.newTile(J, K, R)
		tl.cg(GA[J], GB[K], cgSteps)
		if groups {
			tl.groupPass(GA[J], GB[K])
		}
		tl.store()
	})
}

// fastRTol is ArmorFast's default convergence tolerance: a layer stops
// once 3 sweeps in a row have not lowered the loss by this fraction below
// the last loss that did (about 0.07 % a sweep). Measured 2026-12-07
// (docs/quality.md, docs/benchmarks.md): on stories260K's quality table
// (b = 4, 8, 16, armor-fast and armor-fast-h) every perplexity stayed
// within 1.4 % of the old default 1e-4's at 1e-3 and at 3e-3 alike, which
// is the table's run-to-run noise; on a random 4096×4096 layer at b = 128
// the rule stops at sweep 60 with a loss 2.3 % above sweep 150's (1e-4
// runs past 150; 1e-3 stops at 85, +1.2 %; 3e-3 at 47, +3.3 %), which at
// 7B is the difference between about 8 and 25 hours on 2 cores. Random
// layers of 768-2048 wide keep improving faster than this and run to the
// cap. --tol sets it per run. The reference schedule keeps its own 1e-6.
const fastRTol = 2e-3

// vecCost is what one multiply-add of L-BFGS's two-loop recursion costs, in
// multiply-adds of the sweeps' products, when the adaptive choice compares
// the two kinds of sweep (the reported count is not weighted). The
// recursion streams its float64 history vectors (2·mem of them, as long as
// the layer's parameters) once per pass: memory-bound scalar work. On a
// 2048×768 layer at b = 128 it ran at about 1 G multiply-adds per second on
// this project's 2-core machine, against about 50 G for the f32 sweep's
// products, so unweighted, a sweep with L-BFGS looked several times
// cheaper than it was and won the choice while costing more time (200
// sweeps: 24 s with L-BFGS against 17 s without, for a 0.5 % lower loss).
// A constant, not a timing, so that the result does not depend on the
// machine.
const vecCost = 40

// cost is the work spent so far as the adaptive choice counts it.
func (st *state) cost() int64 { return st.ops.Load() + (vecCost-1)*st.vecOps.Load() }

// lbWarm is how many consecutive sweeps with L-BFGS run before their
// improvement is compared with plain sweeps': the first ones, with little
// history, understate it.
const lbWarm = 3

// lbfgsMaxBytes caps the memory of ArmorFast's L-BFGS history per layer.
const lbfgsMaxBytes = 256 << 20

// The extrapolation factor grows by alphaGrow after every successful
// extrapolation (up to alphaMax) and falls back to 1 after a failed one. The
// values matter little: 1.2/4, 1.5/16, 2/64 and 3/1000 were within 2 % of each
// other on a 64×172 layer.
const (
	alphaGrow = 1.5
	alphaMax  = 16.0
)

// extrapolate tries the point θ + α(θ − θ_prev) beyond the sweep, θ_prev being
// the previous best iterate kept in f: alternating minimization of a bilinear
// model crawls along narrow valleys ("swamps"), and this line-search
// extrapolation, classic for alternating least squares, jumps along them. S is
// extrapolated only where the mask did not change. The trial is kept only if
// its loss is lower; on success P and Ŵ of the trial are left in P2 and W2.
func extrapolate[E elem](st *state, f *Factorization, alpha, loss float64, P2, W2 []E) (float64, bool) {
	oldA, oldB, oldX := st.A, st.B, st.X
	ext := func(cur, prev []float64) []float64 {
		out := make([]float64, len(cur))
		for k, v := range cur {
			out[k] = v + alpha*(v-prev[k])
		}
		return out
	}
	tA := make([][]float64, len(oldA))
	for J := range oldA {
		tA[J] = ext(oldA[J], f.A[J])
	}
	tB := make([][]float64, len(oldB))
	for K := range oldB {
		tB[K] = ext(oldB[K], f.B[K])
	}
	m := st.m
	// The trial S, without branches (the masks are random): where M is 0
	// it is 0; where the previous best did not keep the entry (f.X is 0
	// there) it is the current value; elsewhere it moves on.
	trial := func(v float64, k int) float64 {
		return float64(st.M[k]) * (v + alpha*float64(f.Mask[k])*(v-f.X[k]))
	}
	if st.s32 != nil {
		// The f32 path: S is s32 (X is stale); the trial S goes into
		// spare32 (4 bytes a weight), where the products read it, and
		// becomes s32 if it is kept.
		if len(st.spare32) != len(st.s32) {
			st.spare32 = make([]float32, len(st.s32))
		}
		t32, old32 := st.spare32, st.s32
		parallelRows(st.threads, st.n, func(lo, hi int) {
			// trial, written out: a closure call per weight was a
			// twentieth of a sweep.
			lo, hi = lo*m, hi*m
			mk, pm, px, o, t := st.M[lo:hi], f.Mask[lo:hi], f.X[lo:hi], old32[lo:hi], t32[lo:hi]
			for k := range t {
				v := float64(o[k])
				t[k] = float32(float64(mk[k]) * (v + alpha*float64(pm[k])*(v-px[k])))
			}
		})
		st.A, st.B, st.s32 = tA, tB, t32
		fwdP(st, P2)
		fwdW(st, P2, W2)
		if tl := lossE(st, W2); tl < loss {
			st.spare32 = old32
			return tl, true
		}
		st.A, st.B, st.s32 = oldA, oldB, old32
		return loss, false
	}
	// The trial S goes into the spare X (one per layer, not one per trial:
	// X is as large as the layer, 8 bytes a weight); whichever of the two
	// is not kept becomes the spare.
	if len(st.spareX) != len(oldX) {
		st.spareX = make([]float64, len(oldX))
	}
	tX := st.spareX
	parallelRows(st.threads, st.n, func(lo, hi int) {
		for k := lo * m; k < hi*m; k++ {
			tX[k] = trial(oldX[k], k)
		}
	})
	st.A, st.B, st.X = tA, tB, tX
	fwdP(st, P2)
	fwdW(st, P2, W2)
	tl := lossE(st, W2)
	if tl < loss {
		st.spareX = oldX
		return tl, true
	}
	st.A, st.B, st.X = oldA, oldB, oldX
	return loss, false
}
