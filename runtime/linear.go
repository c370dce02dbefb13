// Package runtime executes a model: forward pass, KV cache, sampling and
// generation.
package runtime

// Linear is one linear layer y = f(x) + bias with f linear, of shape
// Out() × In(). Dense, 2:4 and ARMOR layers implement it; architecture code
// never knows which.
type Linear interface {
	In() int
	Out() int
	// Forward computes y (len Out) from one token x (len In).
	Forward(y, x []float32)
	// ForwardBatch computes n tokens at once: x is n×In, y is n×Out, row-major.
	ForwardBatch(y, x []float32, n int)
	// WeightBytes is the number of bytes of weights (and bias) it reads per token.
	WeightBytes() int64
}
