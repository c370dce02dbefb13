package convert

import (
	"sync"

	"github.com/armor-llm/armor/kernels"
)

// tile32 is the f32 form of tile (see tile.go) for layers on the fast path:
// the same conjugate-gradient steps and exact group updates, with the b×b
// products on kernels.MatMulF32 and the row products on kernels.DotRows.
// Decisions (keep a CG result, take a group update) are made in float64.
type tile32 struct {
	r0, c0, sJ, sK int
	S, V, R        []float32 // S (zero off the mask), S·G_B (group pass), and this tile of Aᵀ W̄ D Bᵀ
	M              []uint8
	u, r, p        []float32 // CG scratch
	ap, s0         []float32
	tr, tr0        []float32 // group pass: T's current row, and as it was before the row's updates
	gq             []groupQ  // group pass: each group's Q
}

var tile32Pool = sync.Pool{New: func() any { return new(tile32) }}

func (t *tile32) size(sJ, sK int) {
	n := sJ * sK
	t.sJ, t.sK = sJ, sK
	for _, b := range []*[]float32{&t.S, &t.V, &t.R, &t.u, &t.r, &t.p, &t.ap, &t.s0} {
		*b = grow32(*b, n)
	}
	if cap(t.M) < n {
		t.M = make([]uint8, n)
	}
	t.M = t.M[:n]
	t.tr0 = grow32(t.tr0, sK)
	t.tr = grow32(t.tr, sK)
}

// updateTiles32 is updateS's per-tile work on the f32 path: GA and GB are
// the per-block Gram matrices, R = Aᵀ W̄ D Bᵀ.
func updateTiles32[E elem](st *state, GA, GB [][]float64, R []E, cgSteps int, groups bool) {
	to32 := func(src [][]float64) [][]float32 {
		out := make([][]float32, len(src))
		for i, g := range src {
			out[i] = make([]float32, len(g))
			for k, v := range g {
				out[i][k] = float32(v)
			}
		}
		return out
	}
	ga, gb := to32(GA), to32(GB)
	nJ, nK := len(st.rb)-1, len(st.cb)-1
	parallelFor(st.threads, nJ*nK, func(it int) {
		J, K := it/nK, it%nK
		t := tile32Pool.Get().(*tile32)
		loadTile(t, st, J, K, R)
		t.cg(st, ga[J], gb[K], cgSteps)
		if groups {
			t.groupPass(st, ga[J], gb[K])
		}
		t.store(st)
		tile32Pool.Put(t)
	})
}

func loadTile[E elem](t *tile32, st *state, J, K int, R []E) {
	r0, c0 := st.rb[J], st.cb[K]
	t.size(st.rb[J+1]-r0, st.cb[K+1]-c0)
	t.r0, t.c0 = r0, c0
	sJ, sK := t.sJ, t.sK
	for i := 0; i < sJ; i++ {
		k0 := (r0+i)*st.m + c0
		copy(t.M[i*sK:(i+1)*sK], st.M[k0:k0+sK])
		if st.s32 != nil {
			copy(t.S[i*sK:(i+1)*sK], st.s32[k0:k0+sK])
		} else {
			for c := 0; c < sK; c++ {
				t.S[i*sK+c] = float32(st.X[k0+c]) * float32(st.M[k0+c])
			}
		}
		for c := 0; c < sK; c++ {
			t.R[i*sK+c] = float32(R[k0+c])
		}
	}
}

func (t *tile32) store(st *state) {
	for i := 0; i < t.sJ; i++ {
		k0 := (t.r0+i)*st.m + t.c0
		copy(st.M[k0:k0+t.sK], t.M[i*t.sK:(i+1)*t.sK])
		if st.s32 != nil {
			copy(st.s32[k0:k0+t.sK], t.S[i*t.sK:(i+1)*t.sK]) // zero off the mask; X is stale
			continue
		}
		for c := 0; c < t.sK; c++ {
			st.X[k0+c] = float64(t.S[i*t.sK+c])
		}
	}
}

// hop sets out = M ⊙ (G_A p G_B) (p zero off the mask).
func (t *tile32) hop(st *state, GA, GB, p, out []float32) {
	sJ, sK := t.sJ, t.sK
	st.nn(t.u, sK, GA, sJ, sJ, sJ, p, sK, sK, false)   // u = G_A p
	st.nn(out, sK, t.u, sK, sJ, sK, GB, sK, sK, false) // out = u G_B
	// Half the mask is 0 at random: a branch here mispredicts, a product
	// does not.
	for k, mk := range t.M {
		out[k] *= float32(mk)
	}
	st.add(sJ*sJ*sK/2 + sJ*sK*sK/2)
}

// dot64 is Σ a·b accumulated in float64 (for accept/reject decisions).
func dot64(a, b []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
		s2 += float64(a[i+2]) * float64(b[i+2])
		s3 += float64(a[i+3]) * float64(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += float64(a[i]) * float64(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// cg is tile.cg in f32: up to steps CG iterations on the kept values,
// kept only if q = −⟨S, R + r⟩ went down.
func (t *tile32) cg(st *state, GA, GB []float32, steps int) {
	if steps <= 0 {
		return
	}
	S, R, r, p, ap := t.S, t.R, t.r, t.p, t.ap
	t.hop(st, GA, GB, S, ap)
	for k := range r {
		r[k] = (R[k] - ap[k]) * float32(t.M[k])
	}
	q := func() float64 { return -dot64(S, R) - dot64(S, r) }
	q0 := q()
	copy(t.s0, S)
	copy(p, r)
	rs := float64(kernels.Dot(r, r))
	rs0 := rs
	for it := 0; it < steps && rs > 1e-30*rs0 && rs > 0; it++ {
		t.hop(st, GA, GB, p, ap)
		pap := float64(kernels.Dot(p, ap))
		if !(pap > 0) {
			break
		}
		alpha := float32(rs / pap)
		kernels.Axpy(alpha, p, S)
		kernels.Axpy(-alpha, ap, r)
		rsNew := float64(kernels.Dot(r, r))
		beta := float32(rsNew / rs)
		rs = rsNew
		for k := range p {
			p[k] = r[k] + beta*p[k]
		}
	}
	if !(q() < q0) {
		copy(S, t.s0)
	}
}

// groupPass is tile.groupPass in f32 (see there): for each row, the current
// T[i, :] = (G_A S G_B − R)[i, :] as G_A[i, :]·V with V = S·G_B kept
// current, then the exact group updates, each applied to T's row as it is
// taken.
func (t *tile32) groupPass(st *state, GA, GB []float32) {
	sJ, sK := t.sJ, t.sK
	tr, tr0 := t.tr, t.tr0
	// Q of every group depends only on G_B: shared by all rows.
	gqs := t.gq[:0]
	for g := 0; g < sK; g += 4 {
		var q [16]float64
		for p := 0; p < 4; p++ {
			for r := 0; r < 4; r++ {
				q[p*4+r] = float64(GB[(g+p)*sK+g+r])
			}
		}
		gqs = append(gqs, newGroupQ(&q))
	}
	t.gq = gqs
	// V = S·G_B, kept current row by row: row i of G_A S G_B is then one
	// weighted sum of V's rows, G_A[i, :]·V, instead of two row products.
	V := t.V
	st.nn(V, sK, t.S, sK, sJ, sK, GB, sK, sK, false)
	for i := 0; i < sJ; i++ {
		clear(tr)
		kernels.AxpyRows(tr, GA[i*sJ:(i+1)*sJ], V, sK) // (G_A S G_B)[i, :]
		rrow := t.R[i*sK : (i+1)*sK]
		for c := range tr {
			tr[c] -= rrow[c]
		}
		copy(tr0, tr)
		aa := float64(GA[i*sJ+i])
		aa32 := float32(aa)
		srow := t.S[i*sK : (i+1)*sK]
		// The exact group updates in order, each applied to T's row
		// before the next group reads it.
		if !kernels.Group24Row(tr, srow, t.M[i*sK:(i+1)*sK], gqs, GB, sK, aa) {
			continue
		}
		// V[i, :] += δᵀ G_B for the row's whole change, which is what T's
		// row took on divided by ‖a‖²; a zero ‖a‖² recomputes it.
		vrow := V[i*sK : (i+1)*sK]
		if aa32 != 0 {
			inv := 1 / aa32
			for c := range vrow {
				vrow[c] += (tr[c] - tr0[c]) * inv
			}
		} else {
			kernels.DotRows(vrow, GB, sK, srow)
		}
	}
	st.add(sJ*sK*sK + sJ*sJ*sK + sJ*sK/4*(40+4*sK))
}
