package convert

import "math"

// The f32 forms of the state's products (see gemm32.go). Each splits its
// work into independent pieces (a block × a chunk of the long dimension) for
// parallelFor, and each piece writes only its own outputs, so results do
// not depend on the thread count.

// chunkCols is the length of the long dimension (m or n) handled by one
// piece: long enough to amortize the conversions, short enough that a
// piece's f32 operands (b × chunkCols) stay in L2.
const chunkCols = 512

func nChunks(n int) int { return (n + chunkCols - 1) / chunkCols }

// forwardPFast sets P = S·B: P[:, K] = S[:, K]·B_K.
func forwardPFast[E elem](st *state, P []E) {
	n, m := st.n, st.m
	nK, nc := len(st.cb)-1, nChunks(n)
	p32, f32 := any(P).([]float32)
	var b32 [][]float32
	if f32 {
		b32 = blocksF32(st.B, false)
	}
	parallelFor(st.threads, nK*nc, func(it int) {
		K, t0 := it/nc, it%nc*chunkCols
		c0, s := st.cb[K], st.cb[K+1]-st.cb[K]
		nt := min(chunkCols, n-t0)
		x := view[float64]{d: st.X, off: t0*m + c0, ld: m, mask: st.M}
		if f32 {
			// P[t0:, K] = S[t0:, K]·B_K, an NN product on S (in place when
			// its f32 form is kept, else converted).
			var xs []float32
			var ldx int
			put := func() {}
			if st.s32 != nil {
				xs, ldx = st.s32[t0*m+c0:], m
			} else {
				xs, ldx, put = panel32(x, nt, s)
			}
			st.nn(p32[t0*m+c0:], m, xs, ldx, nt, s, b32[K], s, s, false)
			put()
			return
		}
		out := view[E]{d: P, off: t0*m + c0, ld: m}
		w := view[float64]{d: st.B[K], ld: s, t: true} // w(l, k) = B_K[k, l]
		mulNT(st, out, x, w, nt, s, s, false)
	})
	st.add(st.n * st.m / 2 * st.b)
}

// leftBlocks sets Out_J = L_J · In_J for every row block J, where L_J is
// A_J (or A_Jᵀ when lt) and In is n×m (masked by mask if not nil):
// out(i, j) = Σ_k L_J(i, k)·In[r0+k, j], computed per chunk of columns j.
func leftBlocks[O, I elem](st *state, Out []O, In []I, mask []uint8, lt bool) {
	m := st.m
	nJ, nc := len(st.rb)-1, nChunks(m)
	o32, f32 := any(Out).([]float32)
	var a32 [][]float32
	if f32 {
		a32 = blocksF32(st.A, false)
	}
	parallelFor(st.threads, nJ*nc, func(it int) {
		J, j0 := it/nc, it%nc*chunkCols
		r0, s := st.rb[J], st.rb[J+1]-st.rb[J]
		nj := min(chunkCols, m-j0)
		if f32 {
			// Out_J = A_J·In_J (A_Jᵀ·In_J), NN (TN) products.
			xs, ldx, put := panel32(view[I]{d: In, off: r0*m + j0, ld: m, mask: mask}, s, nj)
			if lt {
				st.tn(o32[r0*m+j0:], m, a32[J], s, s, s, xs, ldx, nj, false)
			} else {
				st.nn(o32[r0*m+j0:], m, a32[J], s, s, s, xs, ldx, nj, false)
			}
			put()
			return
		}
		out := view[O]{d: Out, off: r0*m + j0, ld: m}
		x := view[float64]{d: st.A[J], ld: s, t: lt}
		w := view[I]{d: In, off: r0*m + j0, ld: m, t: true, mask: mask} // w(j, k) = In[r0+k, j]
		mulNT(st, out, x, w, s, nj, s, false)
	})
}

// forwardWFast sets Ŵ = A·P.
func forwardWFast[E elem](st *state, P, What []E) {
	leftBlocks(st, What, P, nil, false)
	st.addBlockwise(st.rb, st.m)
}

// blockTimesBTFast sets T = G·Bᵀ: T[:, K] = G[:, K]·B_Kᵀ.
func blockTimesBTFast[E elem](st *state, G, T []E) {
	n, m := st.n, st.m
	nK, nc := len(st.cb)-1, nChunks(n)
	t32, f32 := any(T).([]float32)
	var bt [][]float32
	if f32 {
		bt = blocksF32(st.B, true)
	}
	parallelFor(st.threads, nK*nc, func(it int) {
		K, t0 := it/nc, it%nc*chunkCols
		c0, s := st.cb[K], st.cb[K+1]-st.cb[K]
		nt := min(chunkCols, n-t0)
		if f32 {
			// T[t0:, K] = G[t0:, K]·B_Kᵀ, an NN product with B_Kᵀ.
			g32 := any(G).([]float32)
			st.nn(t32[t0*m+c0:], m, g32[t0*m+c0:], m, nt, s, bt[K], s, s, false)
			return
		}
		out := view[E]{d: T, off: t0*m + c0, ld: m}
		x := view[E]{d: G, off: t0*m + c0, ld: m}
		w := view[float64]{d: st.B[K], ld: s} // w(k, l) = B_K[k, l]
		mulNT(st, out, x, w, nt, s, s, false)
	})
	st.addBlockwise(st.cb, st.n)
}

// gramCols sets, for column block K of the n×m matrices X and Y,
// Out_K(k, l) = Σ_i X[i, c0+k]·Y[i, c0+l] (an s×s matrix, row-major), the
// contraction running over all n rows in chunks.
func gramCols[X, Y elem](st *state, Xm []X, Ym []Y, mx []uint8, c0, s int, out []float64) {
	m, n := st.m, st.n
	clear(out)
	// Per chunk of rows a TN product X_chunkᵀ·Y_chunk in f32, added into
	// out in float64.
	sc := scratchPool.Get().(*scratch32)
	sc.y = grow32(sc.y, s*s)
	for t0 := 0; t0 < n; t0 += chunkCols {
		nt := min(chunkCols, n-t0)
		xs, ldx, put := panel32(view[X]{d: Xm, off: t0*m + c0, ld: m, mask: mx}, nt, s)
		ys, ldy, put2 := panel32(view[Y]{d: Ym, off: t0*m + c0, ld: m}, nt, s)
		st.tn(sc.y, s, xs, ldx, s, nt, ys, ldy, s, false)
		put()
		put2()
		for k, v := range sc.y {
			out[k] += float64(v)
		}
	}
	scratchPool.Put(sc)
}

// panel32 returns the rows×cols matrix v (not transposed) as f32 with its
// stride: in place when it is an unmasked f32 matrix, else converted into a
// pooled buffer that put returns.
func panel32[E elem](v view[E], rows, cols int) (d []float32, ld int, put func()) {
	if d, ld, ok := direct(v); ok {
		return d, ld, func() {}
	}
	bp := tmpPool.Get().(*[]float32)
	buf := grow32(*bp, rows*cols)
	load32(buf, v, rows, cols)
	return buf, cols, func() { *bp = buf; tmpPool.Put(bp) }
}

// blocksF32 returns the square blocks (or their transposes) as f32, once
// per product rather than once per chunk of it.
func blocksF32(blocks [][]float64, t bool) [][]float32 {
	out := make([][]float32, len(blocks))
	for i, b := range blocks {
		s := int(math.Sqrt(float64(len(b))))
		o := make([]float32, s*s)
		for k := 0; k < s; k++ {
			for l := 0; l < s; l++ {
				if t {
					o[l*s+k] = float32(b[k*s+l])
				} else {
					o[k*s+l] = float32(b[k*s+l])
				}
			}
		}
		out[i] = o
	}
	return out
}

// gramRows sets Out(k, l) = Σ_j X[xr+k, j]·Y[yr+l, j] for k, l < s (an s×s
// matrix), the contraction over all m columns of the m-wide X and Y.
func gramRows[X, Y elem](st *state, Xm []X, xr int, Ym []Y, yr, s int, out []float64) {
	m := st.m
	clear(out)
	o := view[float64]{d: out, ld: s}
	for j0 := 0; j0 < m; j0 += chunkCols {
		nj := min(chunkCols, m-j0)
		x := view[X]{d: Xm, off: xr*m + j0, ld: m}
		w := view[Y]{d: Ym, off: yr*m + j0, ld: m}
		mulNT(st, o, x, w, s, s, nj, true)
	}
}

// gradientsFast is gradients (see there) on f32 products.
func gradientsFast[E elem](st *state, P, G, Q, T, GX []E, gA, gB [][]float64) {
	parallelFor(st.threads, len(st.rb)-1, func(J int) {
		r0, s := st.rb[J], st.rb[J+1]-st.rb[J]
		gramRows(st, G, r0, P, r0, s, gA[J])
	})
	leftS(st, Q)
	st.addBlockwise(st.rb, st.m)   // gA
	st.addBlockwise(st.rb, st.m/2) // Q (S half zero)
	blockTimesBTFast(st, G, T)
	parallelFor(st.threads, len(st.cb)-1, func(K int) {
		c0, s := st.cb[K], st.cb[K+1]-st.cb[K]
		gramCols(st, Q, G, nil, c0, s, gB[K])
	})
	st.addBlockwise(st.cb, st.n)
	// dL/dX = M ⊙ (Aᵀ T), only on the kept entries.
	leftBlocks(st, GX, T, nil, true)
	m := st.m
	parallelRows(st.threads, st.n, func(lo, hi int) {
		for k := lo * m; k < hi*m; k++ {
			GX[k] *= E(st.M[k])
		}
	})
	st.addBlockwise(st.rb, st.m/2)
}

// updateAFast is updateA (see there) on f32 products: per row block,
// G = (P_J D) P_Jᵀ and C = W̄_J (P_J D)ᵀ.
func updateAFast[E elem](st *state, P []E) {
	m := st.m
	parallelFor(st.threads, len(st.rb)-1, func(J int) {
		r0, s := st.rb[J], st.rb[J+1]-st.rb[J]
		// D·P_k for the block's rows (pooled on the f32 path: a block's
		// worth of the layer, every sweep).
		var dp []E
		if _, ok := any(dp).([]float32); ok {
			bp := tmpPool.Get().(*[]float32)
			b32 := grow32(*bp, s*m)
			defer func() { *bp = b32; tmpPool.Put(bp) }()
			dp = any(b32).([]E)
		} else {
			dp = make([]E, s*m)
		}
		for k := 0; k < s; k++ {
			pk := P[(r0+k)*m : (r0+k+1)*m]
			for j, v := range pk {
				dp[k*m+j] = E(st.h[j]) * v
			}
		}
		G := make([]float64, s*s)
		C := make([]float64, s*s)
		gramRows(st, dp, 0, P, r0, s, G)
		if st.wbar32 != nil {
			gramRows(st, st.wbar32, r0, dp, 0, s, C)
		} else {
			gramRows(st, st.wbar, r0, dp, 0, s, C)
		}
		// The f32 Gram is symmetric only up to rounding; the Cholesky
		// factorization reads one triangle, the objective both.
		for k := 0; k < s; k++ {
			for l := k + 1; l < s; l++ {
				v := 0.5 * (G[k*s+l] + G[l*s+k])
				G[k*s+l], G[l*s+k] = v, v
			}
		}
		st.add(s*m + s*s*m + s*s*m)
		st.acceptLS(st.A[J], G, C, nil, s)
	})
}

// updateBFast is updateB (see there) on f32 products: per column block,
// H = Q_Kᵀ Q_K and Cᵀ = W̄_Kᵀ Q_K.
func updateBFast[E elem](st *state, Q []E) {
	leftS(st, Q)
	st.addBlockwise(st.rb, st.m/2)
	parallelFor(st.threads, len(st.cb)-1, func(K int) {
		c0, s := st.cb[K], st.cb[K+1]-st.cb[K]
		H := make([]float64, s*s)
		Ct := make([]float64, s*s) // row j holds c_j
		gramCols(st, Q, Q, nil, c0, s, H)
		if st.wbar32 != nil {
			gramCols(st, st.wbar32, Q, nil, c0, s, Ct)
		} else {
			gramCols(st, st.wbar, Q, nil, c0, s, Ct)
		}
		for k := 0; k < s; k++ {
			for l := k + 1; l < s; l++ {
				v := 0.5 * (H[k*s+l] + H[l*s+k])
				H[k*s+l], H[l*s+k] = v, v
			}
		}
		st.add(st.n * (s*s + s*s))
		BK := st.B[K]
		Bt := make([]float64, s*s)
		for k := 0; k < s; k++ {
			for j := 0; j < s; j++ {
				Bt[j*s+k] = BK[k*s+j]
			}
		}
		st.acceptLS(Bt, H, Ct, st.h[c0:c0+s], s)
		for k := 0; k < s; k++ {
			for j := 0; j < s; j++ {
				BK[k*s+j] = Bt[j*s+k]
			}
		}
	})
}

// tileGramsFast sets updateS's Gram matrices on f32 products:
// GA_J = A_Jᵀ A_J and GB_K = B_K D B_Kᵀ.
func (st *state) tileGramsFast(GA, GB [][]float64) {
	sym := func(g []float64, s int) {
		for k := 0; k < s; k++ {
			for l := k + 1; l < s; l++ {
				v := 0.5 * (g[k*s+l] + g[l*s+k])
				g[k*s+l], g[l*s+k] = v, v
			}
		}
	}
	parallelFor(st.threads, len(st.rb)-1, func(J int) {
		s := st.rb[J+1] - st.rb[J]
		g := make([]float64, s*s)
		a := view[float64]{d: st.A[J], ld: s, t: true} // a(k, r) = A_J[r, k]
		mulNT(st, view[float64]{d: g, ld: s}, a, a, s, s, s, false)
		sym(g, s)
		GA[J] = g
	})
	parallelFor(st.threads, len(st.cb)-1, func(K int) {
		c0, s := st.cb[K], st.cb[K+1]-st.cb[K]
		B := st.B[K]
		bh := make([]float64, s*s)
		for k := 0; k < s; k++ {
			for c := 0; c < s; c++ {
				bh[k*s+c] = B[k*s+c] * st.h[c0+c]
			}
		}
		g := make([]float64, s*s)
		mulNT(st, view[float64]{d: g, ld: s}, view[float64]{d: bh, ld: s}, view[float64]{d: B, ld: s}, s, s, s, false)
		sym(g, s)
		GB[K] = g
	})
	for _, bounds := range [][]int{st.rb, st.cb} {
		for J := 0; J+1 < len(bounds); J++ {
			s := bounds[J+1] - bounds[J]
			st.add(s * s * (s + 1) / 2)
		}
	}
}

// leftS sets Q = A·S, reading S in place on the f32 path.
func leftS[E elem](st *state, Q []E) {
	if st.s32 != nil {
		leftBlocks(st, Q, st.s32, nil, false)
		return
	}
	leftBlocks(st, Q, st.X, st.M, false)
}
