package kernels

import (
	"fmt"
	"unsafe"
)

// valuesFrom carves n values of dtype dt (f32, or the 16-bit bits of f16
// and bf16) out of memory from alloc.
func valuesFrom(alloc func(bytes int) []byte, dt DType, n int) ([]float32, []uint16) {
	if dt == F32 {
		b := alloc(4 * n)
		return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n), nil
	}
	b := alloc(2 * n)
	return nil, unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// Dense is a row-major Rows × Cols weight matrix. Exactly one of F32 and U16
// holds the values: F32 for DType F32, U16 (raw f16 or bf16 bits) otherwise.
type Dense struct {
	DType      DType
	Rows, Cols int
	F32        []float32
	U16        []uint16
	// panelCols > 0 (set by Panelize only) says that the values are stored
	// as column panels of panelCols columns (the last one may be
	// narrower), one after the other, each row-major over its own columns.
	panelCols int
}

// PanelCols is the panel width of a matrix made by Panelize (0: whole rows).
func (m *Dense) PanelCols() int { return m.panelCols }

// Panelize returns the matrix with wide rows (more than wideCols columns)
// stored as contiguous column panels, in memory from alloc (nil: the Go
// heap); a matrix with shorter rows, or already in panels, comes back as it
// is. Over whole 11008-column rows x (44 KiB) does not stay in L1 and the
// GEMV falls behind the memory at high bandwidth; panel by panel it
// streams like a 4096-column matrix (figures: docs/benchmarks.md, "Kernel
// design choices"). The products (MatVec, MatMul) understand
// panels; F32 and U16 hold them in that order, not row-major.
func (m *Dense) Panelize(alloc func(bytes int) []byte) *Dense {
	pw := panelWidth(m.Cols)
	if pw == 0 || m.panelCols > 0 {
		return m
	}
	if alloc == nil {
		alloc = func(n int) []byte { return make([]byte, n) }
	}
	p := &Dense{DType: m.DType, Rows: m.Rows, Cols: m.Cols, panelCols: pw}
	p.F32, p.U16 = valuesFrom(alloc, m.DType, m.Rows*m.Cols)
	src, dst := m.view(), p.view()
	for q := 0; q < dst.npanels(); q++ {
		pv, c0, w := dst.panel(q)
		for r := 0; r < m.Rows; r++ {
			if m.DType == F32 {
				copy(pv.f32[r*w:(r+1)*w], src.f32[r*m.Cols+c0:])
			} else {
				copy(pv.u16[r*w:(r+1)*w], src.u16[r*m.Cols+c0:])
			}
		}
	}
	return p
}

// Check validates the value slice against the shape.
func (m *Dense) Check() error {
	n := m.Rows * m.Cols
	switch m.DType {
	case F32:
		if len(m.F32) != n {
			return fmt.Errorf("dense %d×%d f32: have %d values", m.Rows, m.Cols, len(m.F32))
		}
	case F16, BF16:
		if len(m.U16) != n {
			return fmt.Errorf("dense %d×%d %v: have %d values", m.Rows, m.Cols, m.DType, len(m.U16))
		}
	default:
		return fmt.Errorf("dense: unsupported dtype %v", m.DType)
	}
	return nil
}

// Bytes is the size of the stored values.
func (m *Dense) Bytes() int64 { return int64(m.Rows) * int64(m.Cols) * int64(m.DType.Size()) }

// MatVec computes y = W·x (len(x) ≥ Cols, len(y) ≥ Rows), in parallel over
// rows. Every y[i], i < Rows, is written.
func (m *Dense) MatVec(y, x []float32) {
	t := newTask(opGemv)
	t.w, t.x, t.y, t.cols = m.view(), x[:m.Cols], y[:m.Rows], m.Cols
	runTask(t, m.Rows, 16)
}

// gemmTMR is the row block of the tokens-in-lanes kernels; row chunks of
// the parallel split are multiples of gemmTAlign so that only the last one
// has a partial block.
const (
	gemmTMR    = 6
	gemmTAlign = 48
)

// useGemmT enables the tokens-in-lanes GEMM (benchmarks compare both).
var useGemmT = true

// MatMul computes Y = X·Wᵀ for n tokens: x is n×Cols, y is n×Rows, both
// row-major. Rows are split across threads; within a thread the product is
// register-blocked over rows and tokens.
func (m *Dense) MatMul(y, x []float32, n int) {
	if n == 1 {
		m.MatVec(y, x)
		return
	}
	if n <= 0 {
		return
	}
	tile := gemmTile(m.DType, n)
	if p := gemmPad(n); p != n && tile == 0 {
		// The register-blocked kernels take tokens 4 (AVX2: 3) at a time
		// and the rest one GEMV each, every one a full pass over the
		// weights: zero tokens up to the block cost less.
		pd := padTokens(x, n, p, m.Cols, m.Rows)
		m.MatMul(pd.y, pd.x, p)
		pd.done(y, n, m.Rows)
		return
	}
	if h := tileHead(n, tile); h < n {
		m.MatMul(y, x, h)
		m.MatMul(y[h*m.Rows:], x[h*m.Cols:], n-h)
		return
	}
	t := newTask(opGemm)
	t.w, t.x, t.y, t.cols, t.n, t.ldx, t.ldy = m.view(), x[:n*m.Cols], y[:n*m.Rows], m.Cols, n, m.Cols, m.Rows
	if tile > 0 {
		// Transpose the tokens once for all threads.
		bp := xtScratch.Get().(*[]float32)
		t.op, t.tile = opGemmXT, tile
		t.xt = growF32(bp, xtLen(m.Cols, n, tile))
		transposeTiles(t.xt, t.x, m.Cols, m.Cols, n, tile)
		runTask(t, m.Rows, gemmTAlign)
		xtScratch.Put(bp)
		return
	}
	runTask(t, m.Rows, 16)
}
