// Package cuda is armor's NVIDIA backend, bound without cgo through
// github.com/ebitengine/purego: the CUDA driver API (libcuda.so.1) for the
// context, memory and PTX kernels, cuBLAS for dense and block-diagonal
// products, and cuSPARSELt for 2:4 products on the sparse tensor cores.
//
// Everything that does not need a GPU is plain Go and tested everywhere:
// library discovery (discover.go), status-code names (status.go), the
// cuSPARSELt enum values by library version (ltenums.go), and the host-side
// layouts the device calls declare (layout.go, plan.go). The calls
// themselves (device.go, blas.go, sparselt.go, module.go) are only built on
// linux/amd64 and linux/arm64, where purego can dlopen without cgo; other
// platforms get Open returning an error.
//
// All CUDA calls of a Device run on one goroutine locked to its OS thread,
// because a driver-API context is current per OS thread.
package cuda
