package cuda

import (
	"errors"
	"testing"
)

func TestStatusNames(t *testing.T) {
	for _, c := range []struct {
		f    func(int) string
		code int
		want string
	}{
		{CUResultName, 0, "CUDA_SUCCESS"},
		{CUResultName, 100, "CUDA_ERROR_NO_DEVICE"},
		{CUResultName, 34, "CUDA_ERROR_STUB_LIBRARY"},
		{CUResultName, 218, "CUDA_ERROR_INVALID_PTX"},
		{CUResultName, 700, "CUDA_ERROR_ILLEGAL_ADDRESS"},
		{CudaErrorName, 35, "cudaErrorInsufficientDriver"},
		{CudaErrorName, 209, "cudaErrorNoKernelImageForDevice"},
		{CublasStatusName, 7, "CUBLAS_STATUS_INVALID_VALUE"},
		{CublasStatusName, 15, "CUBLAS_STATUS_NOT_SUPPORTED"},
		{CusparseStatusName, 3, "CUSPARSE_STATUS_INVALID_VALUE"},
		{CusparseStatusName, 10, "CUSPARSE_STATUS_NOT_SUPPORTED"},
		{CusparseStatusName, 12345, "cusparseStatus_12345 (unknown code)"},
	} {
		if got := c.f(c.code); got != c.want {
			t.Errorf("code %d: %q, want %q", c.code, got, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := check("cuInit", 0, CUResultName); err != nil {
		t.Fatal(err)
	}
	err := check("cusparseLtMatmul", 8, CusparseStatusName)
	var e *Error
	if !errors.As(err, &e) || e.Call != "cusparseLtMatmul" || e.Code != 8 {
		t.Fatalf("err = %#v", err)
	}
	if want := "cuda: cusparseLtMatmul failed: CUSPARSE_STATUS_MATRIX_TYPE_NOT_SUPPORTED (8)"; err.Error() != want {
		t.Fatalf("%q, want %q", err.Error(), want)
	}
}

func TestLtEnumsByVersion(t *testing.T) {
	for _, c := range []struct {
		v       int
		compute int32
		destroy bool
		bad     bool
	}{
		{100, 0, false, true},  // 0.1.0: old signatures
		{303, 0, false, true},  // 0.3.3
		{400, 0, false, false}, // 0.4.0: COMPUTE_16F = 0
		{501, 0, false, false}, // 0.5.1: last release with the old numbering
		{502, 2, false, false}, // 0.5.2: COMPUTE_32F = 2
		{602, 2, false, false}, // 0.6.2
		{700, 2, false, false},
		{801, 2, true, false}, // 0.8.1: AlgSelectionDestroy required
	} {
		e, err := LtEnumsFor(c.v)
		if c.bad {
			if err == nil {
				t.Errorf("version %d accepted", c.v)
			}
			continue
		}
		if err != nil || e.ComputeHalf != c.compute || e.HasAlgSelectionDestroy != c.destroy || e.Version != c.v {
			t.Errorf("version %d: %+v, %v", c.v, e, err)
		}
	}
	if s := LtVersionString(602); s != "0.6.2" {
		t.Errorf("LtVersionString(602) = %s", s)
	}
	if s := LtVersionString(1012); s != "1.0.12" {
		t.Errorf("LtVersionString(1012) = %s", s)
	}
	if OpaqueSize < 2*13072 || OpaqueAlign%256 != 0 {
		t.Errorf("opaque size %d align %d", OpaqueSize, OpaqueAlign)
	}
}
