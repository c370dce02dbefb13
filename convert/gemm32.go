package convert

import (
	"sync"

	"github.com/armor-llm/armor/kernels"
)

// The converter keeps its parameters and statistics in float64, but its
// dominant products (block-diagonal factor × dense panel, Gram matrices of
// panels, the tile products of the S update) run in float32 on the runtime's
// SIMD GEMM (kernels.MatMulF32), many times the scalar float64 loops at
// b = 128 (figures in docs/benchmarks.md).
// Float32 products are accurate to about 1e-7·√k relative, far below what the
// proxy loss resolves; what conditioning needs stays float64 (the b×b
// Cholesky solves, the loss sums, the calibration statistics), and every
// update is still accepted only if it lowers the loss. See
// docs/armor-algorithm.md ("Arithmetic").
//
// Blocks smaller than fastMinBlock keep the float64 loops: there the SIMD
// kernels cannot fill their lanes, and the small-block results (the
// stories260K quality table) stay bit-for-bit what they were.
const fastMinBlock = 32

// fast reports whether this layer's products take the f32 path.
func (st *state) fast() bool { return !st.exact && st.b >= fastMinBlock }

// view is a strided float64 matrix: element (i, j) is d[off + i*ld + j], or
// d[off + j*ld + i] when t (a transposed view of the same storage). With a
// mask, elements whose mask byte (same index) is 0 read as zero.
type view struct {
	d    []float64
	off  int
	ld   int
	t    bool
	mask []uint8
}

// load32 writes the rows×cols matrix v compactly into dst (row-major, f32).
func load32(dst []float32, v view, rows, cols int) {
	if !v.t {
		for i := 0; i < rows; i++ {
			o := v.off + i*v.ld
			src := v.d[o : o+cols]
			out := dst[i*cols : (i+1)*cols]
			if v.mask != nil {
				mk := v.mask[o : o+cols]
				for j, x := range src {
					out[j] = float32(x) * float32(mk[j])
				}
				continue
			}
			for j, x := range src {
				out[j] = float32(x)
			}
		}
		return
	}
	// Transposed: convert the source rows (contiguous) into tmp, then
	// transpose with the SIMD kernel (a strided scatter here was a sixth of
	// a sweep).
	tmp := tmpPool.Get().(*[]float32)
	t := grow32(*tmp, rows*cols)
	for j := 0; j < cols; j++ {
		o := v.off + j*v.ld
		src := v.d[o : o+rows]
		out := t[j*rows : (j+1)*rows]
		if v.mask != nil {
			mk := v.mask[o : o+rows]
			for i, x := range src {
				out[i] = float32(x) * float32(mk[i])
			}
			continue
		}
		for i, x := range src {
			out[i] = float32(x)
		}
	}
	kernels.Transpose(dst, cols, t, rows, cols, rows)
	*tmp = t
	tmpPool.Put(tmp)
}

var tmpPool = sync.Pool{New: func() any { return new([]float32) }}

// scratch32 holds one goroutine's f32 operands for mulNT.
type scratch32 struct{ x, w, y []float32 }

var scratchPool = sync.Pool{New: func() any { return new(scratch32) }}

func grow32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// mulNT computes out(t, r) = Σ_c x(t, c)·w(r, c) for t < n, r < rows,
// c < cols (out = X·Wᵀ), adding to out instead when acc is set, in float32
// arithmetic on the calling goroutine. out must not be transposed.
func mulNT(out view, x view, w view, n, rows, cols int, acc bool) {
	if n <= 0 || rows <= 0 {
		return
	}
	sc := scratchPool.Get().(*scratch32)
	sc.x = grow32(sc.x, n*cols)
	sc.w = grow32(sc.w, rows*cols)
	sc.y = grow32(sc.y, n*rows)
	load32(sc.x, x, n, cols)
	load32(sc.w, w, rows, cols)
	kernels.MatMulF32(sc.y, rows, sc.w, cols, rows, cols, sc.x, cols, n)
	for t := 0; t < n; t++ {
		o := out.d[out.off+t*out.ld : out.off+t*out.ld+rows]
		y := sc.y[t*rows : (t+1)*rows]
		if acc {
			for r, v := range y {
				o[r] += float64(v)
			}
		} else {
			for r, v := range y {
				o[r] = float64(v)
			}
		}
	}
	scratchPool.Put(sc)
}

// mulNTRows is mulNT split over row ranges of X (chunks of at most chunk
// rows), so that one product of a tall panel fits the caches and can be
// spread over goroutines by the caller.
func mulNTRows(out view, x view, w view, n, rows, cols, chunk int, acc bool) {
	for t0 := 0; t0 < n; t0 += chunk {
		nt := min(chunk, n-t0)
		o := out
		o.off += t0 * out.ld
		xx := x
		if x.t {
			xx.off += t0
		} else {
			xx.off += t0 * x.ld
		}
		mulNT(o, xx, w, nt, rows, cols, acc)
	}
}
