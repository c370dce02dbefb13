package cuda

import "fmt"

// Gemm is one column-major cuBLAS product, batched with strides:
// for b < Batch, C_b = op(A_b)·op(B_b) (alpha 1, beta 0), where X_b starts at
// element OffX + b·StrideX and has leading dimension LDX. The device layer
// issues these with cublasGemmStridedBatchedEx (or cublasGemmEx for
// Batch == 1); RefGemm runs the same description on the CPU so that the
// index arithmetic is tested without a GPU.
type Gemm struct {
	TransA, TransB     int
	M, N, K            int
	OffA, LDA, StrideA int
	OffB, LDB, StrideB int
	OffC, LDC, StrideC int
	Batch              int
}

// BlockDiagGemms returns the products computing Y = D·X for an N × N
// block-diagonal D stored as kernels.BlockDiag stores it (blocks of b × b
// one after the other, each row-major, the last one r × r), X dim × n and Y
// dim × n column-major with leading dimensions ldx and ldy (token t's vector
// is column t, i.e. X is the row-major n × dim activation buffer when
// ldx = dim).
//
// A row-major s × s block is a column-major matrix transposed, so op(A) = T
// with lda = s. The full blocks are one strided batch (block k: A at k·b·b,
// X and Y rows k·b …, i.e. offsets k·b); the ragged last block, if any, is a
// second call.
func BlockDiagGemms(dim, b, n, ldx, ldy int) ([]Gemm, error) {
	if dim <= 0 || b <= 0 || n <= 0 || ldx < dim || ldy < dim {
		return nil, fmt.Errorf("cuda: BlockDiagGemms: bad sizes dim=%d block=%d n=%d ldx=%d ldy=%d", dim, b, n, ldx, ldy)
	}
	if b > dim {
		b = dim // one block (BlockDiag stores it as dim × dim)
	}
	full := dim / b
	var gs []Gemm
	if full > 0 {
		gs = append(gs, Gemm{TransA: OpT, TransB: OpN, M: b, N: n, K: b,
			OffA: 0, LDA: b, StrideA: b * b,
			OffB: 0, LDB: ldx, StrideB: b,
			OffC: 0, LDC: ldy, StrideC: b,
			Batch: full})
	}
	if r := dim - full*b; r > 0 {
		o := full * b
		gs = append(gs, Gemm{TransA: OpT, TransB: OpN, M: r, N: n, K: r,
			OffA: full * b * b, LDA: r, OffB: o, LDB: ldx, OffC: o, LDC: ldy, Batch: 1})
	}
	return gs, nil
}

// RefGemm computes g on the CPU in float64 accumulation: the reference for
// what cuBLAS does with the same description.
func RefGemm(g Gemm, a, b, c []float32) {
	at := func(buf []float32, off, ld, r, col int, trans int) float32 {
		if trans == OpT {
			r, col = col, r
		}
		return buf[off+col*ld+r]
	}
	for bt := 0; bt < g.Batch; bt++ {
		oa, ob, oc := g.OffA+bt*g.StrideA, g.OffB+bt*g.StrideB, g.OffC+bt*g.StrideC
		for j := 0; j < g.N; j++ {
			for i := 0; i < g.M; i++ {
				var s float64
				for p := 0; p < g.K; p++ {
					s += float64(at(a, oa, g.LDA, i, p, g.TransA)) * float64(at(b, ob, g.LDB, p, j, g.TransB))
				}
				c[oc+j*g.LDC+i] = float32(s)
			}
		}
	}
}

// SparseGemm is the cuSPARSELt product of the device layer as a Gemm
// description: C (M × n, ldc) = op(A)·X with A declared as l (OrderCol) and X
// K × n column-major (ldx). RefGemm on DensePruned's buffer reproduces it.
func SparseGemm(l StoredLayout, n, ldx, ldc int) (Gemm, error) {
	if l.Order != OrderCol {
		return Gemm{}, fmt.Errorf("cuda: SparseGemm: only column-major declarations match the column-major activations")
	}
	return Gemm{TransA: l.Op, TransB: OpN, M: l.M(), N: n, K: l.K(), LDA: l.LD, LDB: ldx, LDC: ldc, Batch: 1}, nil
}

// PadCols rounds a token count up to what cuSPARSELt accepts for 16-bit
// operands (dimensions multiple of 16; the extra columns are computed and
// ignored).
func PadCols(n int) int { return (n + 15) &^ 15 }
