package runtime

import (
	"math"
	"math/rand"
	"os"
	"testing"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/kernels/cuda"
)

func TestCUDALinearNoDevice(t *testing.T) {
	if _, err := NewCUDALinear(nil, &Dense{}, kernels.F16); err == nil {
		t.Fatal("nil device accepted")
	}
}

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
