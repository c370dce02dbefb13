package runtime

import "github.com/armor-llm/armor/kernels"

// Armor is an ARMOR linear layer: y = Post·(Core·(Pre·x)) + bias, fused in
// the kernels.
type Armor struct{ L *kernels.Armor }

func (a *Armor) In() int                            { return a.L.In() }
func (a *Armor) Out() int                           { return a.L.Out() }
func (a *Armor) Forward(y, x []float32)             { a.L.MatVec(y, x) }
func (a *Armor) ForwardBatch(y, x []float32, n int) { a.L.MatMul(y, x, n) }
func (a *Armor) WeightBytes() int64                 { return a.L.Bytes() }
