package runtime

import (
	"math"
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/kernels/cuda"
	"github.com/armor-llm/armor/kernels/cuda/cudatest"
	"github.com/armor-llm/armor/model"
)

func TestCUDALinearNoDevice(t *testing.T) {
	if _, err := NewCUDALinear(nil, &Dense{}, kernels.F16); err == nil || !strings.Contains(err.Error(), "no CUDA device") {
		t.Fatalf("nil device: %v", err)
	}
	// A layer without the CUDAPlacer interface has no device version.
	if _, err := NewCUDALinear(nil, hostOnly{}, kernels.F16); err == nil || !strings.Contains(err.Error(), "no device version of runtime.hostOnly") {
		t.Fatalf("host-only layer: %v", err)
	}
}

// hostOnly is a Linear without a GPU version.
type hostOnly struct{}

func (hostOnly) In() int                            { return 4 }
func (hostOnly) Out() int                           { return 4 }
func (hostOnly) Forward(y, x []float32)             {}
func (hostOnly) ForwardBatch(y, x []float32, n int) {}
func (hostOnly) WeightBytes() int64                 { return 0 }

// TestCUDALinearGPU compares a placed dense layer with its host version; it
// skips (with the reason) without a GPU.
func TestCUDALinearGPU(t *testing.T) {
	dev, err := cuda.Open(0)
	if err != nil {
		if os.Getenv("ARMOR_REQUIRE_GPU") == "1" {
			t.Fatal(err)
		}
		t.Skipf("no usable GPU: %v", err)
	}
	defer dev.Close()
	rng := rand.New(rand.NewSource(1))
	out, in, n := 96, 64, 5
	w := kernels.Dense{DType: kernels.F32, Rows: out, Cols: in, F32: make([]float32, out*in)}
	for i := range w.F32 {
		w.F32[i] = float32(rng.NormFloat64())
	}
	host := &Dense{W: w, Bias: make([]float32, out)}
	for i := range host.Bias {
		host.Bias[i] = float32(i)
	}
	c, err := NewCUDALinear(dev, host, kernels.F16)
	if err != nil {
		t.Fatal(err)
	}
	var failed error
	c.OnError = func(err error) { failed = err }
	x := make([]float32, n*in)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	want, got := make([]float32, n*out), make([]float32, n*out)
	host.ForwardBatch(want, x, n)
	c.ForwardBatch(got, x, n)
	if failed != nil {
		t.Fatal(failed)
	}
	var num, den float64
	for i := range want {
		num += float64(got[i]-want[i]) * float64(got[i]-want[i])
		den += float64(want[i]) * float64(want[i])
	}
	if rel := math.Sqrt(num / den); rel > 3e-3 {
		t.Fatalf("relative error %.3g", rel)
	}
}

// TestCUDABuilderFake places layers on the CPU stand-in libraries of
// kernels/cuda/testdata/fakecuda.c (built with gcc; skipped without it or
// where a real driver is installed): placed layers match the host ones, and
// a layer cuSPARSELt cannot take stays on the host with the reason given.
func TestCUDABuilderFake(t *testing.T) {
	if !cuda.Supported() {
		t.Skip("this build has no CUDA backend")
	}
	if _, err := (cuda.Search{}).Find(cuda.LibDriver); err == nil {
		t.Skip("a real CUDA driver is installed")
	}
	dir := cudatest.FakeLibs(t)
	dev, err := cuda.OpenSearch(cuda.Search{Root: t.TempDir(), Getenv: func(k string) string {
		if k == "ARMOR_CUDA_LIBS" {
			return dir
		}
		return ""
	}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	rng := rand.New(rand.NewSource(2))
	mk := func(out, in int) *Sparse {
		w := make([]float32, out*in)
		for i := 0; i < out; i++ {
			for g := 0; g < in/4; g++ {
				w[i*in+4*g+rng.Intn(2)] = float32(rng.NormFloat64())
				w[i*in+4*g+2+rng.Intn(2)] = float32(rng.NormFloat64())
			}
		}
		s, err := kernels.Pack24(w, out, in, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		return &Sparse{W: *s, Bias: make([]float32, out)}
	}
	layers := map[string]Linear{"ok": mk(32, 48), "odd": mk(20, 40)}
	var fell []string
	build := CUDABuilder(dev, func(_ *model.Model, name string) (Linear, error) { return layers[name], nil },
		kernels.F16, func(name string, err error) { fell = append(fell, name+": "+err.Error()) }, nil)
	for _, name := range []string{"ok", "odd"} {
		l, err := build(nil, name)
		if err != nil {
			t.Fatal(err)
		}
		_, placed := l.(*CUDALinear)
		if placed != (name == "ok") {
			t.Fatalf("%s: placed = %v", name, placed)
		}
		n := 3
		x := make([]float32, n*l.In())
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		want, got := make([]float32, n*l.Out()), make([]float32, n*l.Out())
		layers[name].ForwardBatch(want, x, n)
		l.ForwardBatch(got, x, n)
		var num, den float64
		for i := range want {
			num += float64(got[i]-want[i]) * float64(got[i]-want[i])
			den += float64(want[i]) * float64(want[i])
		}
		if rel := math.Sqrt(num / den); rel > 3e-3 {
			t.Fatalf("%s: relative error %.3g", name, rel)
		}
	}
	if len(fell) != 1 || !strings.Contains(fell[0], "odd: cuda: 2:4 weight 20×40: cuSPARSELt needs both sizes multiples of 16") {
		t.Fatalf("fallbacks: %q", fell)
	}
}
