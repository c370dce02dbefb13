package cuda

import "fmt"

// Enum values that do not depend on the cuSPARSELt version (public headers:
// library_types.h, cusparse.h, cublas_api.h). Sources are cited in ltenums
// comments below.
const (
	cudaR32F  = 0  // CUDA_R_32F
	cudaR16F  = 2  // CUDA_R_16F
	cudaR16BF = 14 // CUDA_R_16BF

	OrderCol = 1 // CUSPARSE_ORDER_COL (cusparse.h)
	OrderRow = 2 // CUSPARSE_ORDER_ROW

	OpN = 0 // CUSPARSE_OPERATION_NON_TRANSPOSE == CUBLAS_OP_N
	OpT = 1 // CUSPARSE_OPERATION_TRANSPOSE == CUBLAS_OP_T

	cublasCompute32F  = 68 // CUBLAS_COMPUTE_32F
	cublasGemmDefault = -1 // CUBLAS_GEMM_DEFAULT

	ltSparsity50  = 0 // CUSPARSELT_SPARSITY_50_PERCENT, the only value in every release
	ltMatmulAlgDf = 0 // CUSPARSELT_MATMUL_ALG_DEFAULT
	ltPruneTile   = 0 // CUSPARSELT_PRUNE_SPMMA_TILE
	ltPruneStrip  = 1 // CUSPARSELT_PRUNE_SPMMA_STRIP

	ltAlgConfigID         = 0 // CUSPARSELT_MATMUL_ALG_CONFIG_ID (stable 0.1 … 0.6.2 headers)
	ltAlgConfigMaxID      = 1 // CUSPARSELT_MATMUL_ALG_CONFIG_MAX_ID
	ltAlgSearchIterations = 2 // CUSPARSELT_MATMUL_SEARCH_ITERATIONS
)

// LtEnums are the cuSPARSELt values that moved between releases, chosen by
// the version the loaded library reports (cusparseLtGetVersion: major·1000 +
// minor·100 + patch, e.g. 602 for 0.6.2).
//
// What was found (code corpus: NVIDIA's cusparseLt.h of 0.1.0, 0.4.0 and
// 0.6.2 as vendored in public repositories; PyTorch's
// aten/src/ATen/native/sparse/cuda/cuSPARSELtOps.cpp; HIPIFY's cuSPARSELt
// tests; docs corpus: docs.nvidia.com/cuda/cusparselt release notes):
//
//   - cusparseComputeType up to 0.5.1 is {16F=0, 32I=1, TF32=2, TF32_FAST=3}
//     (headers 0.1.0, 0.4.0; HIPIFY guards TF32 with 100 ≤ VERSION ≤ 501);
//     from 0.5.2 it is {32I=0, 16F=1, 32F=2} (header 0.6.2; PyTorch: "v0.5.2
//     onwards changes CUSPARSE_COMPUTE_TF32, CUSPARSE_COMPUTE_16F to
//     CUSPARSE_COMPUTE_32F" and uses 32F for half and bfloat16). Before 0.5.2
//     half inputs use COMPUTE_16F, documented as "FP16 inputs/output, FP32
//     Tensor Core accumulate"; from 0.5.2 they use COMPUTE_32F. Both
//     accumulate in f32.
//   - The opaque structs grew: uint8_t data[1024] in 0.1.0, data[11024] in
//     0.4.0, data[13072] in 0.6.2 (see OpaqueSize).
//   - 0.1.0's cusparseLtMatmulGetWorkspace took the algorithm selection,
//     cusparseLtMatmulPlanInit a workspace size, and the compression calls had
//     no compress buffer; 0.4.0 has today's signatures, which the bindings
//     use, so older libraries are refused.
//   - 0.8.0 added cusparseLtMatmulAlgSelectionDestroy ("must be invoked") and
//     cusparseLtGetErrorName/String.
type LtEnums struct {
	Version int
	// ComputeHalf is the cusparseComputeType for f16/bf16 operands with f32
	// accumulation.
	ComputeHalf int32
	// HasAlgSelectionDestroy: the library requires (and exports)
	// cusparseLtMatmulAlgSelectionDestroy.
	HasAlgSelectionDestroy bool
}

// MinLtVersion is the oldest cuSPARSELt whose signatures the bindings match.
const MinLtVersion = 400

// LtEnumsFor returns the enum values for a cuSPARSELt version.
func LtEnumsFor(version int) (LtEnums, error) {
	if version < MinLtVersion {
		return LtEnums{}, fmt.Errorf("cuda: cuSPARSELt %s is older than 0.4.0, whose workspace and compression signatures the bindings use", LtVersionString(version))
	}
	e := LtEnums{Version: version}
	if version < 502 {
		e.ComputeHalf = 0 // CUSPARSE_COMPUTE_16F in the 0.1–0.5.1 numbering
	} else {
		e.ComputeHalf = 2 // CUSPARSE_COMPUTE_32F in the 0.5.2+ numbering
	}
	e.HasAlgSelectionDestroy = version >= 800
	return e, nil
}

// LtVersionString formats a cusparseLtGetVersion value as major.minor.patch.
func LtVersionString(v int) string { return fmt.Sprintf("%d.%d.%d", v/1000, v/100%10, v%100) }

// OpaqueSize is the size allocated for each opaque cuSPARSELt struct
// (handle, matrix and matmul descriptors, algorithm selection, plan). The
// library writes up to sizeof(struct) bytes: 13072 in 0.6.2, the largest
// published size found; we allocate over twice that so that a newer release
// that grows them again does not write past our memory.
const OpaqueSize = 32 << 10

// OpaqueAlign is the alignment of those structs. cuSPARSELt 0.8.0's release
// notes fix "host memory alignment of cusparseLtMatmulDescAttribute_t and
// cusparseLtMatmulAlgSelection_t that could cause crashes"; page alignment
// is more than any of its members can need.
const OpaqueAlign = 4096
