package cuda

import (
	"fmt"
	"unsafe"

	"github.com/armor-llm/armor/kernels"
)

func cudaType(dt kernels.DType) (int32, error) {
	switch dt {
	case kernels.F16:
		return cudaR16F, nil
	case kernels.BF16:
		return cudaR16BF, nil
	}
	return 0, fmt.Errorf("cuda: device dtype %v (want f16 or bf16)", dt)
}

// gemm16 issues g on 16-bit buffers a, b, c (device addresses of element 0;
// g's offsets are in elements) with f32 accumulation, alpha 1, beta 0. It
// runs on the worker thread.
func (d *Device) gemm16(g Gemm, t int32, a, b, c uintptr) error {
	alpha, beta := float32(1), float32(0)
	pa, pb, pc := a+uintptr(2*g.OffA), b+uintptr(2*g.OffB), c+uintptr(2*g.OffC)
	if g.Batch == 1 {
		r := d.l.blas.cublasGemmEx(d.blas, int32(g.TransA), int32(g.TransB), int32(g.M), int32(g.N), int32(g.K),
			unsafe.Pointer(&alpha), pa, t, int32(g.LDA), pb, t, int32(g.LDB),
			unsafe.Pointer(&beta), pc, t, int32(g.LDC), cublasCompute32F, cublasGemmDefault)
		return d.l.blas.check("cublasGemmEx", r)
	}
	r := d.l.blas.cublasGemmStridedBatchedEx(d.blas, int32(g.TransA), int32(g.TransB), int32(g.M), int32(g.N), int32(g.K),
		unsafe.Pointer(&alpha), pa, t, int32(g.LDA), int64(g.StrideA), pb, t, int32(g.LDB), int64(g.StrideB),
		unsafe.Pointer(&beta), pc, t, int32(g.LDC), int64(g.StrideC), int32(g.Batch), cublasCompute32F, cublasGemmDefault)
	return d.l.blas.check("cublasGemmStridedBatchedEx", r)
}

// Gemm16 runs one product description on 16-bit device buffers (for tests
// and benchmarks; layers call gemm16 inside their own worker job).
func (d *Device) Gemm16(g Gemm, dt kernels.DType, a, b, c *Buffer) error {
	t, err := cudaType(dt)
	if err != nil {
		return err
	}
	return d.w.do(func() error { return d.gemm16(g, t, a.Ptr, b.Ptr, c.Ptr) })
}
