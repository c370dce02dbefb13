package cuda

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/armor-llm/armor/kernels"
)

// openGPU opens GPU 0 or skips with the reason (which library is missing,
// where it was looked for, or which call failed). ARMOR_REQUIRE_GPU=1 turns
// the skip into a failure, for the device check script.
func openGPU(t testing.TB) *Device {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		if os.Getenv("ARMOR_REQUIRE_GPU") == "1" {
			t.Fatalf("no usable GPU: %v", err)
		}
		t.Skipf("no usable GPU: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	t.Logf("device: %s", d)
	return d
}

func needSparse(t *testing.T, d *Device) {
	t.Helper()
	if err := d.HasSparse(); err != nil {
		if os.Getenv("ARMOR_REQUIRE_GPU") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func randVec(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// closeF16 compares a device result with the CPU one: relative L2 error
// within tol (f16 operands and intermediates give ~1e-3), and no element off
// by more than 20·tol of the largest magnitude.
func closeF16(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	var num, den, mx float64
	for i := range want {
		d := float64(got[i] - want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
		mx = math.Max(mx, math.Abs(float64(want[i])))
	}
	if rel := math.Sqrt(num / math.Max(den, 1e-30)); rel > tol || math.IsNaN(rel) {
		t.Fatalf("%s: relative L2 error %.3g > %.3g", what, rel, tol)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 20*tol*mx {
			t.Fatalf("%s: element %d = %v, CPU %v", what, i, got[i], want[i])
		}
	}
}

func TestGPUDenseLayer(t *testing.T) { testDenseLayer(t, openGPU(t)) }

func testDenseLayer(t *testing.T, d *Device) {
	rng := rand.New(rand.NewSource(10))
	for _, sz := range [][3]int{{64, 48, 1}, {100, 72, 7}, {256, 512, 33}} {
		out, in, n := sz[0], sz[1], sz[2]
		w := &kernels.Dense{DType: kernels.F16, Rows: out, Cols: in, U16: make([]uint16, out*in)}
		for i := range w.U16 {
			w.U16[i] = kernels.F32ToF16(float32(rng.NormFloat64()) / float32(math.Sqrt(float64(in))))
		}
		bias := randVec(rng, out)
		l, err := d.NewDenseLayer(w, bias, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		x := randVec(rng, n*in)
		want := make([]float32, n*out)
		w.MatMul(want, x, n)
		for i := range want {
			want[i] += bias[i%out]
		}
		got := make([]float32, n*out)
		if err := l.Forward(got, x, n); err != nil {
			t.Fatal(err)
		}
		closeF16(t, fmt.Sprintf("dense %d×%d n=%d", out, in, n), got, want, 3e-3)
		l.Free()
	}
}

func TestGPUArmorAndSparseLayers(t *testing.T) { testArmorLayers(t, openGPU(t)) }

func testArmorLayers(t *testing.T, d *Device) {
	needSparse(t, d)
	rng := rand.New(rand.NewSource(11))
	// Sizes are multiples of 16 (cuSPARSELt); blocks do not all divide them
	// (ragged last blocks), token counts are not multiples of 16 (padding).
	for _, c := range []struct{ out, in, b, n int }{{48, 80, 32, 1}, {128, 64, 16, 7}, {256, 192, 128, 33}, {512, 1024, 64, 100}} {
		a := armorRand(rng, c.out, c.in, c.b)
		a.Bias = randVec(rng, c.out)
		x := randVec(rng, c.n*c.in)
		want := make([]float32, c.n*c.out)
		a.MatMul(want, x, c.n)
		l, err := d.NewArmorLayer(a, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, c.n*c.out)
		if err := l.Forward(got, x, c.n); err != nil {
			t.Fatal(err)
		}
		closeF16(t, fmt.Sprintf("armor %+v", c), got, want, 5e-3)
		// On device-resident activations (16 padded tokens), the same.
		xs := make([]float32, 16*c.in)
		copy(xs, x[:c.in*min(c.n, 16)])
		xb := up16(t, d, xs)
		yb, _ := d.Alloc(int64(2 * 16 * c.out))
		if err := l.ForwardDev(yb, xb, 16); err != nil {
			t.Fatal(err)
		}
		dev := down16(t, yb, min(c.n, 16)*c.out)
		for i := range dev {
			dev[i] += a.Bias[i%c.out]
		}
		closeF16(t, fmt.Sprintf("armor %+v on device buffers", c), dev, want[:len(dev)], 5e-3)
		if err := l.ForwardDev(yb, xb, 15); err == nil {
			t.Fatal("ForwardDev of 15 tokens on a 2:4 layer accepted")
		}
		xb.Free()
		yb.Free()
		// A second width reuses the compressed core with a new plan.
		if c.n > 1 {
			if err := l.Forward(got[:c.out], x[:c.in], 1); err != nil {
				t.Fatal(err)
			}
			closeF16(t, fmt.Sprintf("armor %+v, 1 token after %d", c, c.n), got[:c.out], want[:c.out], 5e-3)
		}
		l.Free()

		s, err := d.NewSparseLayer(a.Core, nil, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		a.Core.MatMul(want, x, c.n)
		if err := s.Forward(got, x, c.n); err != nil {
			t.Fatal(err)
		}
		closeF16(t, fmt.Sprintf("2:4 %d×%d n=%d", c.out, c.in, c.n), got, want, 3e-3)
		s.Free()
	}
	// Sizes cuSPARSELt cannot take are refused with a clear error.
	s, _ := kernels.Pack24(random24(rng, 20, 40), 20, 40, kernels.F16)
	if _, err := d.NewSparse(s, kernels.F16); err == nil {
		t.Fatal("20×40 accepted")
	}
}

func upF32(t *testing.T, d *Device, v []float32) *Buffer {
	b, err := d.Alloc(int64(4 * len(v)))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.UploadF32(0, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func up16(t *testing.T, d *Device, v []float32) *Buffer {
	h := make([]uint16, len(v))
	to16(h, v, kernels.F16)
	b, err := d.Alloc(int64(2 * len(v)))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Upload(0, h); err != nil {
		t.Fatal(err)
	}
	return b
}

func down16(t *testing.T, b *Buffer, n int) []float32 {
	h := make([]uint16, n)
	if err := b.Download(h, 0); err != nil {
		t.Fatal(err)
	}
	f := make([]float32, n)
	kernels.ToF32(f, h, kernels.F16)
	return f
}

func downF32(t *testing.T, b *Buffer, n int) []float32 {
	f := make([]float32, n)
	if err := b.DownloadF32(f, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

func r16(v []float32) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = kernels.F16ToF32(kernels.F32ToF16(x))
	}
	return o
}

func TestGPUKernels(t *testing.T) { testKernels(t, openGPU(t)) }

func testKernels(t *testing.T, d *Device) {
	k, err := d.LoadKernels()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(12))

	// RMSNorm, odd width.
	n, dim := 3, 1000
	x, w := randVec(rng, n*dim), randVec(rng, dim)
	want := make([]float32, n*dim)
	for tk := 0; tk < n; tk++ {
		var s float64
		for _, v := range x[tk*dim : (tk+1)*dim] {
			s += float64(v) * float64(v)
		}
		r := 1 / math.Sqrt(s/float64(dim)+1e-5)
		for i := 0; i < dim; i++ {
			want[tk*dim+i] = float32(float64(x[tk*dim+i]) * r * float64(w[i]))
		}
	}
	out, _ := d.Alloc(int64(2 * n * dim))
	if err := k.RMSNorm(out, upF32(t, d, x), upF32(t, d, w), n, dim, 1e-5); err != nil {
		t.Fatal(err)
	}
	closeF16(t, "rmsnorm", down16(t, out, n*dim), want, 2e-3)

	// RoPE, both pairings.
	heads, hd, pos0, npos := 3, 64, 5, 16
	cos, sin := make([]float32, npos*hd/2), make([]float32, npos*hd/2)
	for p := 0; p < npos; p++ {
		for i := 0; i < hd/2; i++ {
			a := float64(p) * math.Pow(10000, -2*float64(i)/float64(hd))
			cos[p*hd/2+i], sin[p*hd/2+i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
	}
	cb, sb := upF32(t, d, cos), upF32(t, d, sin)
	for _, neox := range []bool{false, true} {
		n := 2
		q := randVec(rng, n*heads*hd)
		want := append([]float32(nil), q...)
		for tk := 0; tk < n; tk++ {
			for h := 0; h < heads; h++ {
				v := want[(tk*heads+h)*hd:]
				for i := 0; i < hd/2; i++ {
					a, b := 2*i, 2*i+1
					if neox {
						a, b = i, i+hd/2
					}
					c, s := float64(cos[(pos0+tk)*hd/2+i]), float64(sin[(pos0+tk)*hd/2+i])
					x0, x1 := float64(v[a]), float64(v[b])
					v[a], v[b] = float32(x0*c-x1*s), float32(x0*s+x1*c)
				}
			}
		}
		qb := upF32(t, d, q)
		if err := k.RoPE(qb, cb, sb, n, heads, hd, pos0, neox); err != nil {
			t.Fatal(err)
		}
		closeF16(t, fmt.Sprintf("rope neox=%v", neox), downF32(t, qb, len(q)), want, 1e-6)
	}

	// Attention with grouped-query heads over an odd length.
	heads, kvh, hd, length := 8, 2, 64, 37
	q := randVec(rng, heads*hd)
	kc, vc := r16(randVec(rng, length*kvh*hd)), r16(randVec(rng, length*kvh*hd))
	wantA := make([]float32, heads*hd)
	for h := 0; h < heads; h++ {
		g := h / (heads / kvh)
		sc := make([]float64, length)
		mx := math.Inf(-1)
		for p := 0; p < length; p++ {
			var s float64
			for i := 0; i < hd; i++ {
				s += float64(q[h*hd+i]) * float64(kc[(p*kvh+g)*hd+i])
			}
			sc[p] = s / math.Sqrt(float64(hd))
			mx = math.Max(mx, sc[p])
		}
		var sum float64
		for p := range sc {
			sc[p] = math.Exp(sc[p] - mx)
			sum += sc[p]
		}
		for i := 0; i < hd; i++ {
			var acc float64
			for p := 0; p < length; p++ {
				acc += sc[p] * float64(vc[(p*kvh+g)*hd+i])
			}
			wantA[h*hd+i] = float32(acc / sum)
		}
	}
	ob, _ := d.Alloc(int64(4 * heads * hd))
	if err := k.Attention(ob, upF32(t, d, q), up16(t, d, kc), up16(t, d, vc), heads, kvh, hd, length); err != nil {
		t.Fatal(err)
	}
	closeF16(t, "attention", downF32(t, ob, heads*hd), wantA, 1e-4)

	// SiLU·mul, odd count.
	m := 1001
	g, u := r16(randVec(rng, m)), r16(randVec(rng, m))
	wantS := make([]float32, m)
	for i := range wantS {
		wantS[i] = float32(float64(g[i]) / (1 + math.Exp(-float64(g[i]))) * float64(u[i]))
	}
	sb2, _ := d.Alloc(int64(2 * m))
	if err := k.SiLUMul(sb2, up16(t, d, g), up16(t, d, u), m); err != nil {
		t.Fatal(err)
	}
	closeF16(t, "silu·mul", down16(t, sb2, m), wantS, 2e-3)
}

// TestGPUGemmTable times cuSPARSELt 2:4 against cuBLAS dense f16 for the
// issue's shapes and prints one table. It runs only with
// ARMOR_CUDA_BENCH=1 (device_check.sh sets it).
func TestGPUGemmTable(t *testing.T) {
	if os.Getenv("ARMOR_CUDA_BENCH") != "1" {
		t.Skip("set ARMOR_CUDA_BENCH=1 to time the GEMMs")
	}
	d := openGPU(t)
	needSparse(t, d)
	rng := rand.New(rand.NewSource(13))
	fmt.Printf("\n%s\n%-12s %6s %12s %10s %12s %10s %8s   %s\n", d, "W (out×in)", "cols", "dense ms", "TFLOP/s", "2:4 ms", "TFLOP/s", "speedup", "2:4 ms after search (speedup)")
	for _, sh := range [][2]int{{4096, 4096}, {11008, 4096}} {
		m, k := sh[0], sh[1]
		s, err := kernels.Pack24(random24(rng, m, k), m, k, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := d.NewSparse(s, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		wd, err := d.upload(s.Unpack().U16)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{16, 512, 4096} {
			x := up16(t, d, randVec(rng, k*n))
			y, err := d.Alloc(int64(2 * m * n))
			if err != nil {
				t.Fatal(err)
			}
			g := Gemm{TransA: OpT, TransB: OpN, M: m, N: n, K: k, LDA: k, LDB: k, LDC: m, Batch: 1}
			dense := func() error { return d.gemm16(g, cudaR16F, wd.Ptr, x.Ptr, y.Ptr) }
			sparse := func() error { return sp.run(x.Ptr, y.Ptr, n) }
			td, err := timeIt(d, dense)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := timeIt(d, sparse)
			if err != nil {
				t.Fatal(err)
			}
			// Then with the configuration cusparseLtMatmulSearch picks.
			tuned := "-"
			if err := sp.Tune(x, y, n); err != nil {
				t.Logf("search: %v", err)
			} else if tt, err := timeIt(d, sparse); err == nil {
				tuned = fmt.Sprintf("%.4f (%.2f×)", tt*1e3, td/tt)
			}
			fl := 2 * float64(m) * float64(n) * float64(k)
			fmt.Printf("%-12s %6d %12.4f %10.1f %12.4f %10.1f %8.2f   %s\n", fmt.Sprintf("%d×%d", m, k), n,
				td*1e3, fl/td/1e12, ts*1e3, fl/ts/1e12, td/ts, tuned)
			x.Free()
			y.Free()
		}
		sp.Free()
		wd.Free()
	}
}

// timeIt runs f (on the worker thread) a few times to warm up, then times
// enough repetitions for ~0.2 s, all queued inside one worker job and
// followed by a synchronize; it returns seconds per call.
func timeIt(d *Device, f func() error) (float64, error) {
	var per float64
	err := d.w.do(func() error {
		sync := func() error { return d.l.drv.check("cuCtxSynchronize", d.l.drv.cuCtxSynchronize()) }
		for i := 0; i < 3; i++ {
			if err := f(); err != nil {
				return err
			}
		}
		if err := sync(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := f(); err != nil {
			return err
		}
		if err := sync(); err != nil {
			return err
		}
		iters := max(5, min(1000, int(0.2/math.Max(time.Since(t0).Seconds(), 1e-6))))
		t0 = time.Now()
		for i := 0; i < iters; i++ {
			if err := f(); err != nil {
				return err
			}
		}
		if err := sync(); err != nil {
			return err
		}
		per = time.Since(t0).Seconds() / float64(iters)
		return nil
	})
	return per, err
}

// TestGPULlamaLinears times the seven linear layers of one Llama-3.2-1B
// block (dim 2048, FFN 8192, 8 KV heads of 64) on the device, dense cuBLAS
// against ARMOR (b = 128: Pre and Post batched GEMMs, 2:4 core through
// cuSPARSELt), for a 512-token prefill and a 1-token decode step, and
// prints linear-only tokens/s for the 16 blocks (activations stay on the
// device; attention, norms and host transfers are not counted). Runs only
// with ARMOR_CUDA_BENCH=1.
func TestGPULlamaLinears(t *testing.T) {
	if os.Getenv("ARMOR_CUDA_BENCH") != "1" {
		t.Skip("set ARMOR_CUDA_BENCH=1 to time the GEMMs")
	}
	d := openGPU(t)
	needSparse(t, d)
	rng := rand.New(rand.NewSource(14))
	const dim, ffn, kv, layers, b = 2048, 8192, 512, 16, 128
	shapes := [][2]int{{dim, dim}, {kv, dim}, {kv, dim}, {dim, dim}, {ffn, dim}, {ffn, dim}, {dim, ffn}}
	type lin struct {
		m, k  int
		dense *Buffer
		armor *Layer
	}
	var ls []lin
	for _, sh := range shapes {
		a := armorRand(rng, sh[0], sh[1], b)
		al, err := d.NewArmorLayer(a, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		// The dense baseline: a dense matrix of the same shape.
		wd, err := d.upload(r16to16(randVec(rng, sh[0]*sh[1])))
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, lin{sh[0], sh[1], wd, al})
	}
	fmt.Printf("\nLlama-3.2-1B linears, %d blocks, f16, device-resident activations\n%-8s %14s %14s %8s\n", layers, "tokens", "dense tok/s", "ARMOR tok/s", "ratio")
	for _, n := range []int{512, 1} {
		np := PadCols(n)
		x, _ := d.Alloc(int64(2 * ffn * np))
		tb, _ := d.Alloc(int64(2 * ffn * np))
		u, _ := d.Alloc(int64(2 * ffn * np))
		y, _ := d.Alloc(int64(2 * ffn * np))
		dense := func() error {
			for _, l := range ls {
				g := Gemm{TransA: OpT, TransB: OpN, M: l.m, N: n, K: l.k, LDA: l.k, LDB: l.k, LDC: l.m, Batch: 1}
				if err := d.gemm16(g, cudaR16F, l.dense.Ptr, x.Ptr, y.Ptr); err != nil {
					return err
				}
			}
			return nil
		}
		armor := func() error {
			for _, l := range ls {
				for _, g := range l.armor.preGemm(np) {
					if err := d.gemm16(g, cudaR16F, l.armor.pre.Ptr, x.Ptr, tb.Ptr); err != nil {
						return err
					}
				}
				if err := l.armor.core.run(tb.Ptr, u.Ptr, np); err != nil {
					return err
				}
				for _, g := range l.armor.postGemm(np) {
					if err := d.gemm16(g, cudaR16F, l.armor.post.Ptr, u.Ptr, y.Ptr); err != nil {
						return err
					}
				}
			}
			return nil
		}
		// Let cuSPARSELt pick its fastest configuration for this width
		// (cuBLAS picks by heuristics at every call).
		if err := d.w.do(func() error {
			for _, l := range ls {
				if err := l.armor.core.search(tb.Ptr, u.Ptr, np); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Logf("search: %v (timing the default configuration)", err)
		}
		td, err := timeIt(d, dense)
		if err != nil {
			t.Fatal(err)
		}
		ta, err := timeIt(d, armor)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%-8d %14.0f %14.0f %8.2f\n", n, float64(n)/(layers*td), float64(n)/(layers*ta), td/ta)
		for _, bf := range []*Buffer{x, tb, u, y} {
			bf.Free()
		}
	}
	for _, l := range ls {
		l.dense.Free()
		l.armor.Free()
	}
}

func r16to16(v []float32) []uint16 {
	h := make([]uint16, len(v))
	to16(h, v, kernels.F16)
	return h
}
