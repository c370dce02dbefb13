package convert

import (
	"fmt"
	"math"

	"github.com/armor-llm/armor/kernels"
)

// fullLoss is the relative output error under the full input Hessian,
// written in the normalized space of the factorization: with
// ΔW = diag(r)·(Ŵ − W̄)·diag(c),
//
//	L = tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) = Σ_i r_i² e_i Hc e_iᵀ / z,
//	Hc = diag(c) H diag(c), e_i = row i of Ŵ − W̄.
//
// Unlike the diagonal proxy of section 2 (which weighs every normalized
// entry by h_j alone), this is the quantity SparseGPT minimizes.
type fullLoss struct {
	hc   []float64 // m×m
	rw   []float64 // r_i²
	z    float64
	eh   []float64 // scratch: E·Hc (float64 path)
	hc32 []float32 // Hc in f32 for the f32 path, made on first use
}

func newFullLoss(wbar, r, c, H []float64, n, m int) (*fullLoss, error) {
	if len(H) != m*m {
		return nil, fmt.Errorf("convert: Hessian has %d values, want %d×%d", len(H), m, m)
	}
	// 1 % dampening of the mean diagonal, as SparseGPT: the calibration
	// Hessian is often near-singular, and the solution must not fit
	// directions the calibration text never excited.
	mean := 0.0
	for j := 0; j < m; j++ {
		v := H[j*m+j]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("convert: Hessian diagonal entry %d is %v", j, v)
		}
		mean += v
	}
	mean /= float64(m)
	if !(mean > 0) {
		return nil, ErrNoValidStats
	}
	fl := &fullLoss{hc: make([]float64, m*m), rw: make([]float64, n)}
	for j := 0; j < m; j++ {
		for k := 0; k < m; k++ {
			v := H[j*m+k]
			if j == k {
				v += 0.01 * mean
			}
			fl.hc[j*m+k] = c[j] * v * c[k]
		}
	}
	for i := range fl.rw {
		fl.rw[i] = r[i] * r[i]
	}
	fl.z = 1
	fl.z = fl.raw(wbar, n, m)
	if !(fl.z > 0) {
		fl.z = 1
	}
	return fl, nil
}

// raw is Σ_i rw_i e_i Hc e_iᵀ / z for rows e.
func (fl *fullLoss) raw(e []float64, n, m int) float64 {
	sum := 0.0
	for i := 0; i < n; i++ {
		row := e[i*m : (i+1)*m]
		t := 0.0
		for j, v := range row {
			if v != 0 {
				t += v * dot(fl.hc[j*m:(j+1)*m], row)
			}
		}
		sum += fl.rw[i] * t
	}
	return sum / fl.z
}

// loss evaluates L at Ŵ and, if G is not nil, sets G = dL/dŴ =
// 2 diag(rw) E Hc / z.
func (fl *fullLoss) loss(st *state, What, G []float64) float64 {
	n, m := st.n, st.m
	if st.fast() {
		return fl.loss32(st, What, G)
	}
	if fl.eh == nil {
		fl.eh = make([]float64, n*m)
	}
	parallelFor(st.threads, n, func(i int) {
		out := fl.eh[i*m : (i+1)*m]
		clear(out)
		for j := 0; j < m; j++ {
			e := What[i*m+j] - st.wbar[i*m+j]
			if e == 0 {
				continue
			}
			for k, h := range fl.hc[j*m : (j+1)*m] {
				out[k] += e * h
			}
		}
	})
	st.add(n * m * m)
	sum := 0.0
	for i := 0; i < n; i++ {
		t := 0.0
		for j := 0; j < m; j++ {
			t += (What[i*m+j] - st.wbar[i*m+j]) * fl.eh[i*m+j]
		}
		sum += fl.rw[i] * t
		if G != nil {
			for j := 0; j < m; j++ {
				G[i*m+j] = 2 * fl.rw[i] * fl.eh[i*m+j] / fl.z
			}
		}
	}
	return sum / fl.z
}

// fullRows is how many rows of E one product of loss32 takes.
const fullRows = 64

// loss32 is loss on the f32 path: E·Hc, the n×m×m multiply-adds that make up
// nearly all of it (185 G for a 7B MLP layer), runs as f32 NN products over
// chunks of rows, spread over the threads; the sums of the loss are float64,
// per chunk, added in order (the result does not depend on the threads).
func (fl *fullLoss) loss32(st *state, What, G []float64) float64 {
	n, m := st.n, st.m
	if fl.hc32 == nil {
		fl.hc32 = make([]float32, m*m)
		for k, v := range fl.hc {
			fl.hc32[k] = float32(v)
		}
	}
	part := make([]float64, (n+fullRows-1)/fullRows)
	parallelFor(st.threads, len(part), func(c int) {
		r0 := c * fullRows
		rows := min(fullRows, n-r0)
		bp := fullPanelPool.Get().(*[]float32)
		buf := grow32(*bp, 2*rows*m)
		e32, eh32 := buf[:rows*m], buf[rows*m:]
		for k := range e32 {
			e32[k] = float32(What[r0*m+k] - st.wbar[r0*m+k])
		}
		kernels.MatMulNNF32(eh32, m, e32, m, rows, m, fl.hc32, m, m, false)
		sum := 0.0
		for i := 0; i < rows; i++ {
			t := 0.0
			o := (r0 + i) * m
			for j := 0; j < m; j++ {
				t += (What[o+j] - st.wbar[o+j]) * float64(eh32[i*m+j])
			}
			sum += fl.rw[r0+i] * t
			if G != nil {
				for j := 0; j < m; j++ {
					G[o+j] = 2 * fl.rw[r0+i] * float64(eh32[i*m+j]) / fl.z
				}
			}
		}
		part[c] = sum
		*bp = buf
		fullPanelPool.Put(bp)
	})
	st.add(n * m * m)
	sum := 0.0
	for _, v := range part {
		sum += v
	}
	return sum / fl.z
}

// FullHLoss is the relative output error tr(ΔW H ΔWᵀ)/tr(W H Wᵀ) of an
// approximation of W (both in the original space) under the full input
// Hessian H = XXᵀ/N with SparseGPT's 1 % dampening; it is what RefineFullH
// minimizes.
func FullHLoss(w Matrix, H []float64, approx []float64) (float64, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	if len(approx) != len(w.Data) {
		return 0, fmt.Errorf("convert: approximation has %d values, weight is %d×%d", len(approx), w.Rows, w.Cols)
	}
	wbar, r, c := normalize(w)
	fl, err := newFullLoss(wbar, r, c, H, w.Rows, w.Cols)
	if err != nil {
		return 0, err
	}
	e := make([]float64, len(wbar))
	for i := 0; i < w.Rows; i++ {
		for j := 0; j < w.Cols; j++ {
			e[i*w.Cols+j] = approx[i*w.Cols+j]/(r[i]*c[j]) - wbar[i*w.Cols+j]
		}
	}
	return fl.raw(e, w.Rows, w.Cols), nil
}

// RefineFullH continues an ARMOR factorization of w (from Armor or
// ArmorFast, which choose the mask under the diagonal proxy) by minimizing
// the full-Hessian output error (FullHLoss) over A, B and the kept values of
// S, with the mask fixed: opt.Iters rounds (default 20) of 10 joint L-BFGS
// steps, every accepted step lowering that loss. It returns a new
// factorization whose BestLoss and InitLoss are full-Hessian losses.
func RefineFullH(f *Factorization, w Matrix, H []float64, opt Options) (*Factorization, error) {
	if err := w.check24(); err != nil {
		return nil, err
	}
	if f.Rows != w.Rows || f.Cols != w.Cols {
		return nil, fmt.Errorf("convert: factorization is %d×%d, weight %d×%d", f.Rows, f.Cols, w.Rows, w.Cols)
	}
	h := make([]float64, w.Cols)
	for j := range h {
		h[j] = 1
	}
	g := *f
	g.A, g.B = cloneBlocks(f.A), cloneBlocks(f.B)
	g.X, g.Mask = append([]float64(nil), f.X...), append([]uint8(nil), f.Mask...)
	g.History = nil
	st, err := g.stateOf(h)
	if err != nil {
		return nil, err
	}
	// The working parameters must not alias g's, which hold the best iterate.
	st.A, st.B = cloneBlocks(g.A), cloneBlocks(g.B)
	st.X, st.M = append([]float64(nil), g.X...), append([]uint8(nil), g.Mask...)
	st.threads = defaultThreads(opt.Threads)
	// Large blocks take the f32 products, the full loss's E·Hc included
	// (stateOf's state is exact, for Loss).
	st.exact = opt.Exact
	if st.full, err = newFullLoss(st.wbar, f.R, f.C, H, st.n, st.m); err != nil {
		return nil, err
	}
	rounds := opt.Iters
	if rounds <= 0 {
		rounds = 20
	}
	n, m := st.n, st.m
	P, What := make([]float64, n*m), make([]float64, n*m)
	st.forwardP(P)
	st.forwardW(P, What)
	loss := st.lossOf(What)
	g.InitLoss, g.BestLoss = loss, loss
	nParams := n*m + st.b*(n+m)
	lb := &lbfgs{mem: max(2, min(10, lbfgsMaxBytes/(16*nParams)))}
	ref, stale := loss, 0
	for it := 1; it <= rounds; it++ {
		if opt.Ctx != nil {
			if err := opt.Ctx.Err(); err != nil {
				return nil, err
			}
		}
		loss = lb.run(st, 10, P, What)
		g.Iters = it
		if loss < g.BestLoss {
			g.BestLoss = loss
			st.snapshot(&g)
		}
		g.History = append(g.History, Point{it, st.ops.Load(), g.BestLoss})
		if opt.Progress != nil {
			opt.Progress(it, g.BestLoss)
		}
		if improved(ref, loss, opt) {
			ref, stale = loss, 0
		} else if stale++; stale >= 3 {
			break
		}
	}
	if g.BestLoss == g.InitLoss {
		st.snapshot(&g) // unchanged parameters, masked X
	}
	g.MulAdds = st.ops.Load()
	return &g, nil
}
