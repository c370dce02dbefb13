package convert

import "math"

// lbfgs runs quasi-Newton steps jointly on all continuous parameters (the A
// blocks, the B blocks and the kept values of X) with the mask fixed. The
// alternating exact updates of ArmorFast move one factor at a time, and on a
// trilinear model A·S·B that crawls along narrow curved valleys; a joint
// L-BFGS step follows them. Every accepted step satisfies the Armijo
// condition, so the loss only goes down.
type lbfgs struct {
	mem  int
	s, y [][]float64
	rho  []float64
}

// pack copies the parameters into one vector [A blocks, B blocks, X].
func (st *state) pack(v []float64) []float64 {
	v = v[:0]
	for _, a := range st.A {
		v = append(v, a...)
	}
	for _, b := range st.B {
		v = append(v, b...)
	}
	if st.s32 != nil {
		// S lives in s32 on the f32 path (X is stale there).
		for _, x := range st.s32 {
			v = append(v, float64(x))
		}
		return v
	}
	return append(v, st.X...)
}

func (st *state) unpack(v []float64) {
	o := 0
	for _, a := range st.A {
		o += copy(a, v[o:])
	}
	for _, b := range st.B {
		o += copy(b, v[o:])
	}
	copy(st.X, v[o:])
	st.syncS32()
}

// lossGrad evaluates the loss and its gradient (packed like pack) at the
// current parameters, leaving P and Ŵ current. G, Q, T, GX, gA and gB are
// scratch for state.gradients; g is reused for the result.
func lossGrad[E elem](st *state, P, What, G, Q, T, GX []E, gA, gB [][]float64, g []float64) (float64, []float64) {
	fwdP(st, P)
	fwdW(st, P, What)
	l := lossE(st, What)
	lossGradE(st, What, G)
	gradE(st, P, G, Q, T, GX, gA, gB)
	g = g[:0]
	for _, a := range gA {
		g = append(g, a...)
	}
	for _, b := range gB {
		g = append(g, b...)
	}
	for _, v := range GX {
		g = append(g, float64(v))
	}
	return l, g
}

// run does up to k L-BFGS iterations from the current parameters and returns
// the new loss; P and Ŵ are left current. Its n×m matrices are of the
// sweeps' element type: float32 on the f32 path, whose products then read
// them in place.
func (lb *lbfgs) run(st *state, k int, P, What []float64) float64 {
	return lbfgsRun(lb, st, k, P, What)
}

func lbfgsRun[E elem](lb *lbfgs, st *state, k int, P, What []E) float64 {
	n, m := st.n, st.m
	G, Q, T, GX := make([]E, n*m), make([]E, n*m), make([]E, n*m), make([]E, n*m)
	gA, gB := zerosLike(st.A), zerosLike(st.B)
	x := st.pack(nil)
	N := len(x)
	f, g := lossGrad(st, P, What, G, Q, T, GX, gA, gB, nil)
	d := make([]float64, N)
	xn := make([]float64, N)
	var gn []float64
	alpha := make([]float64, lb.mem)
	for it := 0; it < k; it++ {
		// Two-loop recursion: d = −H g.
		for i := range d {
			d[i] = -g[i]
		}
		for j := len(lb.s) - 1; j >= 0; j-- {
			alpha[j] = lb.rho[j] * dot(lb.s[j], d)
			axpy(-alpha[j], lb.y[j], d)
		}
		t0 := 1.0
		if j := len(lb.s) - 1; j >= 0 {
			scale(dot(lb.s[j], lb.y[j])/dot(lb.y[j], lb.y[j]), d)
		} else {
			// No curvature yet: a small steepest-descent step.
			t0 = 1e-3 * math.Sqrt(dot(x, x)/math.Max(dot(g, g), 1e-300))
		}
		for j := range lb.s {
			b := lb.rho[j] * dot(lb.y[j], d)
			axpy(alpha[j]-b, lb.s[j], d)
		}
		st.add(N * (4*len(lb.s) + 4))
		st.vecOps.Add(int64(N * (4*len(lb.s) + 4)))
		gd := dot(g, d)
		if !(gd < 0) {
			lb.s, lb.y, lb.rho = nil, nil, nil
			continue
		}
		// Backtracking line search with the Armijo condition.
		ok := false
		var fn float64
		for t := t0; t > 1e-12*t0; t *= 0.5 {
			for i := range xn {
				xn[i] = x[i] + t*d[i]
			}
			st.unpack(xn)
			fwdP(st, P)
			fwdW(st, P, What)
			fn = lossE(st, What)
			if fn <= f+1e-4*t*gd {
				ok = true
				break
			}
		}
		if !ok {
			st.unpack(x)
			fwdP(st, P)
			fwdW(st, P, What)
			lb.s, lb.y, lb.rho = nil, nil, nil
			return f
		}
		_, gn = lossGrad(st, P, What, G, Q, T, GX, gA, gB, gn)
		s := make([]float64, N)
		y := make([]float64, N)
		for i := range s {
			s[i] = xn[i] - x[i]
			y[i] = gn[i] - g[i]
		}
		if sy := dot(s, y); sy > 1e-12*math.Sqrt(dot(s, s)*dot(y, y)) {
			if len(lb.s) == lb.mem {
				lb.s, lb.y, lb.rho = lb.s[1:], lb.y[1:], lb.rho[1:]
			}
			lb.s, lb.y, lb.rho = append(lb.s, s), append(lb.y, y), append(lb.rho, 1/sy)
		}
		x, xn = xn, x
		g, gn = gn, g
		f = fn
	}
	return f
}

func axpy(a float64, x, y []float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

func scale(a float64, x []float64) {
	for i := range x {
		x[i] *= a
	}
}
