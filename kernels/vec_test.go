package kernels

import (
	"fmt"
	"math"
	"testing"
)

var vecSizes = []int{1, 3, 7, 8, 15, 16, 17, 33, 64, 100, 257}

func TestDotAxpy(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, n := range vecSizes {
			a, b := randVec(r, n), randVec(r, n+3)
			var want, abs float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				abs += math.Abs(float64(a[i]) * float64(b[i]))
			}
			if got := float64(Dot(a, b)); !(math.Abs(got-want) <= accTol(n, abs)) {
				t.Errorf("Dot n=%d = %v, want %v", n, got, want)
			}
			y := randVec(r, n+2)
			y0 := append([]float32(nil), y...)
			s := float32(r.NormFloat64())
			Axpy(s, a, y)
			for i := range y {
				w := float64(y0[i])
				if i < n {
					w += float64(s) * float64(a[i])
				}
				// one product and one sum, each rounded once (an FMA
				// rounds once): 2 ulp of the larger magnitude suffices.
				tol := 2 * math.Ldexp(1, -24) * (math.Abs(float64(y0[i])) + math.Abs(float64(s)*float64(a[min(i, n-1)])))
				if !(math.Abs(float64(y[i])-w) <= tol+1e-30) {
					t.Errorf("Axpy n=%d: y[%d] = %v, want %v", n, i, y[i], w)
				}
			}
		}
	})
}

// The remaining vector kernels are portable Go at every level; they are
// checked against float64 here once, with relative tolerances of a few f32
// roundings per output (plus the error of float32(exp) for the exponentials).
func TestSmallKernels(t *testing.T) {
	r := newRand(t)
	for _, n := range vecSizes {
		x, w := randVec(r, n), randVec(r, n)
		out := poisoned(n)
		RMSNorm(out, x, w, 1e-5)
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		sc := 1 / math.Sqrt(ss/float64(n)+1e-5)
		for i := range x {
			want := float64(x[i]) * sc * float64(w[i])
			if !(math.Abs(float64(out[i])-want) <= 1e-6*math.Abs(want)+1e-30) {
				t.Errorf("RMSNorm n=%d: out[%d] = %v, want %v", n, i, out[i], want)
			}
		}

		sm := append([]float32(nil), x...)
		Softmax(sm)
		var mx, z float64 = math.Inf(-1), 0
		for _, v := range x {
			mx = math.Max(mx, float64(v))
		}
		for _, v := range x {
			z += math.Exp(float64(v) - mx)
		}
		for i, v := range x {
			want := math.Exp(float64(v)-mx) / z
			if !(math.Abs(float64(sm[i])-want) <= 1e-6*want+1e-12) {
				t.Errorf("Softmax n=%d: [%d] = %v, want %v", n, i, sm[i], want)
			}
		}

		g, u := randVec(r, n), randVec(r, n)
		g0 := append([]float32(nil), g...)
		SiLUMul(g, u)
		for i := range g {
			gv := float64(g0[i])
			want := gv / (1 + math.Exp(-gv)) * float64(u[i])
			if !(math.Abs(float64(g[i])-want) <= 1e-6*math.Abs(want)+1e-30) {
				t.Errorf("SiLUMul n=%d: [%d] = %v, want %v", n, i, g[i], want)
			}
		}

		half := n
		cs, sn := make([]float32, half), make([]float32, half)
		for i := range cs {
			th := r.Float64() * 2 * math.Pi
			cs[i], sn[i] = float32(math.Cos(th)), float32(math.Sin(th))
		}
		for _, mode := range []string{"pairs", "halves"} {
			h := randVec(r, 2*half)
			h0 := append([]float32(nil), h...)
			ia, ib := func(i int) int { return 2 * i }, func(i int) int { return 2*i + 1 }
			if mode == "pairs" {
				RoPEPairs(h, cs, sn)
			} else {
				RoPEHalves(h, cs, sn)
				ia, ib = func(i int) int { return i }, func(i int) int { return i + half }
			}
			for i := 0; i < half; i++ {
				a, b := float64(h0[ia(i)]), float64(h0[ib(i)])
				c, s := float64(cs[i]), float64(sn[i])
				wa, wb := a*c-b*s, a*s+b*c
				tol := 4 * math.Ldexp(1, -24) * (math.Abs(a) + math.Abs(b))
				if !(math.Abs(float64(h[ia(i)])-wa) <= tol) || !(math.Abs(float64(h[ib(i)])-wb) <= tol) {
					t.Errorf("RoPE %s n=%d: pair %d = (%v, %v), want (%v, %v)", mode, half, i, h[ia(i)], h[ib(i)], wa, wb)
				}
			}
		}
	}

}

// TestAxpyRowsF64 checks the float64 weighted row sum against a float64
// loop, on odd widths and strides (vector tails), at every level.
func TestAxpyRowsF64(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, rows := range []int{1, 2, 3, 17, 128} {
			for _, cols := range []int{1, 3, 4, 7, 8, 9, 16, 31, 32, 33, 100, 128} {
				ld := cols + r.IntN(9)
				w := make([]float64, (rows-1)*ld+cols)
				for i := range w {
					w[i] = r.NormFloat64()
				}
				a := make([]float64, rows)
				for i := range a {
					a[i] = r.NormFloat64()
				}
				y := make([]float64, cols)
				want, abs := make([]float64, cols), make([]float64, cols)
				for j := range y {
					y[j] = r.NormFloat64()
					want[j], abs[j] = y[j], math.Abs(y[j])
					for i := range a {
						want[j] += a[i] * w[i*ld+j]
						abs[j] += math.Abs(a[i] * w[i*ld+j])
					}
				}
				AxpyRowsF64(y, a, w, ld)
				for j := range y {
					if d := math.Abs(y[j] - want[j]); !(d <= 1e-14*abs[j]) {
						t.Errorf("AxpyRowsF64 %dx%d ld %d: y[%d] = %v, want %v", rows, cols, ld, j, y[j], want[j])
					}
				}
			}
		}
	})
}

func TestDotRowsAxpyRows(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, rows := range []int{1, 2, 3, 17, 64} {
			for _, cols := range []int{1, 7, 8, 16, 24, 33, 64, 100, 128} {
				ld := cols + r.IntN(9)
				w := randVec(r, (rows-1)*ld+cols)
				x := randVec(r, cols)
				y := poisoned(rows)
				DotRows(y, w, ld, x)
				want, abs := refGemm(func(i, j int) float64 { return float64(w[i*ld+j]) }, rows, cols, x, 1)
				checkClose(t, fmt.Sprintf("DotRows %dx%d ld %d", rows, cols, ld), y, want, abs, cols)

				a := randVec(r, rows)
				o := randVec(r, cols)
				want2, abs2 := make([]float64, cols), make([]float64, cols)
				for j := range o {
					want2[j], abs2[j] = float64(o[j]), math.Abs(float64(o[j]))
					for i := range a {
						p := float64(a[i]) * float64(w[i*ld+j])
						want2[j] += p
						abs2[j] += math.Abs(p)
					}
				}
				o16 := append([]float32(nil), o...)
				AxpyRows(o, a, w, ld)
				checkClose(t, fmt.Sprintf("AxpyRows %dx%d ld %d", rows, cols, ld), o, want2, abs2, rows)

				// The f16 variants (an f16 KV cache), against float64 over
				// the same rows rounded to f16 (exact in f32).
				w16 := make([]uint16, len(w))
				ToF16(w16, w)
				w16f := func(i int) float64 { return float64(F16ToF32(w16[i])) }
				y = poisoned(rows)
				DotRowsF16(y, w16, ld, x)
				want, abs = refGemm(func(i, j int) float64 { return w16f(i*ld + j) }, rows, cols, x, 1)
				checkClose(t, fmt.Sprintf("DotRowsF16 %dx%d ld %d", rows, cols, ld), y, want, abs, cols)
				for j := range o16 {
					want2[j], abs2[j] = float64(o16[j]), math.Abs(float64(o16[j]))
					for i := range a {
						p := float64(a[i]) * w16f(i*ld+j)
						want2[j] += p
						abs2[j] += math.Abs(p)
					}
				}
				AxpyRowsF16(o16, a, w16, ld)
				checkClose(t, fmt.Sprintf("AxpyRowsF16 %dx%d ld %d", rows, cols, ld), o16, want2, abs2, rows)
			}
		}
	})
	// ToF16 rounds like F32ToF16, element by element.
	src := []float32{0, -1, 65504, 1e-8, 3.14159, -2.5e-5}
	dst := make([]uint16, len(src)+1)
	dst[len(src)] = 0xbeef
	ToF16(dst, src)
	for i, v := range src {
		if dst[i] != F32ToF16(v) {
			t.Errorf("ToF16(%v) = %#x, want %#x", v, dst[i], F32ToF16(v))
		}
	}
	if dst[len(src)] != 0xbeef {
		t.Error("ToF16 wrote past len(src)")
	}
	// FromF16 widens exactly, and ToF16 rounds as F32ToF16 (ties, f16
	// subnormals, overflow to infinity, ±0, ±Inf), at every level and length.
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, n := range []int{1, 7, 8, 16, 31, 100, 1000} {
			src := make([]float32, n)
			for i := range src {
				switch r.IntN(6) {
				case 0:
					src[i] = float32(r.NormFloat64() * 1e-6) // f16 subnormal range
				case 1:
					src[i] = float32(r.NormFloat64() * 1e5) // overflows f16
				case 2:
					// An exact tie between two neighbouring f16 values.
					h := uint16(r.IntN(0x7bff))
					src[i] = (F16ToF32(h) + F16ToF32(h+1)) / 2
				case 3:
					src[i] = []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1))}[r.IntN(4)]
				default:
					src[i] = float32(r.NormFloat64() * 10)
				}
			}
			dst := make([]uint16, n+1)
			dst[n] = 0xbeef
			ToF16(dst, src)
			for i, v := range src {
				if dst[i] != F32ToF16(v) {
					t.Fatalf("n=%d: ToF16(%g) = %#x, want %#x", n, v, dst[i], F32ToF16(v))
				}
			}
			if dst[n] != 0xbeef {
				t.Fatalf("n=%d: ToF16 wrote past len(src)", n)
			}
		}
		for _, n := range []int{1, 7, 8, 16, 31, 100} {
			h := make([]uint16, n+1)
			for i := range h {
				h[i] = F32ToF16(float32(r.NormFloat64()))
			}
			f := poisoned(n + 1)
			FromF16(f[:n], h)
			for i := 0; i < n; i++ {
				if f[i] != F16ToF32(h[i]) {
					t.Fatalf("n=%d: FromF16[%d] = %v, want %v", n, i, f[i], F16ToF32(h[i]))
				}
			}
			if !math.IsNaN(float64(f[n])) {
				t.Fatalf("n=%d: FromF16 wrote past len(dst)", n)
			}
		}
	})
}

// TestExpKernels checks Softmax and SiLUMul at every level (AVX-512 has a
// polynomial exp) over the whole f32 range that matters: large inputs that
// overflow or underflow exp, ±Inf (masked scores), and a length long enough
// for SiLUMul to split across threads.
func TestExpKernels(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, n := range []int{1, 15, 16, 17, 100, 1000, 70000} {
			x := make([]float32, n)
			for i := range x {
				switch r.IntN(8) {
				case 0:
					x[i] = float32(r.NormFloat64() * 60)
				case 1:
					x[i] = float32(math.Inf(-1))
				default:
					x[i] = float32(r.NormFloat64() * 8)
				}
			}
			x[r.IntN(n)] = float32(r.NormFloat64()) // not all -Inf
			if n > 1 && r.IntN(2) == 0 {
				x[r.IntN(n)] = 200 // exp(x - max) must not see the huge values
			}
			sm := append([]float32(nil), x...)
			Softmax(sm)
			mx := math.Inf(-1)
			for _, v := range x {
				mx = math.Max(mx, float64(v))
			}
			var z float64
			for _, v := range x {
				z += math.Exp(float64(v) - mx)
			}
			for i, v := range x {
				want := math.Exp(float64(v)-mx) / z
				if math.IsInf(float64(v), -1) {
					if sm[i] != 0 {
						t.Fatalf("Softmax n=%d: [%d] (x=-Inf) = %v, want 0", n, i, sm[i])
					}
					continue
				}
				// float32(x - max) is rounded: exp's relative error grows
				// with |x - max| (one f32 rounding of the argument).
				if !(math.Abs(float64(sm[i])-want) <= (5e-7+1.2e-7*math.Abs(float64(v)-mx))*want+1e-30) {
					t.Fatalf("Softmax n=%d: [%d] (x=%v) = %v, want %v", n, i, v, sm[i], want)
				}
			}
			g := make([]float32, n)
			for i := range g {
				g[i] = float32(r.NormFloat64() * 30)
				if r.IntN(50) == 0 {
					g[i] = float32(r.NormFloat64() * 1e4)
				}
			}
			u := randVec(r, n)
			g0 := append([]float32(nil), g...)
			SiLUMul(g, u)
			for i := range g {
				gv := float64(g0[i])
				want := gv / (1 + math.Exp(-gv)) * float64(u[i])
				if !(math.Abs(float64(g[i])-want) <= (5e-7+1.2e-7*math.Abs(gv))*math.Abs(want)+1e-30) {
					t.Fatalf("SiLUMul n=%d: [%d] (g=%v) = %v, want %v", n, i, gv, g[i], want)
				}
			}
		}
	})
}
