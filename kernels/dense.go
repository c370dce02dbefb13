package kernels

import "fmt"

// Dense is a row-major Rows × Cols weight matrix. Exactly one of F32 and U16
// holds the values: F32 for DType F32, U16 (raw f16 or bf16 bits) otherwise.
type Dense struct {
	DType      DType
	Rows, Cols int
	F32        []float32
	U16        []uint16
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
	t := newTask(opGemm)
	t.w, t.x, t.y, t.cols, t.n, t.ldx, t.ldy = m.view(), x[:n*m.Cols], y[:n*m.Rows], m.Cols, n, m.Cols, m.Rows
	if tile := gemmTile(m.DType, n); tile > 0 {
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
