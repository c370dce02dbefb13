package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// rand24 returns a random rows×cols f32 matrix with 2:4 sparsity: each group
// keeps 2 random positions, and sometimes one or both of those are zero too
// (short groups exercise the padding rule of Pack24).
func rand24(r *rand.Rand, rows, cols int) []float32 {
	w := make([]float32, rows*cols)
	for i := 0; i < rows; i++ {
		for g := 0; g < cols/4; g++ {
			p := r.Perm(4)
			for h := 0; h < 2; h++ {
				if r.IntN(10) == 0 {
					continue
				}
				// Not so small that f16 rounds it to zero: a kept zero
				// has no position a dense repack could see (about 1 run in 100
				// of TestPack24RoundTrip failed on that).
				v := r.NormFloat64()
				if math.Abs(v) < 1e-3 {
					v = math.Copysign(1e-3, v)
				}
				w[i*cols+4*g+p[h]] = float32(v)
			}
		}
	}
	return w
}

// {9, 2104}: more than one column strip of the register-blocked GEMM
// (past smallBatch tokens) and whole rows (up to it), with a tail.
var sparseShapes = [][2]int{{1, 4}, {1, 32}, {3, 8}, {4, 12}, {5, 36}, {8, 64}, {7, 100}, {17, 128}, {33, 260}, {16, 512}, {9, 2104}, {18, 12300}, {70, 8200}}

func TestPack24RoundTrip(t *testing.T) {
	r := newRand(t)
	for _, dt := range []DType{F32, F16, BF16} {
		for _, sh := range sparseShapes {
			w := rand24(r, sh[0], sh[1])
			s, err := Pack24(w, sh[0], sh[1], dt)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Check(); err != nil {
				t.Fatalf("%v %v: packed matrix fails Check: %v", dt, sh, err)
			}
			if s.Bytes() != int64(sh[0])*(int64(sh[1]/2*dt.Size())+int64(IdxStride(sh[1]))) {
				t.Errorf("Bytes = %d", s.Bytes())
			}
			d := s.Unpack()
			for i, v := range w {
				want := v
				switch dt {
				case F16:
					want = F16ToF32(F32ToF16(v))
				case BF16:
					want = BF16ToF32(F32ToBF16(v))
				}
				if got := float32(at64(dt, d.F32, d.U16, i)); got != want {
					t.Fatalf("%v %v: element %d = %v after round trip, want %v", dt, sh, i, got, want)
				}
			}
			// Repacking the unpacked matrix gives the same bits.
			s2, err := Pack24Dense(d)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(s2.Idx, s2.F32, s2.U16) != fmt.Sprint(s.Idx, s.F32, s.U16) {
				t.Errorf("%v %v: Pack24Dense(Unpack(s)) differs from s", dt, sh)
			}
		}
	}
}

func TestPack24Rejects(t *testing.T) {
	w := make([]float32, 3*8)
	w[2*8+4], w[2*8+5], w[2*8+7] = 1, 2, 3 // row 2, group 1: three non-zeros
	_, err := Pack24(w, 3, 8, F16)
	if err == nil || !strings.Contains(err.Error(), "row 2, group 1") {
		t.Errorf("3 non-zeros in a group: err = %v, want one naming row 2, group 1", err)
	}
	if _, err := Pack24(make([]float32, 2*6), 2, 6, F32); err == nil || !strings.Contains(err.Error(), "groups of 4") {
		t.Errorf("6 columns: err = %v", err)
	}
	if _, err := Pack24(make([]float32, 5), 2, 4, F32); err == nil {
		t.Error("wrong length accepted")
	}
	s, _ := Pack24(make([]float32, 8), 1, 8, F32)
	s.Idx[0] = 0b0001_1011 // group 0 positions 3, 2: not increasing
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "group 0") {
		t.Errorf("Check of decreasing positions: err = %v", err)
	}
	s, _ = Pack24(make([]float32, 4), 1, 4, F32)
	s.Idx[0] |= 0x10
	if err := s.Check(); err == nil {
		t.Error("Check accepted non-zero padding bits")
	}
}

// Check's byte table against the definition, for every value of a full
// index byte (two groups) and of a last, half-used one (one group and 4
// padding bits), with the message naming the first bad group.
func TestSparse24CheckEveryByte(t *testing.T) {
	for _, cols := range []int{8, 12} {
		for b := 0; b < 256; b++ {
			s, _ := Pack24(make([]float32, 2*cols), 2, cols, F32)
			last := len(s.Idx) - 1 // row 1's last byte
			s.Idx[last] = uint8(b)
			p := [4]int{b & 3, b >> 2 & 3, b >> 4 & 3, b >> 6 & 3}
			want := ""
			switch {
			case p[0] >= p[1]:
				want = fmt.Sprintf("row 1, group %d:", 2*(IdxStride(cols)-1))
			case cols%8 == 0 && p[2] >= p[3]:
				want = "row 1, group 1:"
			case cols%8 != 0 && b>>4 != 0:
				want = "row 1: padding bits"
			}
			err := s.Check()
			if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
				t.Fatalf("cols %d, last index byte %08b: err = %v, want %q", cols, b, err, want)
			}
		}
	}
}

func TestSparse24MatVecMatMul(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range sparseShapes {
				for _, n := range []int{1, 2, 4, 5, 8, 11, 14, 15, 16, 37, 50, 64, 100, 130} {
					rows, cols := sh[0], sh[1]
					if cols > wideCols && n > 2 {
						continue // the wide-row path is GEMV only; keep the test fast
					}
					s, err := Pack24(rand24(r, rows, cols), rows, cols, dt)
					if err != nil {
						t.Fatal(err)
					}
					checkSparseProduct(t, r, s, s.Unpack(), n, "")
				}
			}
		}
	})
}

// checkSparseProduct checks s·x for n random tokens (MatVec for one, MatMul
// otherwise) against the float64 product with d, the unpacked matrix.
func checkSparseProduct(t *testing.T, r *rand.Rand, s *Sparse24, d *Dense, n int, what string) {
	t.Helper()
	rows, cols, dt := s.Rows, s.Cols, s.DType
	x := randVec(r, n*cols)
	y := poisoned(n * rows)
	if n == 1 {
		s.MatVec(y, x)
	} else {
		s.MatMul(y, x, n)
	}
	want, abs := refGemm(func(i, j int) float64 { return at64(dt, d.F32, d.U16, i*cols+j) }, rows, cols, x, n)
	checkClose(t, fmt.Sprintf("%s%v %dx%d n=%d", what, dt, rows, cols, n), y, want, abs, cols/2)
}

func TestTransposeBlock(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		// The third value is the destination stride (0: rows+5); ≥ 1024
		// takes the other loop order of the AVX-512 path.
		for _, sh := range [][3]int{{1, 1, 0}, {16, 16, 0}, {17, 33, 0}, {48, 64, 0}, {5, 40, 0}, {40, 5, 0}, {64, 131, 0}, {48, 33, 1031}, {35, 64, 2048}} {
			rows, cols := sh[0], sh[1]
			lds, ldd := cols+3, rows+5
			if sh[2] > 0 {
				ldd = sh[2]
			}
			src := randVec(r, rows*lds)
			dst := poisoned(cols * ldd)
			transposeBlock(dst, ldd, src, lds, rows, cols)
			for j := 0; j < cols; j++ {
				for i := 0; i < ldd; i++ {
					got := dst[j*ldd+i]
					if i >= rows {
						if !math.IsNaN(float64(got)) {
							t.Fatalf("%dx%d: dst[%d,%d] outside the block written", rows, cols, j, i)
						}
						continue
					}
					if want := src[i*lds+j]; got != want {
						t.Fatalf("%dx%d: dst[%d,%d] = %v, want %v", rows, cols, j, i, got, want)
					}
				}
			}
		}
	})
}

// Wide matrices in column panels (Panelize) hold the same matrix and give
// the same products as the row-major ones, through every GEMV and GEMM path.
func TestSparse24Panels(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		// 8196: the last panel ends in a half index byte and a tail of
		// kept values; 20000: five panels.
		shapes := [][2]int{{18, 12300}, {22, 8200}, {9, 8196}, {5, 20000}}
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range shapes {
				rows, cols := sh[0], sh[1]
				s, err := Pack24(rand24(r, rows, cols), rows, cols, dt)
				if err != nil {
					t.Fatal(err)
				}
				p := s.Panelize(nil)
				if p.PanelCols() == 0 || p.PanelCols()%32 != 0 || p.Panelize(nil) != p {
					t.Fatalf("%v %v: panel width %d", dt, sh, p.PanelCols())
				}
				if err := p.Check(); err != nil {
					t.Fatalf("%v %v: Check of the panels: %v", dt, sh, err)
				}
				d := s.Unpack()
				if !slices.Equal(p.Unpack().F32, d.F32) || !slices.Equal(p.Unpack().U16, d.U16) {
					t.Fatalf("%v %v: panels unpack to another matrix", dt, sh)
				}
				for _, n := range []int{1, 2, 16, 70} {
					checkSparseProduct(t, r, p, d, n, "panels ")
				}
			}
		}
	})
	s, _ := Pack24(make([]float32, 4*512), 4, 512, F16)
	if s.Panelize(nil) != s {
		t.Error("a 512-column matrix was split into panels")
	}
	// A position pair out of order in the second panel is caught.
	s, _ = Pack24(make([]float32, 2*12300), 2, 12300, F16)
	p := s.Panelize(nil)
	pv, c0 := p.view().panel(1)
	pv.idx[pv.ldi] = 0b0001_1011 // row 1, first group of the panel: positions 3, 2
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("row 1, group %d", c0/4)) {
		t.Errorf("Check of a corrupt panel: %v", err)
	}
}

// TestTileHead checks where a tokens-in-lanes product stops taking whole
// tiles: a remainder under three quarters of a tile runs apart, a larger
// one pads.
func TestTileHead(t *testing.T) {
	defer func(v bool) { splitTiles = v }(splitTiles)
	splitTiles = true
	for _, c := range []struct{ n, tile, head int }{
		{64, 64, 64}, {72, 64, 64}, {100, 64, 64}, {111, 64, 64}, {112, 64, 112}, {136, 64, 128},
		{40, 32, 32}, {47, 32, 32}, {55, 32, 32}, {56, 32, 56}, {33, 32, 32}, {20, 32, 20}, {16, 16, 16}, {20, 0, 20},
	} {
		if got := tileHead(c.n, c.tile); got != c.head {
			t.Errorf("tileHead(%d, %d) = %d, want %d", c.n, c.tile, got, c.head)
		}
	}
	splitTiles = false
	if got := tileHead(72, 64); got != 72 {
		t.Errorf("without splitTiles: tileHead(72, 64) = %d, want 72", got)
	}
}
