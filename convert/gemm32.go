package convert

import (
	"sync"
	"time"

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

// elem is the element type of the working matrices: the f32 path keeps its
// n×m buffers (P, Ŵ and the update scratch) in float32, half the memory and
// no conversion before each product; the float64 path and the L-BFGS steps
// keep float64.
type elem interface{ float32 | float64 }

// view is a strided matrix: element (i, j) is d[off + i*ld + j], or
// d[off + j*ld + i] when t (a transposed view of the same storage). With a
// mask, elements whose mask byte (same index) is 0 read as zero.
type view[E elem] struct {
	d    []E
	off  int
	ld   int
	t    bool
	mask []uint8
}

// direct returns v's storage and stride when a product can read it as it
// is: float32, not transposed, not masked.
func direct[E elem](v view[E]) ([]float32, int, bool) {
	if v.t || v.mask != nil {
		return nil, 0, false
	}
	d, ok := any(v.d).([]float32)
	if !ok {
		return nil, 0, false
	}
	return d[v.off:], v.ld, true
}

// load32 writes the rows×cols matrix v compactly into dst (row-major, f32).
func load32[E elem](dst []float32, v view[E], rows, cols int) {
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
// arithmetic on the calling goroutine. out must not be transposed. f32
// operands that need no conversion are read in place. (Products with f32
// results go to the NN/TN kernels instead: see fastprod.go.)
func mulNT[O, X, W elem](st *state, out view[O], x view[X], w view[W], n, rows, cols int, acc bool) {
	if n <= 0 || rows <= 0 {
		return
	}
	sc := scratchPool.Get().(*scratch32)
	xs, ldx, ok := direct(x)
	if !ok {
		sc.x = grow32(sc.x, n*cols)
		load32(sc.x, x, n, cols)
		xs, ldx = sc.x, cols
	}
	ws, ldw, ok := direct(w)
	if !ok {
		sc.w = grow32(sc.w, rows*cols)
		load32(sc.w, w, rows, cols)
		ws, ldw = sc.w, cols
	}
	sc.y = grow32(sc.y, n*rows)
	t0 := time.Now()
	kernels.MatMulF32(sc.y, rows, ws, ldw, rows, cols, xs, ldx, n)
	st.product(t0, n, rows, cols)
	for t := 0; t < n; t++ {
		o := out.d[out.off+t*out.ld : out.off+t*out.ld+rows]
		y := sc.y[t*rows : (t+1)*rows]
		if acc {
			for r, v := range y {
				o[r] += O(v)
			}
		} else {
			for r, v := range y {
				o[r] = O(v)
			}
		}
	}
	scratchPool.Put(sc)
}
