package cuda

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/armor-llm/armor/kernels"
)

// random24 returns a random rows×cols f32 matrix that is 2:4 sparse along
// rows, with some groups holding fewer than 2 non-zeros.
func random24(rng *rand.Rand, rows, cols int) []float32 {
	w := make([]float32, rows*cols)
	for i := 0; i < rows; i++ {
		for g := 0; g < cols/4; g++ {
			perm := rng.Perm(4)
			keep := 2
			if rng.Intn(5) == 0 {
				keep = rng.Intn(2)
			}
			for h := 0; h < keep; h++ {
				w[i*cols+4*g+perm[h]] = float32(rng.NormFloat64())
			}
		}
	}
	return w
}

func TestDensePrunedMatchesUnpack(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, sz := range [][2]int{{1, 4}, {3, 12}, {7, 36}, {16, 64}, {33, 20}} {
		m, k := sz[0], sz[1]
		w := random24(rng, m, k)
		for _, src := range []kernels.DType{kernels.F32, kernels.F16, kernels.BF16} {
			s, err := kernels.Pack24(w, m, k, src)
			if err != nil {
				t.Fatal(err)
			}
			dense := s.Unpack()
			for _, dt := range []kernels.DType{kernels.F16, kernels.BF16} {
				for _, lo := range [][2]int{{OrderRow, OpN}, {OrderCol, OpT}, {OrderCol, OpN}, {OrderRow, OpT}} {
					l, err := LayoutFor(m, k, lo[0], lo[1])
					if err != nil {
						t.Fatal(err)
					}
					buf, err := DensePruned(s, l, dt)
					if err != nil {
						t.Fatal(err)
					}
					if len(buf) != l.Len() || l.LD%8 != 0 {
						t.Fatalf("len %d, layout %+v", len(buf), l)
					}
					// Every element of W, read through the layout, equals
					// Unpack's value converted to dt; every padding element
					// is zero.
					used := make([]bool, len(buf))
					for i := 0; i < m; i++ {
						for j := 0; j < k; j++ {
							var want float32
							if src == kernels.F32 {
								want = dense.F32[i*k+j]
							} else {
								want = toF32(dense.U16[i*k+j], src)
							}
							got := toF32(buf[l.At(i, j)], dt)
							if got != toF32(fromF32(want, dt), dt) {
								t.Fatalf("%d×%d %v→%v %+v: W[%d,%d] = %v, want %v", m, k, src, dt, l, i, j, got, want)
							}
							used[l.At(i, j)] = true
						}
					}
					for p, u := range used {
						if !u && buf[p] != 0 {
							t.Fatalf("%+v: padding element %d = %#x", l, p, buf[p])
						}
					}
					if err := PruneCheck(buf, l); err != nil {
						t.Fatalf("%+v: our packed matrix fails the 2:4 check: %v", l, err)
					}
				}
			}
		}
	}
}

// TestColTLayoutIsRowMajorW checks the claim the device layer relies on: W
// declared column-major K×M with op T is W's row-major bytes, so the 2:4
// groups along K are contiguous.
func TestColTLayoutIsRowMajorW(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	m, k := 5, 24
	s, _ := kernels.Pack24(random24(rng, m, k), m, k, kernels.F16)
	l, _ := LayoutFor(m, k, OrderCol, OpT)
	if l.LD != k || l.Rows != k || l.Cols != m {
		t.Fatalf("layout %+v", l)
	}
	buf, _ := DensePruned(s, l, kernels.F16)
	u := s.Unpack().U16
	for i := range u {
		if buf[i] != u[i] {
			t.Fatalf("element %d: %#x, row-major W has %#x", i, buf[i], u[i])
		}
	}
}

// TestPruneCheckOrientation: a matrix that is 2:4 along rows is generally
// not 2:4 along columns, so checking the wrong orientation (forgetting that
// y = W·x makes W the sparse A with K = d_in) must fail, and a dense group
// must be named.
func TestPruneCheckOrientation(t *testing.T) {
	m, k := 8, 8
	w := make([]float32, m*k)
	// Row i keeps columns {0,1} of group 0 and {4,5} of group 1: 2:4 along
	// rows, but column 0 has 8 non-zeros, so 4 in every group of 4 rows.
	for i := 0; i < m; i++ {
		w[i*k+0], w[i*k+1], w[i*k+4], w[i*k+5] = 1, 2, 3, 4
	}
	s, err := kernels.Pack24(w, m, k, kernels.F16)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := LayoutFor(m, k, OrderCol, OpT)
	buf, _ := DensePruned(s, l, kernels.F16)
	if err := PruneCheck(buf, l); err != nil {
		t.Fatal(err)
	}
	// The same bytes declared as W column-major (OrderCol, OpN, K×... ) —
	// i.e. the transposition done wrong — put the groups along d_out.
	wrong := StoredLayout{Order: OrderRow, Op: OpT, Rows: k, Cols: m, LD: m}
	err = PruneCheck(buf, wrong)
	if err == nil || !strings.Contains(err.Error(), "row 0 of op(A), columns 0..3 hold 4 non-zeros") {
		t.Fatalf("wrong orientation: err = %v", err)
	}
	// A dense group is rejected in the right orientation too.
	buf[l.At(3, 6)] = kernels.F32ToF16(1)
	if err := PruneCheck(buf, l); err == nil || !strings.Contains(err.Error(), "row 3 of op(A), columns 4..7 hold 3") {
		t.Fatalf("dense group: err = %v", err)
	}
	// -0 counts as zero.
	buf[l.At(3, 6)] = 0x8000
	if err := PruneCheck(buf, l); err != nil {
		t.Fatal(err)
	}
}

func TestDensePrunedErrors(t *testing.T) {
	s, _ := kernels.Pack24(make([]float32, 8), 2, 4, kernels.F16)
	l, _ := LayoutFor(4, 2, OrderRow, OpN)
	if _, err := DensePruned(s, l, kernels.F16); err == nil || !strings.Contains(err.Error(), "layout is for 4×2") {
		t.Fatalf("shape mismatch: %v", err)
	}
	l, _ = LayoutFor(2, 4, OrderRow, OpN)
	if _, err := DensePruned(s, l, kernels.F32); err == nil {
		t.Fatal("f32 device dtype accepted")
	}
	if _, err := LayoutFor(0, 4, OrderRow, OpN); err == nil {
		t.Fatal("empty shape accepted")
	}
}

// armorRand builds a random ARMOR layer with f16 weights.
func armorRand(rng *rand.Rand, out, in, b int) *kernels.Armor {
	bd := func(n int) *kernels.BlockDiag {
		d := &kernels.BlockDiag{DType: kernels.F16, N: n, B: b, U16: make([]uint16, kernels.BlockDiagLen(n, b))}
		for i := range d.U16 {
			d.U16[i] = kernels.F32ToF16(float32(rng.NormFloat64()) / float32(math.Sqrt(float64(b))))
		}
		return d
	}
	core, _ := kernels.Pack24(random24(rng, out, in), out, in, kernels.F16)
	return &kernels.Armor{Pre: bd(in), Core: core, Post: bd(out)}
}

// TestArmorPlanOnCPU runs the device layer's product descriptions (batched
// GEMMs for Pre and Post, the declared cuSPARSELt product for the core) on
// the CPU with RefGemm and compares with kernels.Armor: the index arithmetic
// of the device path, checked without a GPU. Odd sizes give ragged blocks.
func TestArmorPlanOnCPU(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, c := range []struct{ out, in, b, n int }{{12, 8, 4, 1}, {20, 28, 8, 3}, {36, 44, 16, 5}, {16, 16, 32, 2}} {
		a := armorRand(rng, c.out, c.in, c.b)
		if err := a.Check(); err != nil {
			t.Fatal(err)
		}
		x := make([]float32, c.n*c.in)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		want := make([]float32, c.n*c.out)
		a.MatMul(want, x, c.n)

		f32 := func(u []uint16) []float32 {
			f := make([]float32, len(u))
			kernels.ToF32(f, u, kernels.F16)
			return f
		}
		np := PadCols(c.n)
		xd := make([]float32, np*c.in)
		copy(xd, x)
		tb := make([]float32, np*c.in)
		gs, err := BlockDiagGemms(c.in, c.b, np, c.in, c.in)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			RefGemm(g, f32(a.Pre.U16), xd, tb)
		}
		l, _ := LayoutFor(c.out, c.in, OrderCol, OpT)
		ab, err := DensePruned(a.Core, l, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		ub := make([]float32, np*c.out)
		sg, err := SparseGemm(l, np, c.in, c.out)
		if err != nil {
			t.Fatal(err)
		}
		RefGemm(sg, f32(ab), tb, ub)
		yb := make([]float32, np*c.out)
		gs, _ = BlockDiagGemms(c.out, c.b, np, c.out, c.out)
		for _, g := range gs {
			RefGemm(g, f32(a.Post.U16), ub, yb)
		}
		for i := range want {
			if d := math.Abs(float64(yb[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%+v: y[%d] = %v, kernels.Armor gives %v", c, i, yb[i], want[i])
			}
		}
	}
}

func TestBlockDiagGemmsErrors(t *testing.T) {
	if _, err := BlockDiagGemms(8, 4, 1, 4, 8); err == nil {
		t.Fatal("ldx < dim accepted")
	}
	gs, err := BlockDiagGemms(10, 4, 2, 10, 10)
	if err != nil || len(gs) != 2 || gs[0].Batch != 2 || gs[1].M != 2 || gs[1].OffA != 32 || gs[1].OffB != 8 {
		t.Fatalf("10 with blocks of 4: %+v, %v", gs, err)
	}
}
