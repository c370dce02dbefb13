package convert

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gram returns XXᵀ/N for N random correlated input vectors of size d.
func gram(rng *rand.Rand, d, n int) []float64 {
	mix := make([]float64, d*d)
	for k := range mix {
		mix[k] = rng.NormFloat64()
	}
	for i := 0; i < d; i++ {
		mix[i*d+i] += 2
	}
	H := make([]float64, d*d)
	x := make([]float64, d)
	z := make([]float64, d)
	for t := 0; t < n; t++ {
		for k := range z {
			z[k] = rng.NormFloat64()
		}
		for i := range x {
			x[i] = dot(mix[i*d:(i+1)*d], z)
		}
		for i := 0; i < d; i++ {
			for j := 0; j < d; j++ {
				H[i*d+j] += x[i] * x[j] / float64(n)
			}
		}
	}
	return H
}

// With H = I there is nothing to propagate and the OBS saliency is w², so
// SparseGPT must reduce exactly to magnitude pruning.
func TestSparseGPTIdentityIsMagnitude(t *testing.T) {
	w, _ := randLayer(newRng(5), 9, 20)
	I := make([]float64, 20*20)
	for j := 0; j < 20; j++ {
		I[j*20+j] = 1
	}
	sg, err := SparseGPT(w, I, 8)
	if err != nil {
		t.Fatal(err)
	}
	mag, _ := Magnitude(w)
	for k := range mag.W {
		if sg.Mask[k] != mag.Mask[k] || sg.W[k] != mag.W[k] {
			t.Fatalf("entry %d: sparsegpt %v/%d, magnitude %v/%d", k, sg.W[k], sg.Mask[k], mag.W[k], mag.Mask[k])
		}
	}
}

// naiveSparseGPT is an independent, slow statement of the same algorithm: for
// column c, the OBS row is H_F⁻¹[c, :]/√H_F⁻¹[c,c] with F = {c, ..., m−1},
// obtained by inverting the trailing block directly instead of through the
// Cholesky factor of H⁻¹.
func naiveSparseGPT(w Matrix, hess []float64) ([]float64, []uint8) {
	n, m := w.Rows, w.Cols
	H := append([]float64(nil), hess...)
	mean := 0.0
	for j := 0; j < m; j++ {
		mean += H[j*m+j]
	}
	for j := 0; j < m; j++ {
		H[j*m+j] += 0.01 * mean / float64(m)
	}
	U := make([]float64, m*m)
	for c := 0; c < m; c++ {
		s := m - c
		sub := make([]float64, s*s)
		for i := 0; i < s; i++ {
			for j := 0; j < s; j++ {
				sub[i*s+j] = H[(c+i)*m+c+j]
			}
		}
		if cholesky(sub, s) != nil {
			panic("not PD")
		}
		inv := cholInverse(sub, s)
		d := math.Sqrt(inv[0])
		for j := 0; j < s; j++ {
			U[c*m+c+j] = inv[j] / d
		}
	}
	W := append([]float64(nil), w.Data...)
	mask := make([]uint8, n*m)
	for c := 0; c < m; c++ {
		for r := 0; r < n; r++ {
			if c%4 == 0 {
				var s [4]float64
				for q := 0; q < 4; q++ {
					v := W[r*m+c+q] / U[(c+q)*m+c+q]
					s[q] = v * v
				}
				a, b := top2(s)
				mask[r*m+c+a], mask[r*m+c+b] = 1, 1
			}
			if mask[r*m+c] == 0 {
				e := W[r*m+c] / U[c*m+c]
				for j := c; j < m; j++ {
					W[r*m+j] -= e * U[c*m+j]
				}
				W[r*m+c] = 0
			}
		}
	}
	return W, mask
}

func TestSparseGPTMatchesNaive(t *testing.T) {
	for _, sz := range [][2]int{{3, 8}, {6, 20}} {
		w, _ := randLayer(newRng(11), sz[0], sz[1])
		H := gram(newRng(12), sz[1], 4*sz[1])
		wantW, wantM := naiveSparseGPT(w, H)
		for _, bs := range []int{4, 8, 128} {
			sg, err := SparseGPT(w, H, bs)
			if err != nil {
				t.Fatal(err)
			}
			for k := range wantW {
				if sg.Mask[k] != wantM[k] || math.Abs(sg.W[k]-wantW[k]) > 1e-9*(1+math.Abs(wantW[k])) {
					t.Fatalf("%v blocksize %d entry %d: got %v/%d want %v/%d", sz, bs, k, sg.W[k], sg.Mask[k], wantW[k], wantM[k])
				}
			}
		}
	}
}

// SparseGPT must beat plain magnitude pruning on its own objective
// tr((W−Ŵ) H (W−Ŵ)ᵀ) when inputs are correlated, and reproduce a weight
// that is already 2:4.
func TestSparseGPTObjective(t *testing.T) {
	w, _ := randLayer(newRng(21), 16, 32)
	H := gram(newRng(22), 32, 200)
	obj := func(a []float64) float64 {
		tot := 0.0
		for i := 0; i < w.Rows; i++ {
			d := make([]float64, w.Cols)
			for j := range d {
				d[j] = w.Data[i*w.Cols+j] - a[i*w.Cols+j]
			}
			for j := range d {
				tot += d[j] * dot(H[j*w.Cols:(j+1)*w.Cols], d)
			}
		}
		return tot
	}
	sg, _ := SparseGPT(w, H, 0)
	mag, _ := Magnitude(w)
	if obj(sg.W) >= obj(mag.W) {
		t.Fatalf("sparsegpt objective %v not below magnitude %v", obj(sg.W), obj(mag.W))
	}
	sg2, err := SparseGPT(Matrix{Rows: w.Rows, Cols: w.Cols, Data: mag.W}, H, 0)
	if err != nil {
		t.Fatal(err)
	}
	for k := range mag.W {
		if math.Abs(sg2.W[k]-mag.W[k]) > 1e-12 {
			t.Fatalf("already 2:4: entry %d changed from %v to %v", k, mag.W[k], sg2.W[k])
		}
	}
}
