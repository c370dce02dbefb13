/*
 * gemv_prefetch.c: how the f16 GEMV's weight stream reaches one core, by
 * prefetch variant (docs/benchmarks.md, "Decode per core"). Each variant is
 * the inner loop of kernels' dotRowsF16_512 (one row at a time, 4
 * accumulators, 64 columns per step) with a different software prefetch:
 *   probe   a plain f32 sum over the same bytes (the read probe)
 *   nopf    no software prefetch (the hardware prefetchers alone; llama.cpp's
 *           ggml_vec_dot_f16 streams its rows this way)
 *   T0-4k   PREFETCHT0 4 KiB ahead: what kernels/ generates (PF_DIST, PF_INSN)
 *   T0-2k, T0-8k, T1-4k, T2-4k, NTA-4k, T2-16k: other distances and hints
 *   2rows, 4rows: 2 or 4 rows at once sharing x loads, no prefetch
 *   split2  two far-apart halves of the matrix at once, no prefetch
 *   split2-T2  the same with PREFETCHT2 4 KiB ahead in each stream
 * Figures are GB/s of weights over a working set far larger than the caches
 * (best of 3 passes), every variant in turn, in rounds.
 *
 *   gcc -O2 -march=native -o /tmp/gemv_prefetch bench/prefetch/gemv_prefetch.c
 *   taskset -c 0 /tmp/gemv_prefetch [MiB=1024] [hugepages=1] [rounds=3]
 *   bench/load.sh cpu -- taskset -c 0 /tmp/gemv_prefetch   # beside a load
 * -DCOLS=2048 (or 8192) sets the row width (default 4096).
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
#ifndef COLS
#define COLS 4096
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static inline float hs(__m512 v){return _mm512_reduce_add_ps(v);}
#define DOT1(PF,DIST) \
static void dot_##PF##_##DIST(const uint16_t*w,const float*x,float*y,int rows){ \
 for(int r=0;r<rows;r++){const uint16_t*p=w+(size_t)r*COLS;__m512 a0=_mm512_setzero_ps(),a1=a0,a2=a0,a3=a0; \
  for(int j=0;j<COLS;j+=64){ if(DIST){_mm_prefetch((const char*)(p+j)+DIST,PF);_mm_prefetch((const char*)(p+j)+DIST+64,PF);} \
   a0=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p+j))),_mm512_loadu_ps(x+j),a0); \
   a1=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p+j+16))),_mm512_loadu_ps(x+j+16),a1); \
   a2=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p+j+32))),_mm512_loadu_ps(x+j+32),a2); \
   a3=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p+j+48))),_mm512_loadu_ps(x+j+48),a3);} \
  y[r]=hs(_mm512_add_ps(_mm512_add_ps(a0,a1),_mm512_add_ps(a2,a3)));}}
DOT1(_MM_HINT_T0,0)
DOT1(_MM_HINT_T0,4096)
DOT1(_MM_HINT_T0,2048)
DOT1(_MM_HINT_T0,8192)
DOT1(_MM_HINT_T1,4096)
DOT1(_MM_HINT_T2,4096)
DOT1(_MM_HINT_NTA,4096)
DOT1(_MM_HINT_T2,16384)
/* R rows interleaved, no prefetch */
#define DOTR(R) static void dotr##R(const uint16_t*w,const float*x,float*y,int rows){ \
 for(int r=0;r<rows;r+=R){__m512 a[R];for(int k=0;k<R;k++)a[k]=_mm512_setzero_ps(); \
  for(int j=0;j<COLS;j+=16){__m512 xv=_mm512_loadu_ps(x+j); for(int k=0;k<R;k++) a[k]=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(w+(size_t)(r+k)*COLS+j))),xv,a[k]);} \
  for(int k=0;k<R;k++)y[r+k]=hs(a[k]);}}
DOTR(2)
DOTR(4)
/* 2 halves of the matrix at once: two far apart streams (PF: prefetch
   each 4 KiB ahead into L2) */
#define SPLIT2(NAME,PF) static void NAME(const uint16_t*w,const float*x,float*y,int rows){int h=rows/2; \
 for(int r=0;r<h;r++){const uint16_t*p=w+(size_t)r*COLS,*q=w+(size_t)(r+h)*COLS;__m512 a0=_mm512_setzero_ps(),a1=a0,b0=a0,b1=a0; \
  for(int j=0;j<COLS;j+=32){__m512 x0=_mm512_loadu_ps(x+j),x1=_mm512_loadu_ps(x+j+16); \
   if(PF){_mm_prefetch((const char*)(p+j)+4096,_MM_HINT_T2);_mm_prefetch((const char*)(q+j)+4096,_MM_HINT_T2);} \
   a0=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p+j))),x0,a0);a1=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p+j+16))),x1,a1); \
   b0=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(q+j))),x0,b0);b1=_mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(q+j+16))),x1,b1);} \
  y[r]=hs(_mm512_add_ps(a0,a1));y[r+h]=hs(_mm512_add_ps(b0,b1));}}
SPLIT2(dot_split2,0)
SPLIT2(dot_split2_t2,1)
static void sumprobe(const uint16_t*w,const float*x,float*y,int rows){const float*p=(const float*)w;size_t n=(size_t)rows*COLS/2;__m512 a0=_mm512_setzero_ps(),a1=a0,a2=a0,a3=a0;
 for(size_t i=0;i<n;i+=64){a0=_mm512_add_ps(a0,_mm512_loadu_ps(p+i));a1=_mm512_add_ps(a1,_mm512_loadu_ps(p+i+16));a2=_mm512_add_ps(a2,_mm512_loadu_ps(p+i+32));a3=_mm512_add_ps(a3,_mm512_loadu_ps(p+i+48));}
 y[0]=hs(_mm512_add_ps(_mm512_add_ps(a0,a1),_mm512_add_ps(a2,a3)));}
typedef void (*fn)(const uint16_t *, const float *, float *, int);

int main(int argc, char **argv) {
	size_t mib = argc > 1 ? atoi(argv[1]) : 1024;
	int huge = argc > 2 ? atoi(argv[2]) : 1;
	int rounds = argc > 3 ? atoi(argv[3]) : 3;
	size_t bytes = mib << 20;
	uint16_t *w = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(w, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (size_t i = 0; i < bytes / 2; i++)
		w[i] = 0x3c00 ^ (i & 0xff); /* f16 values near 1 */
	static float x[COLS];
	for (int i = 0; i < COLS; i++)
		x[i] = 1e-3f * i;
	int rows = bytes / 2 / COLS;
	float *y = malloc(rows * sizeof(float));
	fn f[] = {sumprobe, dot__MM_HINT_T0_0, dot__MM_HINT_T0_4096, dot__MM_HINT_T0_2048, dot__MM_HINT_T0_8192,
		dot__MM_HINT_T1_4096, dot__MM_HINT_T2_4096, dot__MM_HINT_NTA_4096, dot__MM_HINT_T2_16384, dotr2, dotr4, dot_split2, dot_split2_t2};
	const char *name[] = {"probe", "nopf", "T0-4k", "T0-2k", "T0-8k", "T1-4k", "T2-4k", "NTA-4k", "T2-16k", "2rows", "4rows", "split2", "split2-T2"};
	int nf = sizeof(f) / sizeof(f[0]);
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < nf; k++) {
			double best = 1e9;
			for (int it = 0; it < 3; it++) {
				double t = now();
				f[k](w, x, y, rows);
				t = now() - t;
				if (t < best)
					best = t;
			}
			printf("%-7s %6.1f  ", name[k], bytes / best / 1e9);
		}
		printf("\n");
		fflush(stdout);
	}
	return 0;
}
