package kernels

import "math"

// The exact 2:4 group update of ARMOR's sparse core (convert's group pass,
// docs/armor-algorithm.md section 4): for one (row, group of 4 columns) of
// S, with everything else fixed, the loss is
//
//	const + 2 sᵀ f + ‖a‖² sᵀ Q s,   f = t − ‖a‖² Q s_old,
//
// over the group's 4 values s. Every support P of 2 of the 4 has the
// minimizer s_P = −Q_P⁻¹ f_P / ‖a‖² with cost −f_Pᵀ Q_P⁻¹ f_P; the cheapest
// wins. The regularizers 1e-9·I and 1e-8 are the reference's.

// Group24Pairs are the 6 supports of size 2 in a group of 4, in the order
// their index k takes.
var Group24Pairs = [6][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}

// Group24 holds what the update needs of one group's 4×4 Q, computed once:
// Q depends only on B and h, so a tile's group pass shares it across its
// rows. For each support k, its 2×2 Q_P (with the 1e-9 ridge) and the
// inverse of its determinant (0 when the determinant is not a positive
// finite number, which makes that support's cost 0 and its values 0). QT
// and PT hold Q and P transposed, for the vector kernel.
type Group24 struct {
	Q  [16]float64   // Q[p·4+r]
	P  [6][4]float64 // per support: q00, q01, q11, 1/det
	QT [16]float64   // QT[r·4+p] = Q[p·4+r]
	PT [4][8]float64 // PT[c][k] = P[k][c]; lanes 6 and 7 are 0
}

// NewGroup24 precomputes a group's Q (row-major 4×4).
func NewGroup24(q *[16]float64) Group24 {
	g := Group24{Q: *q}
	for k, pr := range Group24Pairs {
		a, b := pr[0], pr[1]
		q00, q01, q11 := q[a*4+a]+1e-9, q[a*4+b], q[b*4+b]+1e-9
		det := q00*q11 - q01*q01
		inv := 0.0
		if det > 0 && !math.IsInf(det, 0) {
			inv = 1 / det
		}
		g.P[k] = [4]float64{q00, q01, q11, inv}
		for c, v := range g.P[k] {
			g.PT[c][k] = v
		}
	}
	for p := 0; p < 4; p++ {
		for r := 0; r < 4; r++ {
			g.QT[r*4+p] = q[p*4+r]
		}
	}
	return g
}

// Update is the exact update of one group: given t, ‖a‖² (aa) and the
// current values, it returns the new values (zero off the support), the
// support and the exact change of the loss, 2 δᵀ t + ‖a‖² δᵀ Q δ with
// δ = s_new − s_old. The supports are compared by their costs computed with
// the inverse determinant (no division), and the winner's values are solved
// for with it too.
//
// It is written out without loops, and the cheapest support is found
// without branches (supportKey): the 6 comparisons of every group update
// fall either way at random, and their mispredictions made this function
// the largest single cost of an armor-fast sweep. The vector kernel
// (Group24Row) does the same operations in the same order, so its results
// are the same bits.
func (g *Group24) Update(t [4]float64, aa float64, sOld [4]float64) (sNew [4]float64, keep [2]int, delta float64) {
	return g.update(t, aa, -1/(aa+1e-8), sOld)
}

// update is Update with ia = −1/(‖a‖² + 1e-8) given (it is the row's).
func (g *Group24) update(t [4]float64, aa, ia float64, sOld [4]float64) (sNew [4]float64, keep [2]int, delta float64) {
	q := &g.Q
	s0, s1, s2, s3 := sOld[0], sOld[1], sOld[2], sOld[3]
	f := [4]float64{
		t[0] - aa*(q[0]*s0+q[1]*s1+q[2]*s2+q[3]*s3),
		t[1] - aa*(q[4]*s0+q[5]*s1+q[6]*s2+q[7]*s3),
		t[2] - aa*(q[8]*s0+q[9]*s1+q[10]*s2+q[11]*s3),
		t[3] - aa*(q[12]*s0+q[13]*s1+q[14]*s2+q[15]*s3),
	}
	pq := &g.P
	k := min(
		supportKey(0, &pq[0], f[0], f[1]),
		supportKey(1, &pq[1], f[0], f[2]),
		supportKey(2, &pq[2], f[0], f[3]),
		supportKey(3, &pq[3], f[1], f[2]),
		supportKey(4, &pq[4], f[1], f[3]),
		supportKey(5, &pq[5], f[2], f[3]),
	) & 7
	keep = Group24Pairs[k%6] // k < 6; %6 spares the bounds checks
	if c := &pq[k%6]; c[3] != 0 {
		fa, fb := f[keep[0]], f[keep[1]]
		q00, q01, q11, inv := c[0], c[1], c[2], c[3]
		// −Q_P⁻¹ f_P / ‖a‖² for the symmetric 2×2 Q_P, with the
		// reciprocals (ia is known from the start, off the chain of
		// dependent steps that a row's group updates form).
		sNew[keep[0]] = (q11*fa - q01*fb) * inv * ia
		sNew[keep[1]] = (q00*fb - q01*fa) * inv * ia
	}
	d0, d1, d2, d3 := sNew[0]-s0, sNew[1]-s1, sNew[2]-s2, sNew[3]-s3
	qd0 := q[0]*d0 + q[1]*d1 + q[2]*d2 + q[3]*d3
	qd1 := q[4]*d0 + q[5]*d1 + q[6]*d2 + q[7]*d3
	qd2 := q[8]*d0 + q[9]*d1 + q[10]*d2 + q[11]*d3
	qd3 := q[12]*d0 + q[13]*d1 + q[14]*d2 + q[15]*d3
	delta = 2*d0*t[0] + aa*d0*qd0
	delta += 2*d1*t[1] + aa*d1*qd1
	delta += 2*d2*t[2] + aa*d2*qd2
	delta += 2*d3*t[3] + aa*d3*qd3
	return sNew, keep, delta
}

// supportKey is support k's cost −f_Pᵀ Q_P⁻¹ f_P as an int64 that orders
// like the float (the sign-magnitude bits of a negative float flipped into
// two's complement), with its lowest 3 bits replaced by k: the minimum key
// is then the cheapest support, ties and costs within 8 units in the last
// place going to the lowest k, and integer min needs no branch.
func supportKey(k int64, c *[4]float64, fa, fb float64) int64 {
	cost := -(fa*(c[2]*fa-c[1]*fb) + fb*(c[0]*fb-c[1]*fa)) * c[3]
	b := int64(math.Float64bits(cost))
	b ^= int64(uint64(b>>63) >> 1)
	return b&^7 | k
}

// Group24Row runs the group updates of one row of a tile in order: for
// each group of 4 columns of srow (values, float32) with its Q in gs, the
// exact update given T's row tr, taken if it lowers the loss (delta < 0):
// srow and mrow (the 0/1 mask) take the new values and support, and tr
// takes the change, tr += aa·δᵀ G_B[g..g+3, :] (rows of gb, stride ldg),
// before the next group reads it. It reports whether any group changed.
//
// aa is ‖a‖² of the row (G_A's diagonal entry, a float32 value). The AVX-512
// kernel runs rows whose length is a multiple of 16, with the same bits as
// this loop; other lengths and machines run the loop.
func Group24Row(tr, srow []float32, mrow []uint8, gs []Group24, gb []float32, ldg int, aa float64) bool {
	n := len(tr)
	if n == 0 {
		return false
	}
	_, _ = srow[n-1], mrow[n-1]
	_ = gs[n/4-1]
	_ = gb[(n-1)*ldg+n-1]
	ia := -1 / (aa + 1e-8)
	if changed, ok := group24RowArch(tr, srow, mrow, gs, gb, ldg, aa, ia); ok {
		return changed
	}
	return group24RowGo(tr, srow, mrow, gs, gb, ldg, aa, ia)
}

func group24RowGo(tr, srow []float32, mrow []uint8, gs []Group24, gb []float32, ldg int, aa, ia float64) bool {
	aa32 := float32(aa)
	changed := false
	for g := 0; g+4 <= len(tr); g += 4 {
		var t4, sOld [4]float64
		for p := 0; p < 4; p++ {
			t4[p] = float64(tr[g+p])
			sOld[p] = float64(srow[g+p])
		}
		sNew, keep, delta := gs[g/4].update(t4, aa, ia, sOld)
		if !(delta < 0) {
			continue
		}
		var coef [4]float32
		for p := 0; p < 4; p++ {
			nv := float32(sNew[p])
			coef[p] = aa32 * (nv - srow[g+p])
			srow[g+p] = nv
			mrow[g+p] = 0
		}
		mrow[g+keep[0]], mrow[g+keep[1]] = 1, 1
		AxpyRows(tr, coef[:], gb[g*ldg:], ldg) // T[i, :] += a δᵀ G_B[g..g+3, :]
		changed = true
	}
	return changed
}
