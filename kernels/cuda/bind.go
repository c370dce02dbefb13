package cuda

import (
	"fmt"
	"path/filepath"
	"unsafe"
)

// sym is one C function to bind: fn points to a Go func variable.
type sym struct {
	name     string
	fn       any
	optional bool
}

// bind looks up every symbol in h and registers it; a missing required
// symbol is an error naming it and the library.
func bind(h uintptr, path string, syms []sym) error {
	for _, s := range syms {
		p, err := dlsym(h, s.name)
		if err != nil || p == 0 {
			if s.optional {
				continue
			}
			return fmt.Errorf("cuda: %s lacks symbol %s (library too old?): %v", path, s.name, err)
		}
		registerFunc(s.fn, p)
	}
	return nil
}

// cString reads a NUL-terminated C string (from a name function).
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var n int
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// driverAPI is the part of libcuda the backend calls (_v2 symbols where the
// header maps the name to one).
type driverAPI struct {
	cuInit                    func(flags uint32) int32
	cuDriverGetVersion        func(v *int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGet               func(dev *int32, ordinal int32) int32
	cuDeviceGetName           func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem          func(b *uint64, dev int32) int32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease func(dev int32) int32
	cuCtxSetCurrent           func(ctx uintptr) int32
	cuCtxSynchronize          func() int32
	cuMemAlloc                func(p *uintptr, n uint64) int32
	cuMemFree                 func(p uintptr) int32
	cuMemcpyHtoD              func(dst uintptr, src unsafe.Pointer, n uint64) int32
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uintptr, n uint64) int32
	cuMemsetD8                func(dst uintptr, v uint8, n uint64) int32
	cuModuleLoadData          func(m *uintptr, image unsafe.Pointer) int32
	cuModuleUnload            func(m uintptr) int32
	cuModuleGetFunction       func(f *uintptr, m uintptr, name *byte) int32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params *unsafe.Pointer, extra *unsafe.Pointer) int32
	cuGetErrorName            func(res int32, s **byte) int32
}

func (a *driverAPI) syms() []sym {
	return []sym{
		{"cuInit", &a.cuInit, false},
		{"cuDriverGetVersion", &a.cuDriverGetVersion, false},
		{"cuDeviceGetCount", &a.cuDeviceGetCount, false},
		{"cuDeviceGet", &a.cuDeviceGet, false},
		{"cuDeviceGetName", &a.cuDeviceGetName, false},
		{"cuDeviceGetAttribute", &a.cuDeviceGetAttribute, false},
		{"cuDeviceTotalMem_v2", &a.cuDeviceTotalMem, false},
		{"cuDevicePrimaryCtxRetain", &a.cuDevicePrimaryCtxRetain, false},
		{"cuDevicePrimaryCtxRelease_v2", &a.cuDevicePrimaryCtxRelease, false},
		{"cuCtxSetCurrent", &a.cuCtxSetCurrent, false},
		{"cuCtxSynchronize", &a.cuCtxSynchronize, false},
		{"cuMemAlloc_v2", &a.cuMemAlloc, false},
		{"cuMemFree_v2", &a.cuMemFree, false},
		{"cuMemcpyHtoD_v2", &a.cuMemcpyHtoD, false},
		{"cuMemcpyDtoH_v2", &a.cuMemcpyDtoH, false},
		{"cuMemsetD8_v2", &a.cuMemsetD8, false},
		{"cuModuleLoadData", &a.cuModuleLoadData, false},
		{"cuModuleUnload", &a.cuModuleUnload, false},
		{"cuModuleGetFunction", &a.cuModuleGetFunction, false},
		{"cuLaunchKernel", &a.cuLaunchKernel, false},
		{"cuGetErrorName", &a.cuGetErrorName, true},
	}
}

// check turns a CUresult into an error naming the call, using the driver's
// own name when it has one.
func (a *driverAPI) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	n := CUResultName(int(r))
	if a.cuGetErrorName != nil {
		var p *byte
		if a.cuGetErrorName(r, &p) == 0 && p != nil {
			n = cString(p)
		}
	}
	return &Error{Call: call, Code: int(r), Name: n}
}

// cublasAPI is the part of cuBLAS the backend calls.
type cublasAPI struct {
	cublasCreate     func(h *uintptr) int32
	cublasDestroy    func(h uintptr) int32
	cublasSetStream  func(h uintptr, s uintptr) int32
	cublasGetVersion func(h uintptr, v *int32) int32
	cublasGemmEx     func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer,
		a uintptr, atype int32, lda int32, b uintptr, btype int32, ldb int32, beta unsafe.Pointer,
		c uintptr, ctype int32, ldc int32, compute int32, algo int32) int32
	cublasGemmStridedBatchedEx func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer,
		a uintptr, atype int32, lda int32, strideA int64, b uintptr, btype int32, ldb int32, strideB int64,
		beta unsafe.Pointer, c uintptr, ctype int32, ldc int32, strideC int64, batch int32, compute int32, algo int32) int32
	cublasGetStatusName func(s int32) *byte
}

func (a *cublasAPI) syms() []sym {
	return []sym{
		{"cublasCreate_v2", &a.cublasCreate, false},
		{"cublasDestroy_v2", &a.cublasDestroy, false},
		{"cublasSetStream_v2", &a.cublasSetStream, false},
		{"cublasGetVersion_v2", &a.cublasGetVersion, false},
		{"cublasGemmEx", &a.cublasGemmEx, false},
		{"cublasGemmStridedBatchedEx", &a.cublasGemmStridedBatchedEx, false},
		{"cublasGetStatusName", &a.cublasGetStatusName, true},
	}
}

func (a *cublasAPI) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	n := CublasStatusName(int(r))
	if a.cublasGetStatusName != nil {
		if p := a.cublasGetStatusName(r); p != nil {
			n = cString(p)
		}
	}
	return &Error{Call: call, Code: int(r), Name: n}
}

// ltAPI is the part of cuSPARSELt (≥ 0.4 signatures) the backend calls. All
// struct arguments are pointers to opaque memory from newOpaque.
type ltAPI struct {
	init            func(h unsafe.Pointer) int32
	destroy         func(h unsafe.Pointer) int32
	getVersion      func(h unsafe.Pointer, v *int32) int32
	structuredInit  func(h, mat unsafe.Pointer, rows, cols, ld int64, align uint32, vtype int32, order int32, sparsity int32) int32
	denseInit       func(h, mat unsafe.Pointer, rows, cols, ld int64, align uint32, vtype int32, order int32) int32
	matDestroy      func(mat unsafe.Pointer) int32
	matmulInit      func(h, mm unsafe.Pointer, opA, opB int32, a, b, c, d unsafe.Pointer, compute int32) int32
	algInit         func(h, alg, mm unsafe.Pointer, algo int32) int32
	algSetAttribute func(h, alg unsafe.Pointer, attr int32, data unsafe.Pointer, size uint64) int32
	algDestroy      func(alg unsafe.Pointer) int32
	planInit        func(h, plan, mm, alg unsafe.Pointer) int32
	planDestroy     func(plan unsafe.Pointer) int32
	getWorkspace    func(h, plan unsafe.Pointer, size *uint64) int32
	matmul          func(h, plan unsafe.Pointer, alpha unsafe.Pointer, a, b uintptr, beta unsafe.Pointer, c, d, ws uintptr, streams *uintptr, nstreams int32) int32
	matmulSearch    func(h, plan unsafe.Pointer, alpha unsafe.Pointer, a, b uintptr, beta unsafe.Pointer, c, d, ws uintptr, streams *uintptr, nstreams int32) int32
	pruneCheck2     func(h, mat unsafe.Pointer, isSparseA int32, op int32, d uintptr, valid uintptr, stream uintptr) int32
	compressedSize2 func(h, mat unsafe.Pointer, size, bufSize *uint64) int32
	compress2       func(h, mat unsafe.Pointer, isSparseA int32, op int32, dense, compressed, buf uintptr, stream uintptr) int32
	getErrorName    func(s int32) *byte
}

func (a *ltAPI) syms() []sym {
	return []sym{
		{"cusparseLtInit", &a.init, false},
		{"cusparseLtDestroy", &a.destroy, false},
		{"cusparseLtGetVersion", &a.getVersion, false},
		{"cusparseLtStructuredDescriptorInit", &a.structuredInit, false},
		{"cusparseLtDenseDescriptorInit", &a.denseInit, false},
		{"cusparseLtMatDescriptorDestroy", &a.matDestroy, false},
		{"cusparseLtMatmulDescriptorInit", &a.matmulInit, false},
		{"cusparseLtMatmulAlgSelectionInit", &a.algInit, false},
		{"cusparseLtMatmulAlgSetAttribute", &a.algSetAttribute, false},
		// 0.8.0's release notes call it cusparseLtAlgSelectionDestroy; the
		// function list names cusparseLtMatmulAlgSelectionDestroy: try both
		// (see ltAlgDestroyNames in Open).
		{"cusparseLtMatmulAlgSelectionDestroy", &a.algDestroy, true},
		{"cusparseLtMatmulPlanInit", &a.planInit, false},
		{"cusparseLtMatmulPlanDestroy", &a.planDestroy, false},
		{"cusparseLtMatmulGetWorkspace", &a.getWorkspace, false},
		{"cusparseLtMatmul", &a.matmul, false},
		{"cusparseLtMatmulSearch", &a.matmulSearch, true},
		{"cusparseLtSpMMAPruneCheck2", &a.pruneCheck2, false},
		{"cusparseLtSpMMACompressedSize2", &a.compressedSize2, false},
		{"cusparseLtSpMMACompress2", &a.compress2, false},
		{"cusparseLtGetErrorName", &a.getErrorName, true},
	}
}

func (a *ltAPI) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	n := CusparseStatusName(int(r))
	if a.getErrorName != nil {
		if p := a.getErrorName(r); p != nil {
			n = cString(p)
		}
	}
	return &Error{Call: call, Code: int(r), Name: n}
}

// opaque is host memory for one cuSPARSELt struct: OpaqueSize bytes at an
// OpaqueAlign boundary inside a Go byte slice (never moved by the GC, and
// holding no Go pointers, so the library may write anything into it).
type opaque struct {
	mem []byte
	p   unsafe.Pointer
}

func newOpaque() *opaque {
	mem := make([]byte, OpaqueSize+OpaqueAlign)
	off := (OpaqueAlign - int(uintptr(unsafe.Pointer(&mem[0]))%OpaqueAlign)) % OpaqueAlign
	return &opaque{mem: mem, p: unsafe.Pointer(&mem[off])}
}

// libDir returns the folder of a found library (for companions).
func libDir(path string) string { return filepath.Dir(path) }
