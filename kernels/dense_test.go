package kernels

import (
	"fmt"
	"math"
	"testing"
)

var denseShapes = [][2]int{{1, 1}, {1, 17}, {3, 5}, {4, 16}, {7, 31}, {16, 64}, {17, 100}, {33, 257}, {64, 128}, {9, 1}, {6, 8200}}

// denseBatchShapes exercise the tokens-in-lanes GEMM (n ≥ 16 on AVX-512):
// partial 6-row blocks, several 512-column strips, a column tail, and
// enough rows for the parallel split into 48-row-aligned chunks.
var denseBatchShapes = [][2]int{{53, 1100}, {100, 529}, {13, 16}, {200, 48}}

func TestDenseMatVec(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range denseShapes {
				m := randDense(r, dt, sh[0], sh[1])
				x := randVec(r, sh[1])
				y := poisoned(sh[0])
				m.MatVec(y, x)
				want, abs := refGemm(func(i, j int) float64 { return at64(dt, m.F32, m.U16, i*m.Cols+j) }, sh[0], sh[1], x, 1)
				checkClose(t, fmt.Sprintf("%v %dx%d", dt, sh[0], sh[1]), y, want, abs, sh[1])
			}
		}
	})
}

func TestDenseMatMul(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range append(denseShapes, denseBatchShapes...) {
				for _, n := range []int{2, 4, 5, 8, 13, 16, 33, 40, 64, 100, 130} {
					if (sh[1] > wideCols && n > 5) || (n > 13 && sh[0]*sh[1] < 500) {
						continue
					}
					m := randDense(r, dt, sh[0], sh[1])
					x := randVec(r, n*sh[1])
					y := poisoned(n * sh[0])
					m.MatMul(y, x, n)
					w := func(i, j int) float64 { return at64(dt, m.F32, m.U16, i*m.Cols+j) }
					want, abs := refGemm(w, sh[0], sh[1], x, n)
					what := fmt.Sprintf("%v %dx%d n=%d", dt, sh[0], sh[1], n)
					if dt == BF16 && HasBF16Dot() {
						// VDPBF16PS rounds activations to bf16: accept either
						// the exact product or the one with rounded x, each to
						// the f32 accumulation bound (see checkEither).
						xb := make([]float32, len(x))
						for i, v := range x {
							xb[i] = BF16ToF32(F32ToBF16(v))
						}
						want2, abs2 := refGemm(w, sh[0], sh[1], xb, n)
						checkEither(t, what, y, want, abs, want2, abs2, sh[1])
						continue
					}
					checkClose(t, what, y, want, abs, sh[1])
				}
			}
		}
	})
}

// checkEither accepts each element if it matches either reference; the
// kernels use the bf16-rounded activations in the register-blocked part of
// the product and exact ones at the edges.
func checkEither(t *testing.T, what string, got []float32, w1, a1, w2, a2 []float64, k int) {
	t.Helper()
	bad := 0
	for i := range w1 {
		g := float64(got[i])
		if math.Abs(g-w1[i]) <= accTol(k, a1[i]) || math.Abs(g-w2[i]) <= accTol(k, a2[i]) {
			continue
		}
		if bad < 5 {
			t.Errorf("%s: element %d = %v, want %v or %v", what, i, g, w1[i], w2[i])
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements wrong", what, bad, len(w1))
	}
}

// A dense matrix in column panels gives the products of its row-major
// original (float64 reference) at every level and dtype: ragged last panels
// (8196, 8200 columns), four and five panels, more rows than one block of
// the GEMV's panel loop (260), GEMV, per-token GEMM and, from 16 tokens on
// AVX-512, tokens-in-lanes GEMM.
func TestDensePanels(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		shapes := [][3]int{{18, 12300, 70}, {22, 8200, 16}, {9, 8196, 5}, {5, 20000, 2}, {260, 8200, 1}, {50, 16384, 17}}
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range shapes {
				rows, cols, maxN := sh[0], sh[1], sh[2]
				m := randDense(r, dt, rows, cols)
				p := m.Panelize(nil)
				if p.PanelCols() == 0 || p.PanelCols()%32 != 0 || p.PanelCols() > panelMax+32 || p.Panelize(nil) != p {
					t.Fatalf("%v %v: panel width %d", dt, sh, p.PanelCols())
				}
				if err := p.Check(); err != nil {
					t.Fatal(err)
				}
				for _, ij := range [][2]int{{0, 0}, {rows - 1, cols - 1}, {rows / 2, p.PanelCols()}, {rows - 1, p.PanelCols() - 1}, {1 % rows, cols - 3}} {
					if got, want := p.view().at(ij[0], ij[1]), m.view().at(ij[0], ij[1]); got != want {
						t.Fatalf("%v %v: weight (%d, %d) = %v in panels, %v row-major", dt, sh, ij[0], ij[1], got, want)
					}
				}
				w := func(i, j int) float64 { return at64(dt, m.F32, m.U16, i*cols+j) }
				for _, n := range []int{1, 2, 5, 16, 17, 70} {
					if n > maxN {
						continue
					}
					x := randVec(r, n*cols)
					y := poisoned(n * rows)
					p.MatMul(y, x, n)
					want, abs := refGemm(w, rows, cols, x, n)
					what := fmt.Sprintf("panels %v %dx%d n=%d", dt, rows, cols, n)
					if dt == BF16 && HasBF16Dot() && n > 1 {
						xb := make([]float32, len(x))
						for i, v := range x {
							xb[i] = BF16ToF32(F32ToBF16(v))
						}
						want2, abs2 := refGemm(w, rows, cols, xb, n)
						checkEither(t, what, y, want, abs, want2, abs2, cols)
						continue
					}
					checkClose(t, what, y, want, abs, cols)
				}
			}
		}
	})
	m := &Dense{DType: F16, Rows: 4, Cols: 8192, U16: make([]uint16, 4*8192)}
	if m.Panelize(nil) != m {
		t.Error("an 8192-column matrix was split into panels")
	}
}
