package runtime

import "github.com/armor-llm/armor/kernels"

// Sparse is a 2:4 linear layer over the kernels' packed layout.
type Sparse struct {
	W    kernels.Sparse24
	Bias []float32
}

func (s *Sparse) In() int  { return s.W.Cols }
func (s *Sparse) Out() int { return s.W.Rows }
func (s *Sparse) Forward(y, x []float32) {
	s.W.MatVec(y, x)
	addBias(y, s.Bias, 1)
}
func (s *Sparse) ForwardBatch(y, x []float32, n int) {
	s.W.MatMul(y, x, n)
	addBias(y, s.Bias, n)
}
func (s *Sparse) WeightBytes() int64 { return s.W.Bytes() + int64(4*len(s.Bias)) }
