package convert

import "math"

// pairs are the 6 supports of size 2 in a group of 4.
var pairs = [6][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}

// groupUpdate is the exact minimization of the loss over one (row i, group g)
// of S with everything else fixed (section 4, discrete step, items 3-4).
//
// Writing the tile's scaled residual as E, a = A_J[:, i] and
// B̃ = B_K[g..g+3, :] ⊙ √h, the loss as a function of the group's 4 values s is
//
//	const + 2 sᵀ f + ‖a‖² sᵀ Q s,   f = t − ‖a‖² Q s_old,  Q = B̃ B̃ᵀ,
//
// where t = B̃ Eᵀ a is computed at the current values s_old (the residual with
// the group removed, projected). For each of the 6 supports P the minimizer is
// s_P = −Q_P⁻¹ f_P / ‖a‖² with value −f_Pᵀ Q_P⁻¹ f_P / ‖a‖²; the best support
// wins. The regularizers 1e-9·I and 1e-8 are the reference's.
//
// It returns the new values (zero off the support), the support and the exact
// change of the unnormalized loss, 2 δᵀ t + ‖a‖² δᵀ Q δ with δ = s_new − s_old:
// the prediction that the tests check against the real loss.
func groupUpdate(t [4]float64, aa float64, q *[16]float64, sOld [4]float64) (sNew [4]float64, keep [2]int, delta float64) {
	gq := newGroupQ(q)
	return gq.update(t, aa, sOld)
}

// groupQ holds what groupUpdate needs of one group's Q, computed once: Q
// depends only on B and h, so a tile's group pass shares it across all the
// tile's rows. For each support P, its 2×2 Q_P (with the 1e-9 ridge) and
// the inverse of its determinant (0 when the determinant is not a positive
// finite number, which makes that support's cost 0 and its values 0).
type groupQ struct {
	q  [16]float64
	pq [6][4]float64 // q00, q01, q11, 1/det
}

func newGroupQ(q *[16]float64) groupQ {
	gq := groupQ{q: *q}
	for k, pr := range pairs {
		a, b := pr[0], pr[1]
		q00, q01, q11 := q[a*4+a]+1e-9, q[a*4+b], q[b*4+b]+1e-9
		det := q00*q11 - q01*q01
		inv := 0.0
		if det > 0 && !math.IsInf(det, 0) {
			inv = 1 / det
		}
		gq.pq[k] = [4]float64{q00, q01, q11, inv}
	}
	return gq
}

// update is groupUpdate with Q's per-support factors precomputed. The
// supports are compared by their costs −f_Pᵀ Q_P⁻¹ f_P, computed with the
// inverse determinant (no division), and the winner's values are solved
// for with it too.
//
// It is written out without loops, and the cheapest support is found
// without branches (supportKey): the 6 comparisons of every group update
// fall either way at random, and their mispredictions made this function
// the largest single cost of an armor-fast sweep.
func (gq *groupQ) update(t [4]float64, aa float64, sOld [4]float64) (sNew [4]float64, keep [2]int, delta float64) {
	q := &gq.q
	ia := -1 / (aa + 1e-8)
	s0, s1, s2, s3 := sOld[0], sOld[1], sOld[2], sOld[3]
	f := [4]float64{
		t[0] - aa*(q[0]*s0+q[1]*s1+q[2]*s2+q[3]*s3),
		t[1] - aa*(q[4]*s0+q[5]*s1+q[6]*s2+q[7]*s3),
		t[2] - aa*(q[8]*s0+q[9]*s1+q[10]*s2+q[11]*s3),
		t[3] - aa*(q[12]*s0+q[13]*s1+q[14]*s2+q[15]*s3),
	}
	pq := &gq.pq
	k := min(
		supportKey(0, &pq[0], f[0], f[1]),
		supportKey(1, &pq[1], f[0], f[2]),
		supportKey(2, &pq[2], f[0], f[3]),
		supportKey(3, &pq[3], f[1], f[2]),
		supportKey(4, &pq[4], f[1], f[3]),
		supportKey(5, &pq[5], f[2], f[3]),
	) & 7
	keep = pairs[k%6] // k < 6; %6 spares the bounds checks
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
