package convert

// tile is a working copy of S in tile (J, K), for ArmorFast's S update. Its
// loss is q(S) = tr(G_A S G_B Sᵀ) − 2⟨R, S⟩ + const (see updateS).
type tile struct {
	st             *state
	r0, c0, sJ, sK int
	S              []float64 // sJ×sK, zero off the mask
	M              []uint8
	R              []float64 // this tile of R = Aᵀ W̄ D Bᵀ
}

func (st *state) newTile(J, K int, R []float64) *tile {
	r0, c0 := st.rb[J], st.cb[K]
	sJ, sK := st.rb[J+1]-r0, st.cb[K+1]-c0
	t := &tile{st: st, r0: r0, c0: c0, sJ: sJ, sK: sK,
		S: make([]float64, sJ*sK), M: make([]uint8, sJ*sK), R: make([]float64, sJ*sK)}
	for i := 0; i < sJ; i++ {
		for c := 0; c < sK; c++ {
			k := (r0+i)*st.m + c0 + c
			t.M[i*sK+c] = st.M[k]
			if st.M[k] == 1 {
				t.S[i*sK+c] = st.X[k]
			}
			t.R[i*sK+c] = R[k]
		}
	}
	return t
}

// store writes the tile back into X and M.
func (t *tile) store() {
	st := t.st
	for i := 0; i < t.sJ; i++ {
		for c := 0; c < t.sK; c++ {
			k := (t.r0+i)*st.m + t.c0 + c
			st.X[k] = t.S[i*t.sK+c]
			st.M[k] = t.M[i*t.sK+c]
		}
	}
}

// hop sets out = M ⊙ (G_A p G_B) for p zero off the mask: the normal-equations
// operator of the masked least-squares problem. u is sJ×sK scratch.
func (t *tile) hop(GA, GB, p, u, out []float64) {
	sJ, sK := t.sJ, t.sK
	clear(u)
	for k := 0; k < sJ; k++ {
		for c := 0; c < sK; c++ {
			if t.M[k*sK+c] == 0 || p[k*sK+c] == 0 {
				continue
			}
			v := p[k*sK+c]
			for i := 0; i < sJ; i++ {
				u[i*sK+c] += GA[i*sJ+k] * v
			}
		}
	}
	for i := 0; i < sJ; i++ {
		ur := u[i*sK : (i+1)*sK]
		for c := 0; c < sK; c++ {
			if t.M[i*sK+c] == 0 {
				out[i*sK+c] = 0
				continue
			}
			out[i*sK+c] = dot(ur, GB[c*sK:(c+1)*sK]) // G_B is symmetric
		}
	}
	t.st.add(sJ*sJ*sK/2 + sJ*sK*sK/2)
}

// cg runs up to steps conjugate-gradient iterations on the kept values,
// warm-started from the current S, and keeps the result only if q went down.
// With r = M ⊙ (R − G_A S G_B) and S zero off the mask,
// q(S) − const = ⟨S, G_A S G_B⟩ − 2⟨R, S⟩ = −⟨S, R + r⟩, so q is tracked
// without extra products.
func (t *tile) cg(GA, GB []float64, steps int) {
	if steps <= 0 {
		return
	}
	sz := t.sJ * t.sK
	u := make([]float64, sz)
	r := make([]float64, sz)
	p := make([]float64, sz)
	ap := make([]float64, sz)
	t.hop(GA, GB, t.S, u, ap)
	for k := range r {
		if t.M[k] == 1 {
			r[k] = t.R[k] - ap[k]
		}
	}
	q := func() float64 {
		v := 0.0
		for k, s := range t.S {
			v -= s * (t.R[k] + r[k])
		}
		return v
	}
	q0 := q()
	s0 := append([]float64(nil), t.S...)
	copy(p, r)
	rs := dot(r, r)
	rs0 := rs
	for it := 0; it < steps && rs > 1e-30*rs0 && rs > 0; it++ {
		t.hop(GA, GB, p, u, ap)
		pap := dot(p, ap)
		if !(pap > 0) {
			break
		}
		alpha := rs / pap
		for k := range t.S {
			t.S[k] += alpha * p[k]
			r[k] -= alpha * ap[k]
		}
		rsNew := dot(r, r)
		beta := rsNew / rs
		rs = rsNew
		for k := range p {
			p[k] = r[k] + beta*p[k]
		}
	}
	if !(q() < q0) {
		copy(t.S, s0)
	}
}

// groupPass runs the exact group update of section 4 once over every
// (row, group) of the tile, in order, keeping only updates that lower q.
// For row i it needs T[i, :] = (G_A S G_B − R)[i, :], computed fresh (it
// includes every earlier update) and then kept current within the row:
// changing row i by δ in group g adds G_A[i,i] δᵀ G_B[g..g+3, :].
func (t *tile) groupPass(GA, GB []float64) {
	sJ, sK := t.sJ, t.sK
	v := make([]float64, sK)
	tr := make([]float64, sK)
	// Q of every group depends only on G_B: shared by all rows.
	gqs := make([]groupQ, sK/4)
	for g := 0; g < sK; g += 4 {
		var q [16]float64
		for p := 0; p < 4; p++ {
			for r := 0; r < 4; r++ {
				q[p*4+r] = GB[(g+p)*sK+g+r]
			}
		}
		gqs[g/4] = newGroupQ(&q)
	}
	for i := 0; i < sJ; i++ {
		clear(v)
		for k := 0; k < sJ; k++ {
			g := GA[i*sJ+k]
			if g == 0 {
				continue
			}
			srow := t.S[k*sK : (k+1)*sK]
			for c, s := range srow {
				if s != 0 {
					v[c] += g * s
				}
			}
		}
		for c := 0; c < sK; c++ {
			tr[c] = dot(v, GB[c*sK:(c+1)*sK]) - t.R[i*sK+c]
		}
		aa := GA[i*sJ+i]
		for g := 0; g < sK; g += 4 {
			var t4, sOld [4]float64
			for p := 0; p < 4; p++ {
				t4[p] = tr[g+p]
				sOld[p] = t.S[i*sK+g+p]
			}
			sNew, keep, delta := gqs[g/4].Update(t4, aa, sOld)
			if !(delta < 0) {
				continue
			}
			for p := 0; p < 4; p++ {
				d := sNew[p] - sOld[p]
				t.S[i*sK+g+p] = sNew[p]
				t.M[i*sK+g+p] = 0
				if d == 0 {
					continue
				}
				gb := GB[(g+p)*sK : (g+p+1)*sK]
				for c := range tr {
					tr[c] += aa * d * gb[c]
				}
			}
			t.M[i*sK+g+keep[0]], t.M[i*sK+g+keep[1]] = 1, 1
		}
	}
	t.st.add(sJ*sJ*sK/2 + sJ*sK*sK + sJ*sK/4*(40+4*sK))
}
