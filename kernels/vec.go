package kernels

import "math"

// Dot returns Σ a[i]·b[i] over len(a) (b must be at least as long).
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	if level != Generic && len(a) >= 16 {
		var y [1]float32
		gemv(y[:], wview{dt: F32, f32: a, ld: len(a)}, 1, len(a), b)
		return y[0]
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Axpy computes y += a·x over len(x).
func Axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	done := 0
	if level != Generic {
		done = axpyArch(a, x, y)
	}
	for i := done; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// RMSNorm writes out = x / sqrt(mean(x²) + eps) ⊙ w. out may alias x.
func RMSNorm(out, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		out[i] = v * scale * w[i]
	}
}

// Softmax normalizes x in place.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	mx, done := maxArch(x)
	if done == 0 {
		mx = x[0]
	}
	for _, v := range x[done:] {
		mx = max(mx, v)
	}
	sum, done := expSubArch(x, mx)
	for i, v := range x[done:] {
		e := float32(math.Exp(float64(v - mx)))
		x[done+i] = e
		sum += e
	}
	inv := 1 / sum
	done = scaleArch(x, inv)
	for i := range x[done:] {
		x[done+i] *= inv
	}
}

// SiLUMul computes gate = silu(gate) ⊙ up, the SwiGLU activation. Long
// inputs (a prefill batch: n × Hidden) are split across threads; run on one
// thread with a scalar exp it took 13% of a 512-token prefill.
func SiLUMul(gate, up []float32) {
	up = up[:len(gate)]
	t := newTask(opSiLUMul)
	t.x, t.y, t.cols = up, gate, 8 // cols: cost weight of one element for runTask
	runTask(t, len(gate), 16)
}

func siluMul(gate, up []float32) {
	up = up[:len(gate)]
	done := siluMulArch(gate, up)
	for i, g := range gate[done:] {
		gate[done+i] = g / (1 + float32(math.Exp(float64(-g)))) * up[done+i]
	}
}

// RoPEPairs rotates one head of x (len = 2·len(cos)) whose rotation pairs are
// adjacent: (x[2i], x[2i+1]) by the angle with cos[i], sin[i]. This is
// llama.cpp's "normal" RoPE, used by GGUF llama models and llama2.c.
func RoPEPairs(x, cos, sin []float32) {
	for i := range cos {
		a, b := x[2*i], x[2*i+1]
		x[2*i] = a*cos[i] - b*sin[i]
		x[2*i+1] = a*sin[i] + b*cos[i]
	}
}

// RoPEHalves rotates one head of x (len = 2·len(cos)) whose rotation pairs
// are (x[i], x[i+d/2]): Hugging Face's rotate_half, llama.cpp's NEOX RoPE,
// used by Qwen and by Hugging Face llama checkpoints.
func RoPEHalves(x, cos, sin []float32) {
	h := len(cos)
	for i := 0; i < h; i++ {
		a, b := x[i], x[i+h]
		x[i] = a*cos[i] - b*sin[i]
		x[i+h] = a*sin[i] + b*cos[i]
	}
}

// DotRows computes y[r] = Σ_j w[r·ld+j]·x[j] for r < len(y), j < len(x):
// a product with a strided f32 matrix, e.g. the attention scores of one
// head against the K cache (ld = the cache's row stride). It runs on the
// calling goroutine.
func DotRows(y, w []float32, ld int, x []float32) {
	rows, cols := len(y), len(x)
	if rows == 0 {
		return
	}
	_ = w[(rows-1)*ld+cols-1]
	gemv(y, wview{dt: F32, f32: w, ld: ld}, rows, cols, x)
}

// DotRowsF16 is DotRows over rows of f16 bits (an f16 KV cache's keys).
func DotRowsF16(y []float32, w []uint16, ld int, x []float32) {
	rows, cols := len(y), len(x)
	if rows == 0 {
		return
	}
	_ = w[(rows-1)*ld+cols-1]
	gemv(y, wview{dt: F16, u16: w, ld: ld}, rows, cols, x)
}

// AxpyRowsF16 is AxpyRows over rows of f16 bits (an f16 KV cache's values).
func AxpyRowsF16(y, a []float32, w []uint16, ld int) {
	rows, cols := len(a), len(y)
	if rows == 0 || cols == 0 {
		return
	}
	_ = w[(rows-1)*ld+cols-1]
	done := 0
	if level != Generic {
		done = axpyRowsF16Arch(y, a, w, ld)
	}
	axpyRowsTail(y, a, w, ld, done, F16ToF32)
}

// axpyRowsTail adds the columns from done on of AxpyRows (or AxpyRowsF16,
// widening each weight with at): those the SIMD kernels left.
func axpyRowsTail[T float32 | uint16](y, a []float32, w []T, ld, done int, at func(T) float32) {
	if done >= len(y) {
		return
	}
	for r, s := range a {
		row := w[r*ld : r*ld+len(y)]
		for j := done; j < len(y); j++ {
			y[j] += s * at(row[j])
		}
	}
}

// AxpyRowsF64 is AxpyRows in float64: y[j] += Σ_r a[r]·w[r·ld+j] for
// r < len(a), j < len(y). The converter's triangular solves and objectives
// on b×b blocks run on it (float32 is not enough there: the blocks are often
// ill-conditioned). Rows are summed in pairs, so results may differ from a
// sequential loop in the last bits.
func AxpyRowsF64(y, a, w []float64, ld int) {
	rows, cols := len(a), len(y)
	if rows == 0 || cols == 0 {
		return
	}
	_ = w[(rows-1)*ld+cols-1]
	done := 0
	if level != Generic {
		done = axpyRowsF64Arch(y, a, w, ld)
	}
	if done >= cols {
		return
	}
	for r, s := range a {
		row := w[r*ld : r*ld+cols]
		for j := done; j < cols; j++ {
			y[j] += s * row[j]
		}
	}
}

// ToF16 rounds src to f16 bits in dst (len(dst) ≥ len(src)), to nearest
// even as F32ToF16 does (NaNs stay NaNs, their payload aside).
func ToF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	done := 0
	if level != Generic {
		done = toF16Arch(dst, src)
	}
	for i := done; i < len(src); i++ {
		dst[i] = F32ToF16(src[i])
	}
}

// FromF16 widens f16 bits to f32: dst[i] = src[i] for i < len(dst)
// (len(src) ≥ len(dst)).
func FromF16(dst []float32, src []uint16) {
	src = src[:len(dst)]
	done := 0
	if level != Generic {
		done = fromF16Arch(dst, src)
	}
	for i := done; i < len(dst); i++ {
		dst[i] = F16ToF32(src[i])
	}
}

// AxpyRows computes y[j] += Σ_r a[r]·w[r·ld+j] for r < len(a), j < len(y):
// the weighted sum of strided rows, e.g. attention's sum of V-cache rows.
// It runs on the calling goroutine.
func AxpyRows(y, a, w []float32, ld int) {
	rows, cols := len(a), len(y)
	if rows == 0 || cols == 0 {
		return
	}
	_ = w[(rows-1)*ld+cols-1]
	done := 0
	if level != Generic {
		done = axpyRowsArch(y, a, w, ld)
	}
	axpyRowsTail(y, a, w, ld, done, func(v float32) float32 { return v })
}
