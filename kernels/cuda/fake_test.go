package cuda

import (
	"strings"
	"testing"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/kernels/cuda/cudatest"
)

// fakeDevice builds testdata/fakecuda.c (a CPU stand-in for libcuda,
// cuBLAS and cuSPARSELt with the real prototypes) with gcc, installs it under
// the real library names in a temporary folder and opens it through the
// normal discovery, dlopen and binding path. It skips without gcc or where a
// real driver is installed (both in one process could mix their symbols).
func fakeDevice(t *testing.T) *Device {
	t.Helper()
	if !dlSupported {
		t.Skip("no dlopen on this platform")
	}
	if _, err := (Search{}).Find(LibDriver); err == nil {
		t.Skip("a real CUDA driver is installed: the GPU tests cover this")
	}
	dir := cudatest.FakeLibs(t)
	d, err := OpenSearch(Search{Root: t.TempDir(), Getenv: env(map[string]string{"ARMOR_CUDA_LIBS": dir})}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// TestFakeDevice runs the device layer tests against the stand-in: every
// binding's argument order and types, the descriptors, padding, plan
// caching, compression flow and Forward's host conversions, without a GPU.
// (It checks our side against our reading of the APIs, not NVIDIA's
// libraries: the GPU tests do that.)
func TestFakeDevice(t *testing.T) {
	d := fakeDevice(t)
	if !strings.Contains(d.String(), "Fake CPU GPU (sm_90") || !strings.Contains(d.String(), "cuSPARSELt 0.6.2") {
		t.Fatalf("device: %s", d)
	}
	if d.Lt.ComputeHalf != 2 {
		t.Fatalf("enums for 0.6.2: %+v", d.Lt)
	}
	t.Run("dense", func(t *testing.T) { testDenseLayer(t, d) })
	t.Run("armor", func(t *testing.T) { testArmorLayers(t, d) })
	// The decode kernels' launches (arguments, grids) against the stand-in's
	// CPU versions; the PTX itself runs only on a GPU.
	t.Run("kernels", func(t *testing.T) { testKernels(t, d) })
	t.Run("errors", func(t *testing.T) {
		// A failing call comes back as an *Error naming the call and the
		// library's own status name.
		k, err := d.LoadKernels()
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.mod.Function("nope")
		if err == nil || !strings.Contains(err.Error(), "cuModuleGetFunction(nope) failed: CUDA_ERROR_NOT_FOUND (fake) (500)") {
			t.Fatalf("lookup: %v", err)
		}
		b, _ := d.Alloc(64)
		g := Gemm{TransA: OpN, TransB: OpN, M: 4, N: 4, K: 4, LDA: 2, LDB: 4, LDC: 4, Batch: 1}
		err = d.Gemm16(g, kernels.F16, b, b, b)
		if err == nil || !strings.Contains(err.Error(), "cublasGemmEx failed: CUBLAS_STATUS_INVALID_VALUE (fake) (7)") {
			t.Fatalf("gemm: %v", err)
		}
		if err := b.Upload(60, make([]uint16, 4)); err == nil {
			t.Fatal("upload past the end accepted")
		}
		b.Free()
		// Column panels (a CPU layout) are refused, not uploaded as rows.
		w := (&kernels.Dense{DType: kernels.F16, Rows: 16, Cols: 8224, U16: make([]uint16, 16*8224)}).Panelize(nil)
		if _, err := d.NewDenseLayer(w, nil, kernels.F16); err == nil || !strings.Contains(err.Error(), "column panels") {
			t.Fatalf("dense in panels: %v", err)
		}
		s, err := kernels.Pack24(make([]float32, 16*8224), 16, 8224, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.NewSparseLayer(s.Panelize(nil), nil, kernels.F16); err == nil || !strings.Contains(err.Error(), "column panels") {
			t.Fatalf("2:4 in panels: %v", err)
		}
	})
}
