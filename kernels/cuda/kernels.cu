// Small kernels for armor's decode path on NVIDIA GPUs: RMSNorm, RoPE (both
// pairings), attention of one query token over a KV cache, SiLU·mul, and the
// f32/f16 conversions between the f32 residual stream and the 16-bit GEMM
// operands. gen_ptx.sh turns this file into kernels_sm80.ptx and
// kernels_sm90.ptx, which the Go side loads with cuModuleLoadData.
//
// It builds with nvcc and with clang (-nocudainc: no CUDA headers), so only
// a minimal set of builtins is used, through the macros below. Halves are
// stored as unsigned short and converted with PTX cvt instructions.
//
// Layouts (all row-major, token-major):
//   x[n][dim] f32 residual stream; 16-bit activations h[n][dim];
//   q[n_heads][hd] f32; KV cache k[pos][n_kv][hd], v[pos][n_kv][hd] f16;
//   RoPE tables cos[pos][hd/2], sin[pos][hd/2] f32, made on the host so the
//   angles match the CPU path exactly.

#if defined(__NVCC__)
#define TID_X threadIdx.x
#define BID_X blockIdx.x
#define BID_Y blockIdx.y
#define NTID_X blockDim.x
#define SYNC() __syncthreads()
#define EX2(x) exp2f(x)
#define RSQRT(x) rsqrtf(x)
#define SHFL_XOR(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
#define FMAX(a, b) fmaxf(a, b)
#else
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define TID_X __nvvm_read_ptx_sreg_tid_x()
#define BID_X __nvvm_read_ptx_sreg_ctaid_x()
#define BID_Y __nvvm_read_ptx_sreg_ctaid_y()
#define NTID_X __nvvm_read_ptx_sreg_ntid_x()
#define SYNC() __syncthreads()
#define EX2(x) __nvvm_ex2_approx_f(x)
#define RSQRT(x) __nvvm_rsqrt_approx_f(x)
#define SHFL_XOR(v, m) __nvvm_shfl_sync_bfly_f32(0xffffffffu, (v), (m), 0x1f)
#define FMAX(a, b) __nvvm_fmax_f(a, b)
#endif

#define LOG2E 1.4426950408889634f

static __device__ inline float h2f(unsigned short h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

static __device__ inline unsigned short f2h(float f) {
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024);
// every thread gets the result. red is 32 floats of shared memory.
static __device__ inline float block_sum(float v, float *red) {
  for (int m = 16; m > 0; m >>= 1) v += SHFL_XOR(v, m);
  int lane = TID_X & 31, warp = TID_X >> 5, nw = NTID_X >> 5;
  SYNC();
  if (lane == 0) red[warp] = v;
  SYNC();
  v = lane < nw ? red[lane] : 0.0f;
  for (int m = 16; m > 0; m >>= 1) v += SHFL_XOR(v, m);
  return v;
}

static __device__ inline float block_max(float v, float *red) {
  for (int m = 16; m > 0; m >>= 1) v = FMAX(v, SHFL_XOR(v, m));
  int lane = TID_X & 31, warp = TID_X >> 5, nw = NTID_X >> 5;
  SYNC();
  if (lane == 0) red[warp] = v;
  SYNC();
  v = lane < nw ? red[lane] : -3.0e38f;
  for (int m = 16; m > 0; m >>= 1) v = FMAX(v, SHFL_XOR(v, m));
  return v;
}

extern "C" {

// out[t] = f16(x[t] / rms(x[t]) * w), one block per token.
__global__ void rmsnorm_f32_f16(unsigned short *out, const float *x, const float *w, int dim, float eps) {
  __shared__ float red[32];
  const float *xr = x + (long)BID_X * dim;
  unsigned short *o = out + (long)BID_X * dim;
  float s = 0.0f;
  for (int i = TID_X; i < dim; i += NTID_X) s += xr[i] * xr[i];
  s = block_sum(s, red);
  float r = RSQRT(s / (float)dim + eps);
  for (int i = TID_X; i < dim; i += NTID_X) o[i] = f2h(xr[i] * r * w[i]);
}

// In-place RoPE on x[n][heads][hd] (f32) for tokens at positions pos0+t.
// neox = 0: pairs (2i, 2i+1) (GGUF llama "normal" order); neox = 1: pairs
// (i, i + hd/2) (NeoX / HF order). Grid: (n, heads); block: hd/2 threads or
// fewer (strided).
__global__ void rope_f32(float *x, const float *cosT, const float *sinT, int heads, int hd, int pos0, int neox) {
  int t = BID_X, h = BID_Y, half = hd / 2;
  float *v = x + ((long)t * heads + h) * hd;
  const float *c = cosT + (long)(pos0 + t) * half, *s = sinT + (long)(pos0 + t) * half;
  for (int i = TID_X; i < half; i += NTID_X) {
    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = v[a], x1 = v[b];
    v[a] = x0 * c[i] - x1 * s[i];
    v[b] = x0 * s[i] + x1 * c[i];
  }
}

// Attention of one query token per head over positions 0..len-1 of the
// cache (grouped-query: head h reads kv head h / (heads / kv_heads)).
// out[h][hd] f32. One block per head; dynamic shared memory: len floats of
// scores + 32 for reductions (so len is bounded by shared memory: 48 KiB
// default gives about 12k positions).
__global__ void attn_decode_f16(float *out, const float *q, const unsigned short *kc, const unsigned short *vc,
                                int heads, int kv_heads, int hd, int len, float scale) {
  extern __shared__ float sm[];
  float *score = sm, *red = sm + len;
  int h = BID_X, kvh = h / (heads / kv_heads);
  const float *qh = q + (long)h * hd;
  long stride = (long)kv_heads * hd;
  // Scores: one position per thread, strided.
  float mx = -3.0e38f;
  for (int p = TID_X; p < len; p += NTID_X) {
    const unsigned short *kp = kc + p * stride + (long)kvh * hd;
    float s = 0.0f;
    for (int i = 0; i < hd; i++) s += qh[i] * h2f(kp[i]);
    s *= scale;
    score[p] = s;
    mx = FMAX(mx, s);
  }
  mx = block_max(mx, red);
  float sum = 0.0f;
  for (int p = TID_X; p < len; p += NTID_X) {
    float e = EX2((score[p] - mx) * LOG2E);
    score[p] = e;
    sum += e;
  }
  sum = block_sum(sum, red);
  SYNC();
  float inv = 1.0f / sum;
  // Output: one dimension per thread, strided.
  for (int i = TID_X; i < hd; i += NTID_X) {
    float acc = 0.0f;
    for (int p = 0; p < len; p++) acc += score[p] * h2f(vc[p * stride + (long)kvh * hd + i]);
    out[(long)h * hd + i] = acc * inv;
  }
}

// out = f16(silu(gate) * up), n values.
__global__ void silu_mul_f16(unsigned short *out, const unsigned short *gate, const unsigned short *up, int n) {
  int i = BID_X * NTID_X + TID_X;
  if (i < n) {
    float g = h2f(gate[i]);
    out[i] = f2h(g / (1.0f + EX2(-g * LOG2E)) * h2f(up[i]));
  }
}

// x += f32(h) (residual add of a 16-bit layer output), n values.
__global__ void add_f16_to_f32(float *x, const unsigned short *h, int n) {
  int i = BID_X * NTID_X + TID_X;
  if (i < n) x[i] += h2f(h[i]);
}

// out = f16(x), n values.
__global__ void f32_to_f16(unsigned short *out, const float *x, int n) {
  int i = BID_X * NTID_X + TID_X;
  if (i < n) out[i] = f2h(x[i]);
}

// out = f32(h), n values.
__global__ void f16_to_f32(float *out, const unsigned short *h, int n) {
  int i = BID_X * NTID_X + TID_X;
  if (i < n) out[i] = h2f(h[i]);
}

} // extern "C"
