package cuda

import "fmt"

// Error is a failed CUDA, cuBLAS or cuSPARSELt call.
type Error struct {
	Call string // the C function, e.g. "cusparseLtMatmul"
	Code int    // its status value
	Name string // the status name, e.g. "CUSPARSE_STATUS_INVALID_VALUE"
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s failed: %s (%d)", e.Call, e.Name, e.Code)
}

// Status tables for the codes one meets in practice. Values are from the
// public headers: cuda.h (CUresult), driver_types.h (cudaError_t),
// cublas_api.h (cublasStatus_t) and cusparse.h (cusparseStatus_t, which
// cuSPARSELt returns). Where the library offers a name function
// (cuGetErrorName, cublasGetStatusName, cusparseLtGetErrorName from 0.8) the
// loader prefers it; these tables are the fallback and what tests check.
var (
	cuResultNames = map[int]string{
		0: "CUDA_SUCCESS", 1: "CUDA_ERROR_INVALID_VALUE", 2: "CUDA_ERROR_OUT_OF_MEMORY",
		3: "CUDA_ERROR_NOT_INITIALIZED", 4: "CUDA_ERROR_DEINITIALIZED", 34: "CUDA_ERROR_STUB_LIBRARY",
		46: "CUDA_ERROR_DEVICE_UNAVAILABLE", 100: "CUDA_ERROR_NO_DEVICE", 101: "CUDA_ERROR_INVALID_DEVICE",
		102: "CUDA_ERROR_DEVICE_NOT_LICENSED", 200: "CUDA_ERROR_INVALID_IMAGE", 201: "CUDA_ERROR_INVALID_CONTEXT",
		209: "CUDA_ERROR_NO_BINARY_FOR_GPU", 218: "CUDA_ERROR_INVALID_PTX", 222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
		300: "CUDA_ERROR_INVALID_SOURCE", 301: "CUDA_ERROR_FILE_NOT_FOUND", 400: "CUDA_ERROR_INVALID_HANDLE",
		500: "CUDA_ERROR_NOT_FOUND", 600: "CUDA_ERROR_NOT_READY", 700: "CUDA_ERROR_ILLEGAL_ADDRESS",
		701: "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", 702: "CUDA_ERROR_LAUNCH_TIMEOUT", 719: "CUDA_ERROR_LAUNCH_FAILED",
		801: "CUDA_ERROR_NOT_SUPPORTED", 803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
		804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", 999: "CUDA_ERROR_UNKNOWN",
	}
	cudaErrorNames = map[int]string{
		0: "cudaSuccess", 1: "cudaErrorInvalidValue", 2: "cudaErrorMemoryAllocation",
		3: "cudaErrorInitializationError", 4: "cudaErrorCudartUnloading", 35: "cudaErrorInsufficientDriver",
		100: "cudaErrorNoDevice", 101: "cudaErrorInvalidDevice", 209: "cudaErrorNoKernelImageForDevice",
		400: "cudaErrorInvalidResourceHandle", 700: "cudaErrorIllegalAddress", 719: "cudaErrorLaunchFailure",
		801: "cudaErrorNotSupported", 999: "cudaErrorUnknown",
	}
	cublasNames = map[int]string{
		0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED",
		7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
		13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED",
		16: "CUBLAS_STATUS_LICENSE_ERROR",
	}
	cusparseNames = map[int]string{
		0: "CUSPARSE_STATUS_SUCCESS", 1: "CUSPARSE_STATUS_NOT_INITIALIZED", 2: "CUSPARSE_STATUS_ALLOC_FAILED",
		3: "CUSPARSE_STATUS_INVALID_VALUE", 4: "CUSPARSE_STATUS_ARCH_MISMATCH", 5: "CUSPARSE_STATUS_MAPPING_ERROR",
		6: "CUSPARSE_STATUS_EXECUTION_FAILED", 7: "CUSPARSE_STATUS_INTERNAL_ERROR",
		8: "CUSPARSE_STATUS_MATRIX_TYPE_NOT_SUPPORTED", 9: "CUSPARSE_STATUS_ZERO_PIVOT",
		10: "CUSPARSE_STATUS_NOT_SUPPORTED", 11: "CUSPARSE_STATUS_INSUFFICIENT_RESOURCES",
	}
)

func name(tab map[int]string, prefix string, code int) string {
	if n, ok := tab[code]; ok {
		return n
	}
	return fmt.Sprintf("%s_%d (unknown code)", prefix, code)
}

// CUResultName, CudaErrorName, CublasStatusName and CusparseStatusName name a
// status code of the driver API, the runtime API, cuBLAS and
// cuSPARSE/cuSPARSELt.
func CUResultName(c int) string       { return name(cuResultNames, "CUresult", c) }
func CudaErrorName(c int) string      { return name(cudaErrorNames, "cudaError", c) }
func CublasStatusName(c int) string   { return name(cublasNames, "cublasStatus", c) }
func CusparseStatusName(c int) string { return name(cusparseNames, "cusparseStatus", c) }

// Status checkers: nil for success, else an *Error naming call and status.
// namer, when non-nil, is the library's own name function.
func check(call string, code int, tab func(int) string) error {
	if code == 0 {
		return nil
	}
	return &Error{Call: call, Code: code, Name: tab(code)}
}
