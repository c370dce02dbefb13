package convert

// Dispatch of ArmorFast's steps by the element type of its working
// matrices (see armorFast): float64 matrices go through the state's methods,
// which choose between the float64 loops and the f32 products themselves;
// float32 matrices exist only on the f32 path and go to the f32 products
// directly.

func fwdP[E elem](st *state, P []E) {
	if p, ok := any(P).([]float64); ok {
		st.forwardP(p)
		return
	}
	forwardPFast(st, P)
}

func fwdW[E elem](st *state, P, What []E) {
	if p, ok := any(P).([]float64); ok {
		st.forwardW(p, any(What).([]float64))
		return
	}
	forwardWFast(st, P, What)
}

func lossE[E elem](st *state, What []E) float64 {
	if w, ok := any(What).([]float64); ok {
		return st.lossOf(w)
	}
	return lossOfE(st, What)
}

func updA[E elem](st *state, P []E) {
	if p, ok := any(P).([]float64); ok {
		st.updateA(p)
		return
	}
	updateAFast(st, P)
}

func updB[E elem](st *state, Q []E) {
	if q, ok := any(Q).([]float64); ok {
		st.updateB(q)
		return
	}
	updateBFast(st, Q)
}

func updS[E elem](st *state, Y, R []E, cgSteps int, groups bool) {
	if y, ok := any(Y).([]float64); ok {
		st.updateS(y, any(R).([]float64), cgSteps, groups)
		return
	}
	updateSFast(st, Y, R, cgSteps, groups)
}

// lossOfE is lossOf (without a full Hessian) for any element type: the
// differences and their weighted squares are summed in float64.
//
// Rows are summed in chunks in parallel and the chunks' sums added in order,
// so the result does not depend on the thread count.
func lossOfE[E elem](st *state, What []E) float64 {
	m := st.m
	part := make([]float64, (st.n+rowChunk-1)/rowChunk)
	parallelRows(st.threads, st.n, func(lo, hi int) {
		sum := 0.0
		for i := lo; i < hi; i++ {
			w, wb := What[i*m:(i+1)*m], st.wbar[i*m:(i+1)*m]
			for j := range w {
				d := float64(w[j]) - wb[j]
				sum += st.h[j] * d * d
			}
		}
		part[lo/rowChunk] = sum
	})
	sum := 0.0
	for _, v := range part {
		sum += v
	}
	st.add(st.n * st.m)
	return sum / st.z
}

// updateSFast is updateS on the f32 path: R = Aᵀ (W̄ D) Bᵀ, then the tiles.
// Y and R are scratch.
func updateSFast[E elem](st *state, Y, R []E, cgSteps int, groups bool) {
	m := st.m
	parallelRows(st.threads, st.n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := 0; j < m; j++ {
				R[i*m+j] = E(st.wbar[i*m+j] * st.h[j]) // R as scratch for W̄ D
			}
		}
	})
	blockTimesBTFast(st, R, Y)
	leftBlocks(st, R, Y, nil, true)
	st.addBlockwise(st.rb, m)
	GA := make([][]float64, len(st.rb)-1)
	GB := make([][]float64, len(st.cb)-1)
	st.tileGramsFast(GA, GB)
	updateTiles32(st, GA, GB, R, cgSteps, groups)
}

// lossGradE is lossGradient for any element type.
func lossGradE[E elem](st *state, What, G []E) {
	if w, ok := any(What).([]float64); ok {
		st.lossGradient(w, any(G).([]float64))
		return
	}
	m := st.m
	parallelRows(st.threads, st.n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := 0; j < m; j++ {
				k := i*m + j
				G[k] = E(2 * (float64(What[k]) - st.wbar[k]) * st.h[j] / st.z)
			}
		}
	})
	st.add(st.n * m)
}

// gradE is gradients for any element type.
func gradE[E elem](st *state, P, G, Q, T, GX []E, gA, gB [][]float64) {
	if p, ok := any(P).([]float64); ok {
		st.gradients(p, any(G).([]float64), any(Q).([]float64), any(T).([]float64), any(GX).([]float64), gA, gB)
		return
	}
	gradientsFast(st, P, G, Q, T, GX, gA, gB)
}
