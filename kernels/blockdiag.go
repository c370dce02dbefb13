package kernels

import "fmt"

// BlockDiag is an N × N block-diagonal matrix blockdiag(B_1..B_m) with
// blocks of B × B, except the last, which is r × r with r = N − (m−1)·B
// (a ragged last block when B does not divide N). The blocks are stored one
// after the other, each row-major, in F32 (dtype F32) or U16 (f16/bf16
// bits): block k starts at element k·B·B.
type BlockDiag struct {
	DType DType
	N, B  int
	F32   []float32
	U16   []uint16
}

// BlockDiagLen is the number of stored values of an n × n block-diagonal
// matrix with block size b.
func BlockDiagLen(n, b int) int {
	if n <= 0 || b <= 0 {
		return 0
	}
	m := (n + b - 1) / b
	r := n - (m-1)*b
	return (m-1)*b*b + r*r
}

// Blocks is the number of diagonal blocks.
func (d *BlockDiag) Blocks() int { return (d.N + d.B - 1) / d.B }

// Bytes is the size of the stored values.
func (d *BlockDiag) Bytes() int64 { return int64(BlockDiagLen(d.N, d.B)) * int64(d.DType.Size()) }

// Check validates the shape and the value slice.
func (d *BlockDiag) Check() error {
	if d.N <= 0 || d.B <= 0 {
		return fmt.Errorf("blockdiag: bad shape n=%d, block=%d", d.N, d.B)
	}
	n := BlockDiagLen(d.N, d.B)
	switch d.DType {
	case F32:
		if len(d.F32) != n {
			return fmt.Errorf("blockdiag n=%d block=%d f32: have %d values, want %d", d.N, d.B, len(d.F32), n)
		}
	case F16, BF16:
		if len(d.U16) != n {
			return fmt.Errorf("blockdiag n=%d block=%d %v: have %d values, want %d", d.N, d.B, d.DType, len(d.U16), n)
		}
	default:
		return fmt.Errorf("blockdiag: unsupported dtype %v", d.DType)
	}
	return nil
}

// block returns the first row and the size of block k and a view of it.
func (d *BlockDiag) block(k int) (r0, s int, w wview) {
	r0 = k * d.B
	s = min(d.B, d.N-r0)
	off := k * d.B * d.B
	w = wview{dt: d.DType, ld: s}
	if d.DType == F32 {
		w.f32 = d.F32[off : off+s*s]
	} else {
		w.u16 = d.U16[off : off+s*s]
	}
	return
}

// At returns element (i, j) of the full matrix (zero off the blocks).
func (d *BlockDiag) At(i, j int) float32 {
	k := i / d.B
	if j/d.B != k {
		return 0
	}
	r0, _, w := d.block(k)
	return w.at(i-r0, j-r0)
}

// rows computes rows [lo, hi) of y = D·x for n tokens (x, y: n × N).
func (d *BlockDiag) rows(y, x []float32, n, lo, hi int) {
	for i := lo; i < hi; {
		r0, s, w := d.block(i / d.B)
		end := min(hi, r0+s)
		if n == 1 {
			gemv(y[i:], w.sub(i-r0), end-i, s, x[r0:])
		} else {
			gemm(y[i:], d.N, w.sub(i-r0), end-i, s, x[r0:], d.N, n)
		}
		i = end
	}
}

// MatVec computes y = D·x (len N each; y must not overlap x).
func (d *BlockDiag) MatVec(y, x []float32) {
	t := newTask(opBlockDiag)
	t.bd, t.x, t.y, t.n = d, x[:d.N], y[:d.N], 1
	runTask(t, d.N, 16)
}

// MatMul computes Y = X·Dᵀ for n tokens (x, y: n × N, row-major; no overlap).
func (d *BlockDiag) MatMul(y, x []float32, n int) {
	if n <= 0 {
		return
	}
	t := newTask(opBlockDiag)
	t.bd, t.x, t.y, t.n = d, x[:n*d.N], y[:n*d.N], n
	runTask(t, d.N, 16)
}
