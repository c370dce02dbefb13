// A CPU stand-in for libcuda, libcublas and libcusparseLt, for testing the
// Go bindings without a GPU: every function the bindings use, with the
// real prototypes (cuda.h, cublas_api.h, cusparseLt.h 0.6), on host memory.
// "Device" pointers are malloc'd host pointers. GEMMs are naive loops over
// f16 (_Float16) with float accumulation; cuSPARSELt's "compressed" matrix
// is the dense pruned one, and its products follow the descriptors, so the
// Go side's arguments, argument order and orchestration are exercised.
// Kernels are emulated by name on the CPU.
//
// Built by the tests: gcc -shared -fPIC -O1 -o libfake.so fakecuda.c -lm
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef unsigned long long CUdeviceptr;
typedef void *CUstream;
typedef _Float16 half;

CUresult cuInit(unsigned int flags) { return 0; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(CUdevice *d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char *name, int len, CUdevice d) { strncpy(name, "Fake CPU GPU", len); return 0; }
CUresult cuDeviceGetAttribute(int *v, int attr, CUdevice d) { *v = attr == 75 ? 9 : attr == 76 ? 0 : 0; return 0; }
CUresult cuDeviceTotalMem_v2(size_t *b, CUdevice d) { *b = (size_t)1 << 30; return 0; }
static int ctx_dummy;
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { *c = &ctx_dummy; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) { return 0; }
CUresult cuCtxSetCurrent(CUcontext c) { return c == &ctx_dummy ? 0 : 201; }
CUresult cuCtxSynchronize(void) { return 0; }
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) { void *m = malloc(n); if (!m) return 2; *p = (CUdeviceptr)m; return 0; }
CUresult cuMemFree_v2(CUdeviceptr p) { free((void *)p); return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { memcpy((void *)dst, src, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { memcpy(dst, (void *)src, n); return 0; }
CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n) { memset((void *)dst, v, n); return 0; }
CUresult cuModuleLoadData(void **m, const void *img) { *m = (void *)img; return 0; }
CUresult cuModuleUnload(void *m) { return 0; }

// Kernels are emulated on the CPU (same semantics as kernels.cu, whole grid
// at once), so the Go side's launch arguments and grids are exercised.
static const char *kernels[] = {"rmsnorm_f32_f16", "rope_f32", "attn_decode_f16", "silu_mul_f16",
                                "add_f16_to_f32", "f32_to_f16", "f16_to_f32", 0};
CUresult cuModuleGetFunction(void **f, void *m, const char *name) {
  for (int i = 0; kernels[i]; i++)
    if (!strcmp(kernels[i], name)) { *f = (void *)kernels[i]; return 0; }
  return 500;
}

#define P(i, T) (*(T *)params[i])
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, CUstream s, void **params, void **extra) {
  const char *k = f;
  if (bx == 0 || bx > 1024 || by != 1 || bz != 1 || gz != 1 || extra) return 1;
  if (!strcmp(k, "rmsnorm_f32_f16")) {
    half *out = P(0, half *); const float *x = P(1, float *), *w = P(2, float *);
    int dim = P(3, int); float eps = P(4, float);
    for (unsigned t = 0; t < gx; t++) {
      float ss = 0;
      for (int i = 0; i < dim; i++) ss += x[t * dim + i] * x[t * dim + i];
      float r = 1.0f / sqrtf(ss / dim + eps);
      for (int i = 0; i < dim; i++) out[t * dim + i] = (half)(x[t * dim + i] * r * w[i]);
    }
  } else if (!strcmp(k, "rope_f32")) {
    float *x = P(0, float *); const float *c = P(1, float *), *sn = P(2, float *);
    int heads = P(3, int), hd = P(4, int), pos0 = P(5, int), neox = P(6, int), half_ = hd / 2;
    if ((int)gy != heads) return 1;
    for (unsigned t = 0; t < gx; t++)
      for (int h = 0; h < heads; h++)
        for (int i = 0; i < half_; i++) {
          float *v = x + ((long)t * heads + h) * hd;
          int a = neox ? i : 2 * i, b = neox ? i + half_ : 2 * i + 1;
          float cc = c[(pos0 + t) * half_ + i], ss = sn[(pos0 + t) * half_ + i], x0 = v[a], x1 = v[b];
          v[a] = x0 * cc - x1 * ss;
          v[b] = x0 * ss + x1 * cc;
        }
  } else if (!strcmp(k, "attn_decode_f16")) {
    float *out = P(0, float *); const float *q = P(1, float *);
    const half *kc = P(2, half *), *vc = P(3, half *);
    int heads = P(4, int), kvh = P(5, int), hd = P(6, int), len = P(7, int); float scale = P(8, float);
    if ((int)gx != heads || shmem < 4 * (unsigned)len) return 1;
    float *sc = malloc(sizeof(float) * len);
    for (int h = 0; h < heads; h++) {
      int g = h / (heads / kvh);
      float mx = -3e38f, sum = 0;
      for (int p = 0; p < len; p++) {
        float d = 0;
        for (int i = 0; i < hd; i++) d += q[h * hd + i] * (float)kc[((long)p * kvh + g) * hd + i];
        sc[p] = d * scale;
        if (sc[p] > mx) mx = sc[p];
      }
      for (int p = 0; p < len; p++) { sc[p] = expf(sc[p] - mx); sum += sc[p]; }
      for (int i = 0; i < hd; i++) {
        float acc = 0;
        for (int p = 0; p < len; p++) acc += sc[p] * (float)vc[((long)p * kvh + g) * hd + i];
        out[h * hd + i] = acc / sum;
      }
    }
    free(sc);
  } else {
    int n = P(k[0] == 's' ? 3 : 2, int);
    if ((long)gx * bx < n) return 1;
    if (!strcmp(k, "silu_mul_f16")) {
      half *o = P(0, half *); const half *g = P(1, half *), *u = P(2, half *);
      for (int i = 0; i < n; i++) { float x = g[i]; o[i] = (half)(x / (1 + expf(-x)) * (float)u[i]); }
    } else if (!strcmp(k, "add_f16_to_f32")) {
      float *x = P(0, float *); const half *h = P(1, half *);
      for (int i = 0; i < n; i++) x[i] += (float)h[i];
    } else if (!strcmp(k, "f32_to_f16")) {
      half *o = P(0, half *); const float *x = P(1, float *);
      for (int i = 0; i < n; i++) o[i] = (half)x[i];
    } else if (!strcmp(k, "f16_to_f32")) {
      float *o = P(0, float *); const half *h = P(1, half *);
      for (int i = 0; i < n; i++) o[i] = (float)h[i];
    }
  }
  return 0;
}
CUresult cuGetErrorName(CUresult r, const char **s) { *s = r == 500 ? "CUDA_ERROR_NOT_FOUND (fake)" : "CUDA_ERROR_FAKE"; return 0; }

// ---- cuBLAS ----
typedef int cublasStatus_t;
static int blas_dummy;
cublasStatus_t cublasCreate_v2(void **h) { *h = &blas_dummy; return 0; }
cublasStatus_t cublasDestroy_v2(void *h) { return h == &blas_dummy ? 0 : 1; }
cublasStatus_t cublasSetStream_v2(void *h, CUstream s) { return 0; }
cublasStatus_t cublasGetVersion_v2(void *h, int *v) { *v = 130000; return 0; }
const char *cublasGetStatusName(cublasStatus_t s) { return s == 7 ? "CUBLAS_STATUS_INVALID_VALUE (fake)" : "CUBLAS_STATUS_FAKE"; }

// C (m×n, ldc) = op(A)·op(B), column-major f16, float accumulation.
static void gemm(int ta, int tb, int m, int n, int k, float alpha, const half *a, int lda, const half *b, int ldb,
                 float beta, half *c, int ldc) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      float s = 0;
      for (int p = 0; p < k; p++) {
        float av = ta ? (float)a[i * (long)lda + p] : (float)a[p * (long)lda + i];
        float bv = tb ? (float)b[p * (long)ldb + j] : (float)b[j * (long)ldb + p];
        s += av * bv;
      }
      float old = beta != 0 ? (float)c[j * (long)ldc + i] : 0;
      c[j * (long)ldc + i] = (half)(alpha * s + beta * old);
    }
}

static int gemm_args_ok(int ta, int tb, int m, int n, int k, int at, int lda, int bt, int ldb, int ct, int ldc,
                        int compute) {
  if (at != 2 || bt != 2 || ct != 2 || compute != 68) return 0; // CUDA_R_16F, CUBLAS_COMPUTE_32F
  if (m <= 0 || n <= 0 || k <= 0 || (ta != 0 && ta != 1) || (tb != 0 && tb != 1)) return 0;
  if (lda < (ta ? k : m) || ldb < (tb ? n : k) || ldc < m) return 0;
  return 1;
}

cublasStatus_t cublasGemmEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int at,
                            int lda, const void *B, int bt, int ldb, const void *beta, void *C, int ct, int ldc,
                            int compute, int algo) {
  if (h != &blas_dummy || !gemm_args_ok(ta, tb, m, n, k, at, lda, bt, ldb, ct, ldc, compute) || algo != -1) return 7;
  gemm(ta, tb, m, n, k, *(const float *)alpha, A, lda, B, ldb, *(const float *)beta, C, ldc);
  return 0;
}

cublasStatus_t cublasGemmStridedBatchedEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha,
                                          const void *A, int at, int lda, long long sA, const void *B, int bt, int ldb,
                                          long long sB, const void *beta, void *C, int ct, int ldc, long long sC,
                                          int batch, int compute, int algo) {
  if (h != &blas_dummy || !gemm_args_ok(ta, tb, m, n, k, at, lda, bt, ldb, ct, ldc, compute) || algo != -1 ||
      batch <= 0)
    return 7;
  for (int i = 0; i < batch; i++)
    gemm(ta, tb, m, n, k, *(const float *)alpha, (const half *)A + i * sA, lda, (const half *)B + i * sB, ldb,
         *(const float *)beta, (half *)C + i * sC, ldc);
  return 0;
}

// ---- cuSPARSELt (0.6 prototypes; opaque structs hold these records) ----
typedef int cusparseStatus_t;
typedef struct { int magic; int64_t rows, cols, ld; int type, order, sparse; } mat_t;
typedef struct { int magic; int opA, opB, compute; const mat_t *a, *b, *c, *d; } mm_t;
typedef struct { int magic; const mm_t *mm; int searched; } plan_t;
#define MAGIC 0x5a17
static int lt_inited;

cusparseStatus_t cusparseLtInit(void *h) { memset(h, 0, 13072); *(int *)h = MAGIC; lt_inited = 1; return 0; }
cusparseStatus_t cusparseLtDestroy(const void *h) { return *(const int *)h == MAGIC ? 0 : 1; }
cusparseStatus_t cusparseLtGetVersion(const void *h, int *v) { *v = 602; return 0; }
const char *cusparseLtGetErrorName(cusparseStatus_t s) { return s == 3 ? "CUSPARSE_STATUS_INVALID_VALUE (fake)" : "CUSPARSE_STATUS_FAKE"; }

static cusparseStatus_t desc(const void *h, void *m, int64_t rows, int64_t cols, int64_t ld, uint32_t align, int type,
                             int order, int sparse) {
  if (*(const int *)h != MAGIC || align != 16 || type != 2 || (order != 1 && order != 2)) return 3;
  if (ld < (order == 2 ? cols : rows) || rows <= 0 || cols <= 0) return 3;
  if (sparse && (rows % 16 || cols % 16)) return 3;
  mat_t *d = m;
  d->magic = MAGIC; d->rows = rows; d->cols = cols; d->ld = ld; d->type = type; d->order = order; d->sparse = sparse;
  return 0;
}
cusparseStatus_t cusparseLtStructuredDescriptorInit(const void *h, void *m, int64_t rows, int64_t cols, int64_t ld,
                                                    uint32_t align, int type, int order, int sparsity) {
  if (sparsity != 0) return 3;
  return desc(h, m, rows, cols, ld, align, type, order, 1);
}
cusparseStatus_t cusparseLtDenseDescriptorInit(const void *h, void *m, int64_t rows, int64_t cols, int64_t ld,
                                               uint32_t align, int type, int order) {
  return desc(h, m, rows, cols, ld, align, type, order, 0);
}
cusparseStatus_t cusparseLtMatDescriptorDestroy(const void *m) { return ((const mat_t *)m)->magic == MAGIC ? 0 : 3; }

static int64_t op_rows(const mat_t *m, int op) { return op ? m->cols : m->rows; }
static int64_t op_cols(const mat_t *m, int op) { return op ? m->rows : m->cols; }
// Element (i, j) of op(m).
static float at(const mat_t *m, int op, const half *p, int64_t i, int64_t j) {
  int64_t r = op ? j : i, c = op ? i : j;
  return (float)p[m->order == 2 ? r * m->ld + c : c * m->ld + r];
}

cusparseStatus_t cusparseLtMatmulDescriptorInit(const void *h, void *mm, int opA, int opB, const void *a,
                                                const void *b, const void *c, const void *d, int compute) {
  const mat_t *A = a, *B = b, *C = c, *D = d;
  if (*(const int *)h != MAGIC || compute != 2 || !A->sparse || B->sparse) return 3; // COMPUTE_32F in 0.6
  if (op_cols(A, opA) != op_rows(B, opB) || op_rows(A, opA) != C->rows || op_cols(B, opB) != C->cols || C != D)
    return 3;
  mm_t *x = mm;
  x->magic = MAGIC; x->opA = opA; x->opB = opB; x->compute = compute; x->a = A; x->b = B; x->c = C; x->d = D;
  return 0;
}
cusparseStatus_t cusparseLtMatmulAlgSelectionInit(const void *h, void *alg, const void *mm, int algo) {
  if (((const mm_t *)mm)->magic != MAGIC || algo != 0) return 3;
  *(const void **)alg = mm;
  return 0;
}
cusparseStatus_t cusparseLtMatmulAlgSetAttribute(const void *h, void *alg, int attr, const void *data, size_t n) { return 0; }
cusparseStatus_t cusparseLtMatmulAlgSelectionDestroy(const void *alg) { return 0; }
cusparseStatus_t cusparseLtMatmulPlanInit(const void *h, void *plan, const void *mm, const void *alg) {
  if (*(const void **)alg != mm) return 3;
  plan_t *p = plan;
  p->magic = MAGIC; p->mm = mm; p->searched = 0;
  return 0;
}
cusparseStatus_t cusparseLtMatmulPlanDestroy(const void *plan) { return ((const plan_t *)plan)->magic == MAGIC ? 0 : 3; }
cusparseStatus_t cusparseLtMatmulGetWorkspace(const void *h, const void *plan, size_t *n) { *n = 256; return 0; }

static cusparseStatus_t matmul(const void *h, const void *plan, const void *alpha, const void *dA, const void *dB,
                               const void *beta, const void *dC, void *dD, void *ws, void *streams, int ns) {
  const plan_t *p = plan;
  if (p->magic != MAGIC || ws == 0 || ns != 0) return 3;
  const mm_t *mm = p->mm;
  float al = *(const float *)alpha, be = *(const float *)beta;
  int64_t m = mm->c->rows, n = mm->c->cols, k = op_cols(mm->a, mm->opA);
  for (int64_t j = 0; j < n; j++)
    for (int64_t i = 0; i < m; i++) {
      float s = 0;
      for (int64_t q = 0; q < k; q++) s += at(mm->a, mm->opA, dA, i, q) * at(mm->b, mm->opB, dB, q, j);
      half *o = (half *)dD + (mm->d->order == 2 ? i * mm->d->ld + j : j * mm->d->ld + i);
      float old = be != 0 ? at(mm->c, 0, dC, i, j) : 0;
      *o = (half)(al * s + be * old);
    }
  return 0;
}
cusparseStatus_t cusparseLtMatmul(const void *h, const void *plan, const void *alpha, const void *dA, const void *dB,
                                  const void *beta, const void *dC, void *dD, void *ws, void *streams, int ns) {
  return matmul(h, plan, alpha, dA, dB, beta, dC, dD, ws, streams, ns);
}
cusparseStatus_t cusparseLtMatmulSearch(const void *h, void *plan, const void *alpha, const void *dA, const void *dB,
                                        const void *beta, const void *dC, void *dD, void *ws, void *streams, int ns) {
  ((plan_t *)plan)->searched = 1;
  return matmul(h, plan, alpha, dA, dB, beta, dC, dD, ws, streams, ns);
}

// valid = 0 when op(A) has at most 2 non-zeros in every 4 consecutive
// elements along K, as cusparseLtSpMMAPruneCheck2 documents.
cusparseStatus_t cusparseLtSpMMAPruneCheck2(const void *h, const void *m, int isSparseA, int op, const void *d,
                                            int *valid, CUstream s) {
  const mat_t *A = m;
  if (!isSparseA || !A->sparse) return 3;
  int64_t M = op_rows(A, op), K = op_cols(A, op);
  *valid = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t g = 0; g < K / 4; g++) {
      int nz = 0;
      for (int q = 0; q < 4; q++) nz += at(A, op, d, i, 4 * g + q) != 0;
      if (nz > 2) *valid = 1;
    }
  return 0;
}
cusparseStatus_t cusparseLtSpMMACompressedSize2(const void *h, const void *m, size_t *size, size_t *buf) {
  const mat_t *A = m;
  *size = 2 * (size_t)A->ld * (size_t)(A->order == 2 ? A->rows : A->cols);
  *buf = 64;
  return 0;
}
cusparseStatus_t cusparseLtSpMMACompress2(const void *h, const void *m, int isSparseA, int op, const void *dense,
                                          void *compressed, void *buf, CUstream s) {
  const mat_t *A = m;
  if (!isSparseA || !A->sparse || buf == 0 || op != 1) return 3;
  size_t size, b;
  cusparseLtSpMMACompressedSize2(h, m, &size, &b);
  memcpy(compressed, dense, size);
  return 0;
}
