package cuda

import (
	"fmt"

	"github.com/armor-llm/armor/kernels"
)

// StoredLayout says how the structured operand A of a cuSPARSELt product is
// declared: the stored matrix (Rows × Cols with leading dimension LD in
// Order) and the operation Op applied to it, so that op(stored) = W, the
// M × K weight (M = d_out, K = d_in) of y = W·x.
//
// cuSPARSELt checks and compresses the 2:4 pattern along K of op(A): every
// row of W must have at most 2 non-zeros in each group of 4 consecutive
// columns, which is exactly kernels.Sparse24's constraint. How those groups
// sit in memory depends on the declaration:
//
//   - OrderRow, OpN: W row-major, LD ≥ K; groups are contiguous.
//   - OrderCol, OpT: the stored K × M column-major matrix is Wᵀ; its memory
//     is W row-major again (element (j, i) at i·LD + j), groups contiguous.
//     This is what DeviceSparse declares, because the other operands
//     (activations n×K token-major = K × n column-major) are column-major.
//   - OrderCol, OpN: W column-major, LD ≥ M; a group is 4 elements LD apart.
//   - OrderRow, OpT: Wᵀ row-major (K × M), same memory as OrderCol/OpN.
type StoredLayout struct {
	Order, Op  int
	Rows, Cols int // of the stored matrix
	LD         int
}

// LayoutFor returns the layout of an M × K weight declared with order and
// op, with the smallest leading dimension that is a multiple of 8 elements
// (16 bytes of f16/bf16, the alignment cuSPARSELt and cuBLAS want).
func LayoutFor(m, k, order, op int) (StoredLayout, error) {
	if m <= 0 || k <= 0 {
		return StoredLayout{}, fmt.Errorf("cuda: bad weight shape %d×%d", m, k)
	}
	if (order != OrderRow && order != OrderCol) || (op != OpN && op != OpT) {
		return StoredLayout{}, fmt.Errorf("cuda: bad order %d or op %d", order, op)
	}
	l := StoredLayout{Order: order, Op: op, Rows: m, Cols: k}
	if op == OpT {
		l.Rows, l.Cols = k, m
	}
	inner := l.Cols // the dimension that is contiguous
	if order == OrderCol {
		inner = l.Rows
	}
	l.LD = (inner + 7) &^ 7
	return l, nil
}

// M and K are the sizes of op(stored).
func (l StoredLayout) M() int {
	if l.Op == OpT {
		return l.Cols
	}
	return l.Rows
}
func (l StoredLayout) K() int {
	if l.Op == OpT {
		return l.Rows
	}
	return l.Cols
}

// Len is the number of elements of the stored buffer.
func (l StoredLayout) Len() int {
	if l.Order == OrderRow {
		return l.Rows * l.LD
	}
	return l.Cols * l.LD
}

// At returns the buffer index of W[i, j] (0 ≤ i < M, 0 ≤ j < K).
func (l StoredLayout) At(i, j int) int {
	r, c := i, j
	if l.Op == OpT {
		r, c = j, i
	}
	if l.Order == OrderRow {
		return r*l.LD + c
	}
	return c*l.LD + r
}

// DensePruned writes the dense pruned matrix W of s (zeros in the pruned
// places, kept values converted to dt, which is F16 or BF16) into a buffer
// laid out as l declares — the input of cusparseLtSpMMACompress. Padding
// elements (LD beyond the matrix) are zero.
func DensePruned(s *kernels.Sparse24, l StoredLayout, dt kernels.DType) ([]uint16, error) {
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("cuda: DensePruned: %w", err)
	}
	if l.M() != s.Rows || l.K() != s.Cols {
		return nil, fmt.Errorf("cuda: DensePruned: layout is for %d×%d, matrix is %d×%d", l.M(), l.K(), s.Rows, s.Cols)
	}
	if dt != kernels.F16 && dt != kernels.BF16 {
		return nil, fmt.Errorf("cuda: DensePruned: device dtype %v (want f16 or bf16)", dt)
	}
	out := make([]uint16, l.Len())
	half, ldi := s.Cols/2, kernels.IdxStride(s.Cols)
	for i := 0; i < s.Rows; i++ {
		for k := 0; k < half; k++ {
			p := int(s.Idx[i*ldi+k/4]>>(2*(k%4))) & 3
			j := 4*(k/2) + p
			var v uint16
			switch {
			case s.DType == dt:
				v = s.U16[i*half+k]
			case s.DType == kernels.F32:
				v = fromF32(s.F32[i*half+k], dt)
			default: // f16 ↔ bf16
				v = fromF32(toF32(s.U16[i*half+k], s.DType), dt)
			}
			out[l.At(i, j)] = v
		}
	}
	return out, nil
}

func toF32(h uint16, dt kernels.DType) float32 {
	if dt == kernels.F16 {
		return kernels.F16ToF32(h)
	}
	return kernels.BF16ToF32(h)
}

func fromF32(f float32, dt kernels.DType) uint16 {
	if dt == kernels.F16 {
		return kernels.F32ToF16(f)
	}
	return kernels.F32ToBF16(f)
}

// PruneCheck is the host version of cusparseLtSpMMAPruneCheck: it checks that
// the f16/bf16 buffer, read as l declares, is 2:4 sparse along K of op(A),
// i.e. that every row i of W has at most 2 non-zeros among columns
// 4g .. 4g+3. K must be a multiple of 4. It names the first offending row and
// group. ±0 both count as zero.
func PruneCheck(buf []uint16, l StoredLayout) error {
	if len(buf) < l.Len() {
		return fmt.Errorf("cuda: PruneCheck: buffer has %d elements, layout needs %d", len(buf), l.Len())
	}
	m, k := l.M(), l.K()
	if k%4 != 0 {
		return fmt.Errorf("cuda: PruneCheck: K = %d is not a multiple of 4", k)
	}
	for i := 0; i < m; i++ {
		for g := 0; g < k/4; g++ {
			nz := 0
			for p := 0; p < 4; p++ {
				if buf[l.At(i, 4*g+p)]&0x7fff != 0 {
					nz++
				}
			}
			if nz > 2 {
				return fmt.Errorf("cuda: not 2:4 along K: row %d of op(A), columns %d..%d hold %d non-zeros", i, 4*g, 4*g+3, nz)
			}
		}
	}
	return nil
}
