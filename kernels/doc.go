// Package kernels holds the numeric kernels of armor and nothing else: dense
// and 2:4 sparse matrix products, block-diagonal transforms, norms, softmax,
// RoPE and the small vector operations of attention.
//
// Conventions used by every kernel:
//   - Weight matrices are row-major d_out × d_in (Rows × Cols), as in Hugging
//     Face nn.Linear: row i holds the weights of output i.
//   - Activations are f32. A batch of n tokens is n rows of Cols values
//     (x[t*Cols+j]); the result is n rows of Rows values (y[t*Rows+i]).
//   - Accumulation is in f32.
//
// Every kernel has a portable Go version that is the reference; faster
// versions (assembly per ISA) are tested against it.
package kernels
