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

// MatVec computes y = W·x (len(x) = Cols, len(y) = Rows), in parallel over rows.
func (m *Dense) MatVec(y, x []float32) {
	ParallelFor(m.Rows, 16, func(lo, hi int) { m.matVecRows(y, x, lo, hi) })
}

// MatMul computes Y = X·Wᵀ for n tokens: x is n×Cols, y is n×Rows.
func (m *Dense) MatMul(y, x []float32, n int) {
	if n == 1 {
		m.MatVec(y, x)
		return
	}
	ParallelFor(m.Rows, 16, func(lo, hi int) {
		for t := 0; t < n; t++ {
			m.matVecRows(y[t*m.Rows:(t+1)*m.Rows], x[t*m.Cols:(t+1)*m.Cols], lo, hi)
		}
	})
}

func (m *Dense) matVecRows(y, x []float32, lo, hi int) {
	c := m.Cols
	switch m.DType {
	case F32:
		for i := lo; i < hi; i++ {
			y[i] = Dot(m.F32[i*c:(i+1)*c], x)
		}
	case F16:
		for i := lo; i < hi; i++ {
			row := m.U16[i*c : (i+1)*c]
			var s float32
			for j, h := range row {
				s += F16ToF32(h) * x[j]
			}
			y[i] = s
		}
	case BF16:
		for i := lo; i < hi; i++ {
			row := m.U16[i*c : (i+1)*c]
			var s float32
			for j, h := range row {
				s += BF16ToF32(h) * x[j]
			}
			y[i] = s
		}
	}
}
