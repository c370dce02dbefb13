package convert

import (
	"math"
	"math/rand/v2"
)

// Adam hyper-parameters of the reference schedule (section 4).
const (
	adamLR    = 1e-4
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// Armor runs the reference ARMOR schedule of section 4: NoWag-P
// initialization, then per iteration one joint Adam step on the A blocks, the
// B blocks and X, followed by one sparse-core group update in every tile, with
// the (row, group) of each tile sampled in proportion to the gradient
// magnitude. It stops after Options.Iters iterations (default 20000) or
// Patience iterations (default 100) without an improvement of more than
// ATol + RTol·loss, and returns the best iterate seen, so its loss is never
// above NoWag-P's (section 5). The sampling is deterministic for a given Seed.
func Armor(w Matrix, h []float64, opt Options) (*Factorization, error) {
	st, f, err := newState(w, h, opt)
	if err != nil {
		return nil, err
	}
	iters := opt.Iters
	if iters <= 0 {
		iters = 20000
	}
	patience := opt.Patience
	if patience <= 0 {
		patience = 100
	}
	n, m := st.n, st.m
	P := make([]float64, n*m)
	What := make([]float64, n*m)
	G := make([]float64, n*m)  // dL/dŴ, then the scaled residual for G_S
	T := make([]float64, n*m)  // G·Bᵀ
	Q := make([]float64, n*m)  // A·S
	GX := make([]float64, n*m) // dL/dX (zero off the mask)
	gA, mA, vA := zerosLike(st.A), zerosLike(st.A), zerosLike(st.A)
	gB, mB, vB := zerosLike(st.B), zerosLike(st.B), zerosLike(st.B)
	mX, vX := make([]float64, n*m), make([]float64, n*m)
	nJ, nK := len(st.rb)-1, len(st.cb)-1
	us := make([]float64, nJ*nK)
	deltas := make([]float64, nJ*nK)
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))

	st.forwardP(P)
	st.forwardW(P, What)
	loss := st.lossOf(What)
	f.InitLoss, f.BestLoss = loss, loss
	st.snapshot(f)
	f.History = append(f.History, Point{0, st.ops.Load(), loss})
	ref, stale := loss, 0
	for it := 1; it <= iters; it++ {
		if opt.Ctx != nil {
			if err := opt.Ctx.Err(); err != nil {
				return nil, err
			}
		}
		// Continuous step: gradients at the current iterate (P, Ŵ are current).
		st.lossGradient(What, G)
		st.gradients(P, G, Q, T, GX, gA, gB)
		for J := range st.A {
			adamStep(st.A[J], gA[J], mA[J], vA[J], it)
		}
		for K := range st.B {
			adamStep(st.B[K], gB[K], mB[K], vB[K], it)
		}
		adamStep(st.X, GX, mX, vX, it)

		// Discrete step at the new continuous parameters.
		st.forwardP(P)
		st.forwardW(P, What)
		st.sparseGradient(What, G, T, Q) // Q now holds G_S
		for k := range us {
			us[k] = rng.Float64()
		}
		st.sparseStep(What, P, Q, us, deltas)

		loss = st.lossOf(What)
		if loss < f.BestLoss {
			f.BestLoss = loss
			st.snapshot(f)
		}
		f.Iters = it
		f.History = append(f.History, Point{it, st.ops.Load(), f.BestLoss})
		if opt.Progress != nil {
			opt.Progress(it, f.BestLoss)
		}
		if improved(ref, loss, opt) {
			ref, stale = loss, 0
		} else if stale++; stale >= patience {
			break
		}
	}
	f.MulAdds = st.ops.Load()
	return f, nil
}

// improved reports whether loss is a significant improvement over ref
// (isclose semantics: more than ATol + RTol·ref below it).
func improved(ref, loss float64, opt Options) bool {
	rtol, atol := opt.RTol, opt.ATol
	if rtol <= 0 {
		rtol = 1e-6
	}
	if atol <= 0 {
		atol = 1e-8
	}
	return ref-loss > atol+rtol*ref
}

func zerosLike(blocks [][]float64) [][]float64 {
	out := make([][]float64, len(blocks))
	for i, b := range blocks {
		out[i] = make([]float64, len(b))
	}
	return out
}

// adamStep is one PyTorch-style Adam update with bias correction (step t ≥ 1).
func adamStep(p, g, m, v []float64, t int) {
	bc1 := 1 - math.Pow(adamBeta1, float64(t))
	bc2 := math.Sqrt(1 - math.Pow(adamBeta2, float64(t)))
	step := adamLR / bc1
	for k := range p {
		m[k] = adamBeta1*m[k] + (1-adamBeta1)*g[k]
		v[k] = adamBeta2*v[k] + (1-adamBeta2)*g[k]*g[k]
		p[k] -= step * m[k] / (math.Sqrt(v[k])/bc2 + adamEps)
	}
}

// lossGradient sets G = dL/dŴ = 2 (Ŵ − W̄) diag(h) / Z.
func (st *state) lossGradient(What, G []float64) {
	if st.full != nil {
		st.full.loss(st, What, G)
		return
	}
	m := st.m
	for i := 0; i < st.n; i++ {
		for j := 0; j < m; j++ {
			k := i*m + j
			G[k] = 2 * (What[k] - st.wbar[k]) * st.h[j] / st.z
		}
	}
	st.add(st.n * m)
}

// gradients computes, from P = S·B and G = dL/dŴ (section 4):
// dL/dA_J = G_J P_Jᵀ, dL/dB_K = (A S)_Kᵀ G_K and dL/dX = M ⊙ (Aᵀ G Bᵀ).
// Q and T are scratch (A·S and G·Bᵀ).
func (st *state) gradients(P, G, Q, T, GX []float64, gA, gB [][]float64) {
	if st.fast() {
		gradientsFast(st, P, G, Q, T, GX, gA, gB)
		return
	}
	m := st.m
	nJ := len(st.rb) - 1
	// dL/dA_J and Q_J = A_J S_J, per row block.
	parallelFor(st.threads, nJ, func(J int) {
		r0, r1 := st.rb[J], st.rb[J+1]
		s := r1 - r0
		for r := 0; r < s; r++ {
			grow := G[(r0+r)*m : (r0+r+1)*m]
			for k := 0; k < s; k++ {
				gA[J][r*s+k] = dot(grow, P[(r0+k)*m:(r0+k+1)*m])
			}
		}
		st.aTimesS(J, Q)
	})
	st.addBlockwise(st.rb, m)   // gA
	st.addBlockwise(st.rb, m/2) // Q (S half zero)
	st.blockTimesBT(G, T)
	// dL/dB_K = Q_Kᵀ G_K, per column block.
	parallelFor(st.threads, len(st.cb)-1, func(K int) {
		c0, c1 := st.cb[K], st.cb[K+1]
		s := c1 - c0
		g := gB[K]
		clear(g)
		for i := 0; i < st.n; i++ {
			qrow := Q[i*m+c0 : i*m+c1]
			grow := G[i*m+c0 : i*m+c1]
			for k, qv := range qrow {
				if qv == 0 {
					continue
				}
				out := g[k*s : (k+1)*s]
				for t, gv := range grow {
					out[t] += qv * gv
				}
			}
		}
	})
	st.addBlockwise(st.cb, st.n)
	st.aTransposeTimes(T, GX, true)
}

// aTimesS sets Q_J = A_J · S_J for row block J (S = X ⊙ M).
func (st *state) aTimesS(J int, Q []float64) {
	m := st.m
	r0, r1 := st.rb[J], st.rb[J+1]
	s := r1 - r0
	for r := 0; r < s; r++ {
		clear(Q[(r0+r)*m : (r0+r+1)*m])
	}
	for k := 0; k < s; k++ {
		xr, mr := st.X[(r0+k)*m:(r0+k+1)*m], st.M[(r0+k)*m:(r0+k+1)*m]
		for r := 0; r < s; r++ {
			a := st.A[J][r*s+k]
			if a == 0 {
				continue
			}
			out := Q[(r0+r)*m : (r0+r+1)*m]
			for j, x := range xr {
				if mr[j] == 1 {
					out[j] += a * x
				}
			}
		}
	}
}

// blockTimesBT sets T = G·Bᵀ (block-diagonal B): T[:,K] = G[:,K] B_Kᵀ.
func (st *state) blockTimesBT(G, T []float64) {
	if st.fast() {
		blockTimesBTFast(st, G, T)
		return
	}
	m := st.m
	parallelFor(st.threads, st.n, func(i int) {
		for K := 0; K+1 < len(st.cb); K++ {
			c0, c1 := st.cb[K], st.cb[K+1]
			s := c1 - c0
			grow := G[i*m+c0 : i*m+c1]
			for k := 0; k < s; k++ {
				T[i*m+c0+k] = dot(grow, st.B[K][k*s:(k+1)*s])
			}
		}
	})
	st.addBlockwise(st.cb, st.n)
}

// aTransposeTimes sets Out = Aᵀ·T (block-diagonal A), only on the kept
// entries (zero elsewhere) when masked is set.
func (st *state) aTransposeTimes(T, Out []float64, masked bool) {
	if st.fast() {
		leftBlocks(st, Out, T, nil, true)
		if masked {
			for k, v := range st.M {
				if v == 0 {
					Out[k] = 0
				}
			}
			st.addBlockwise(st.rb, st.m/2)
		} else {
			st.addBlockwise(st.rb, st.m)
		}
		return
	}
	m := st.m
	parallelFor(st.threads, len(st.rb)-1, func(J int) {
		r0, r1 := st.rb[J], st.rb[J+1]
		s := r1 - r0
		AJ := st.A[J]
		for i := 0; i < s; i++ {
			out := Out[(r0+i)*m : (r0+i+1)*m]
			mr := st.M[(r0+i)*m : (r0+i+1)*m]
			for j := range out {
				if masked && mr[j] == 0 {
					out[j] = 0
					continue
				}
				v := 0.0
				for r := 0; r < s; r++ {
					v += AJ[r*s+i] * T[(r0+r)*m+j]
				}
				out[j] = v
			}
		}
	})
	if masked {
		st.addBlockwise(st.rb, m/2)
	} else {
		st.addBlockwise(st.rb, m)
	}
}

// sparseGradient sets GS = Aᵀ · 2(Ŵ − W̄) diag(h) · Bᵀ, the gradient with
// respect to every entry of a dense S (discrete step, item 1). Gh and T are
// scratch.
func (st *state) sparseGradient(What, Gh, T, GS []float64) {
	m := st.m
	for i := 0; i < st.n; i++ {
		for j := 0; j < m; j++ {
			k := i*m + j
			Gh[k] = 2 * (What[k] - st.wbar[k]) * st.h[j]
		}
	}
	st.add(st.n * m)
	st.blockTimesBT(Gh, T)
	st.aTransposeTimes(T, GS, false)
}

// sparseStep does one group update in every tile (J, K) at once (discrete
// step, items 2-4): the (row, group) is drawn with probability proportional to
// Σ_q |G_S[i, g+q]| using the uniform us[tile], the exact minimizer replaces
// it, and P = S·B and Ŵ are updated in place. Tiles touch disjoint parts of
// X, M, P and Ŵ and do not interact in the loss, so they run in parallel and
// the loss falls by exactly Σ deltas / Z.
func (st *state) sparseStep(What, P, GS, us, deltas []float64) {
	m := st.m
	nK := len(st.cb) - 1
	parallelFor(st.threads, len(us), func(tile int) {
		J, K := tile/nK, tile%nK
		r0, r1 := st.rb[J], st.rb[J+1]
		c0, c1 := st.cb[K], st.cb[K+1]
		sJ, sK := r1-r0, c1-c0
		// 2. Sample the (row, group).
		total := 0.0
		for i := r0; i < r1; i++ {
			for j := c0; j < c1; j++ {
				total += math.Abs(GS[i*m+j])
			}
		}
		ng := sJ * sK / 4
		var pick int
		if total > 0 && !math.IsInf(total, 0) {
			target, acc := us[tile]*total, 0.0
			pick = ng - 1
			for gi := 0; gi < ng; gi++ {
				i, g := r0+gi/(sK/4), c0+4*(gi%(sK/4))
				acc += math.Abs(GS[i*m+g]) + math.Abs(GS[i*m+g+1]) + math.Abs(GS[i*m+g+2]) + math.Abs(GS[i*m+g+3])
				if acc > target {
					pick = gi
					break
				}
			}
		} else {
			pick = min(int(us[tile]*float64(ng)), ng-1)
		}
		il, gl := pick/(sK/4), 4*(pick%(sK/4)) // local row and group offset
		i, g := r0+il, c0+gl

		// 3. a = A_J[:, i], t = B̃ Eᵀ a (E the residual, B̃ = B_K[g..g+3,:] ⊙ √h),
		// Q = B̃ B̃ᵀ.
		AJ, BK := st.A[J], st.B[K]
		aa := 0.0
		u := make([]float64, sK)
		for r := 0; r < sJ; r++ {
			a := AJ[r*sJ+il]
			aa += a * a
			if a == 0 {
				continue
			}
			for c := 0; c < sK; c++ {
				u[c] += a * (What[(r0+r)*m+c0+c] - st.wbar[(r0+r)*m+c0+c])
			}
		}
		var t [4]float64
		var q [16]float64
		for p := 0; p < 4; p++ {
			bp := BK[(gl+p)*sK : (gl+p+1)*sK]
			for c, bv := range bp {
				t[p] += bv * st.h[c0+c] * u[c]
			}
			for r := p; r < 4; r++ {
				br := BK[(gl+r)*sK : (gl+r+1)*sK]
				v := 0.0
				for c, bv := range bp {
					v += bv * st.h[c0+c] * br[c]
				}
				q[p*4+r], q[r*4+p] = v, v
			}
		}
		var sOld [4]float64
		for p := 0; p < 4; p++ {
			if st.M[i*m+g+p] == 1 {
				sOld[p] = st.X[i*m+g+p]
			}
		}
		// 4. Exact minimizer over the 6 supports.
		sNew, keep, delta := groupUpdate(t, aa, &q, sOld)
		deltas[tile] = delta
		var d [4]float64
		for p := 0; p < 4; p++ {
			d[p] = sNew[p] - sOld[p]
			st.X[i*m+g+p] = sNew[p]
			st.M[i*m+g+p] = 0
		}
		st.M[i*m+g+keep[0]], st.M[i*m+g+keep[1]] = 1, 1
		// P[i, K] += δᵀ B_K[g..g+3, :];  Ŵ[J, K] += a ⊗ (δᵀ B_K[g..g+3, :]).
		dp := make([]float64, sK)
		for p := 0; p < 4; p++ {
			if d[p] == 0 {
				continue
			}
			bp := BK[(gl+p)*sK : (gl+p+1)*sK]
			for c, bv := range bp {
				dp[c] += d[p] * bv
			}
		}
		for c := 0; c < sK; c++ {
			P[i*m+c0+c] += dp[c]
		}
		for r := 0; r < sJ; r++ {
			a := AJ[r*sJ+il]
			row := What[(r0+r)*m+c0 : (r0+r)*m+c1]
			for c := range row {
				row[c] += a * dp[c]
			}
		}
		st.add(2*sJ*sK + 20*sK)
	})
}

func dot(a, b []float64) float64 {
	s := 0.0
	for k, v := range a {
		s += v * b[k]
	}
	return s
}
