package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestGroup24Layout: the offsets the assembly generator uses for Group24's
// fields (G24_P, G24_QT, G24_PT, G24_SIZE in asmgen/gen_amd64.py).
func TestGroup24Layout(t *testing.T) {
	var g Group24
	got := [4]uintptr{unsafe.Offsetof(g.P), unsafe.Offsetof(g.QT), unsafe.Offsetof(g.PT), unsafe.Sizeof(g)}
	if want := [4]uintptr{128, 320, 448, 704}; got != want {
		t.Fatalf("Group24 offsets P, QT, PT and size %v, the generator assumes %v", got, want)
	}
}

// group24Case is a tile row as the group pass sees it: G_B (symmetric,
// positive semidefinite, n×n with stride ld), T's row, the row's values and
// mask, and ‖a‖².
type group24Case struct {
	gb    []float32
	ld    int
	tr, s []float32
	m     []uint8
	gs    []Group24
	aa    float64
}

func newGroup24Case(r *rand.Rand, n int, aa float64, singular, negate bool) group24Case {
	ld := n + 3
	k := n / 2
	if singular {
		k = 1 // rank one: every 2×2 block is singular
	}
	b := make([]float64, n*k)
	for i := range b {
		b[i] = r.NormFloat64()
	}
	gb := make([]float32, n*ld)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for c := 0; c < k; c++ {
				s += b[i*k+c] * b[j*k+c]
			}
			if negate {
				s = -s
			}
			gb[i*ld+j] = float32(s)
		}
	}
	c := group24Case{gb: gb, ld: ld, tr: make([]float32, n), s: make([]float32, n), m: make([]uint8, n), aa: aa}
	for g := 0; g < n; g += 4 {
		var q [16]float64
		for p := 0; p < 4; p++ {
			for rr := 0; rr < 4; rr++ {
				q[p*4+rr] = float64(gb[(g+p)*ld+g+rr])
			}
		}
		c.gs = append(c.gs, NewGroup24(&q))
		a, bb := r.IntN(4), r.IntN(3)
		if bb >= a {
			bb++
		}
		c.m[g+a], c.m[g+bb] = 1, 1
		c.s[g+a], c.s[g+bb] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	for i := range c.tr {
		c.tr[i] = float32(r.NormFloat64() * 3)
	}
	return c
}

func (c group24Case) clone() group24Case {
	c.tr = append([]float32(nil), c.tr...)
	c.s = append([]float32(nil), c.s...)
	c.m = append([]uint8(nil), c.m...)
	return c
}

// TestGroup24RowMatchesGo: the AVX-512 kernel gives the same bits as the Go
// loop (values, mask, T's row and the changed flag), on rows of 16 to 128
// columns, with ‖a‖² ordinary, tiny and zero, with G_B of rank one (every
// support's 2×2 block singular, up to the ridge), and with −G_B (not a Gram
// matrix: every support's cost is positive, which is where the kernel's two
// lanes beyond the 6 supports must not win).
func TestGroup24RowMatchesGo(t *testing.T) {
	if level != AVX512 {
		t.Skip("no AVX-512 here: Group24Row runs the Go loop only")
	}
	r := rand.New(rand.NewPCG(3, 4))
	cases := 0
	for _, n := range []int{16, 32, 48, 128} {
		for _, aa := range []float64{1.7, 1e-9, 0} {
			for kind := 0; kind < 3; kind++ {
				sing, neg := kind == 1, kind == 2
				for rep := 0; rep < 5; rep++ {
					c := newGroup24Case(r, n, aa, sing, neg)
					ia := -1 / (aa + 1e-8)
					want := c.clone()
					wch := group24RowGo(want.tr, want.s, want.m, want.gs, want.gb, want.ld, aa, ia)
					got := c.clone()
					gch, ok := group24RowArch(got.tr, got.s, got.m, got.gs, got.gb, got.ld, aa, ia)
					if !ok {
						t.Fatalf("n=%d: the AVX-512 kernel did not take the row", n)
					}
					if gch != wch {
						t.Fatalf("n=%d aa=%g singular=%v negated=%v: changed %v, Go %v", n, aa, sing, neg, gch, wch)
					}
					for i := 0; i < n; i++ {
						if math.Float32bits(got.tr[i]) != math.Float32bits(want.tr[i]) ||
							math.Float32bits(got.s[i]) != math.Float32bits(want.s[i]) || got.m[i] != want.m[i] {
							t.Fatalf("n=%d aa=%g singular=%v negated=%v, column %d: T %g S %g M %d, Go T %g S %g M %d",
								n, aa, sing, neg, i, got.tr[i], got.s[i], got.m[i], want.tr[i], want.s[i], want.m[i])
						}
					}
					for g := 0; g < n; g += 4 {
						if k := int(got.m[g]) + int(got.m[g+1]) + int(got.m[g+2]) + int(got.m[g+3]); k != 2 {
							t.Fatalf("n=%d group %d keeps %d values", n, g/4, k)
						}
					}
					cases++
				}
			}
		}
	}
	t.Logf("%d rows compared", cases)
}

// TestGroup24UpdateLowersLoss: Update's delta is the exact change of the
// group's loss 2 sᵀ t' + ‖a‖² sᵀ Q s (in its float64 terms) and is never
// positive when taken; the winner is the best of the 6 supports.
func TestGroup24UpdateLowersLoss(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for it := 0; it < 2000; it++ {
		var b [4][3]float64
		for i := range b {
			for j := range b[i] {
				b[i][j] = r.NormFloat64()
			}
		}
		var q [16]float64
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				q[i*4+j] = b[i][0]*b[j][0] + b[i][1]*b[j][1] + b[i][2]*b[j][2]
			}
		}
		g := NewGroup24(&q)
		aa := 0.1 + r.Float64()
		var tv, s [4]float64
		for i := range tv {
			tv[i] = r.NormFloat64()
		}
		s[r.IntN(4)] = r.NormFloat64()
		// loss(x) relative to s: 2 (x−s)ᵀ t + aa (x−s)ᵀ Q (x−s)
		loss := func(x [4]float64) float64 {
			var d [4]float64
			for i := range d {
				d[i] = x[i] - s[i]
			}
			v := 0.0
			for i := 0; i < 4; i++ {
				v += 2 * d[i] * tv[i]
				for j := 0; j < 4; j++ {
					v += aa * d[i] * q[i*4+j] * d[j]
				}
			}
			return v
		}
		sNew, keep, delta := g.Update(tv, aa, s)
		if l := loss(sNew); math.Abs(l-delta) > 1e-9*(1+math.Abs(l)) {
			t.Fatalf("delta %g, the loss changed by %g", delta, l)
		}
		for i := range sNew {
			if sNew[i] != 0 && i != keep[0] && i != keep[1] {
				t.Fatalf("value %d set off the support %v", i, keep)
			}
		}
		// No other support does better (its own exact minimizer).
		for _, pr := range Group24Pairs {
			a, bb := pr[0], pr[1]
			f := func(i int) float64 {
				v := tv[i]
				for j := 0; j < 4; j++ {
					v -= aa * q[i*4+j] * s[j]
				}
				return v
			}
			q00, q01, q11 := q[a*4+a]+1e-9, q[a*4+bb], q[bb*4+bb]+1e-9
			det := q00*q11 - q01*q01
			var x [4]float64
			x[a] = -(q11*f(a) - q01*f(bb)) / det / (aa + 1e-8)
			x[bb] = -(q00*f(bb) - q01*f(a)) / det / (aa + 1e-8)
			if l := loss(x); l < delta-1e-7*(1+math.Abs(delta)) {
				t.Fatalf("support %v reaches %g, the update chose %v with %g", pr, l, keep, delta)
			}
		}
	}
}

// supportKey must order like the float cost it encodes: for costs apart by
// more than its 3 dropped bits, the smaller key is the smaller cost, across
// signs, zeros of both signs and magnitudes from tiny to huge.
func TestSupportKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 7))
	one := [4]float64{1, 0, 1, 1} // Q_P = I: cost = −(fa² + fb²)
	costOf := func(v float64) (float64, int64) {
		// fa² = |v| with the sign carried by c[3].
		c := one
		if v < 0 {
			c[3] = -1
		}
		fa := math.Sqrt(math.Abs(v))
		k := supportKey(0, &c, fa, 0)
		return -(fa * fa) * c[3], k
	}
	vals := []float64{0, math.Copysign(0, -1), 1e-300, -1e-300, 1, -1, 3e200, -3e200}
	for range 2000 {
		vals = append(vals, rng.NormFloat64()*math.Exp(20*rng.NormFloat64()))
	}
	for i, a := range vals {
		b := vals[(i*7+3)%len(vals)]
		ca, ka := costOf(a)
		cb, kb := costOf(b)
		if math.Abs(ca-cb) <= 1e-14*math.Max(math.Abs(ca), math.Abs(cb)) {
			continue
		}
		if (ca < cb) != (ka < kb) {
			t.Fatalf("costs %g < %g is %v, keys %d < %d is %v", ca, cb, ca < cb, ka, kb, ka < kb)
		}
	}
	// The support index rides in the low bits and breaks ties.
	c := one
	if k0, k5 := supportKey(0, &c, 1, 1), supportKey(5, &c, 1, 1); !(k0 < k5) || k5&7 != 5 || k0&7 != 0 {
		t.Fatalf("equal costs: keys %d (k=0) and %d (k=5)", k0, k5)
	}
}
