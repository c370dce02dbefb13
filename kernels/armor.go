package kernels

import (
	"fmt"
	"sync"
)

// Armor is an ARMOR linear layer y = Post·(Core·(Pre·x)) + Bias, with Pre
// (In × In) and Post (Out × Out) block-diagonal and Core (Out × In) 2:4
// sparse. Bias may be nil.
//
// The product is fused: Pre·x is computed once into a scratch vector (every
// core row needs all of it); then each thread takes whole blocks of Post,
// computes the matching rows of Core·(Pre·x) into scratch (one block, hot in
// L1) and applies the Post block and the bias straight into y. Scratch is
// shared by all ARMOR layers of the process and grows only when a larger
// batch arrives, so calls do not allocate and a model with hundreds of
// layers holds one set of buffers, not one per layer (per-layer scratch for
// 512-token prefill cost 1.5 GB on the Llama-3.2-1B shape). Calls are
// serialized process-wide; each one is parallel inside.
type Armor struct {
	Pre  *BlockDiag
	Core *Sparse24
	Post *BlockDiag
	Bias []float32

	t, u    []float32 // Pre·x (n × In) and core rows (n × Out), views of armorScratch
	xt      []float32 // Pre·x as token tiles, when the 2:4 GEMM uses them
	tile    int
	x, y    []float32 // arguments of the call in progress
	n       int
	pre, pp func(lo, hi int) // built once: no closure per call
	preT    func(lo, hi int) // the same for the transposed path (matMulT)
	ppT     func(lo, hi int)
}

// armorScratch holds the buffers every Armor call works in.
var armorScratch struct {
	sync.Mutex
	t, u, xt []float32
}

func growScratch(buf *[]float32, n int) []float32 {
	if len(*buf) < n {
		*buf = make([]float32, n)
	}
	return (*buf)[:n]
}

// In and Out are the layer's input and output sizes.
func (a *Armor) In() int  { return a.Core.Cols }
func (a *Armor) Out() int { return a.Core.Rows }

// Bytes is the size of all weights and the bias.
func (a *Armor) Bytes() int64 {
	return a.Pre.Bytes() + a.Core.Bytes() + a.Post.Bytes() + 4*int64(len(a.Bias))
}

// Check validates the parts and that their shapes fit together.
func (a *Armor) Check() error {
	if a.Pre == nil || a.Core == nil || a.Post == nil {
		return fmt.Errorf("armor: missing pre, core or post")
	}
	if err := a.Core.Check(); err != nil {
		return fmt.Errorf("armor core: %w", err)
	}
	if err := a.Pre.Check(); err != nil {
		return fmt.Errorf("armor pre: %w", err)
	}
	if err := a.Post.Check(); err != nil {
		return fmt.Errorf("armor post: %w", err)
	}
	if a.Pre.N != a.Core.Cols || a.Post.N != a.Core.Rows {
		return fmt.Errorf("armor: pre %d×%d, core %d×%d, post %d×%d do not chain",
			a.Pre.N, a.Pre.N, a.Core.Rows, a.Core.Cols, a.Post.N, a.Post.N)
	}
	if a.Bias != nil && len(a.Bias) != a.Core.Rows {
		return fmt.Errorf("armor: bias has %d values, want %d", len(a.Bias), a.Core.Rows)
	}
	return nil
}

// MatVec computes y = Post·(Core·(Pre·x)) + Bias for one token.
func (a *Armor) MatVec(y, x []float32) { a.MatMul(y, x, 1) }

// MatMul computes the layer for n tokens: x is n×In, y is n×Out, row-major.
func (a *Armor) MatMul(y, x []float32, n int) {
	if n <= 0 {
		return
	}
	tile := armorTile(n)
	if p := spmmPad(n); p != n && tile == 0 {
		// As Sparse24.MatMul: the core's register-blocked kernels take 4
		// tokens at a time, so zero tokens fill the last block.
		pd := padTokens(x, n, p, a.In(), a.Out())
		a.MatMul(pd.y, pd.x, p)
		pd.done(y, n, a.Out())
		return
	}
	if h := tileHead(n, tile); h < n {
		a.MatMul(y, x, h)
		a.MatMul(y[h*a.Out():], x[h*a.In():], n-h)
		return
	}
	armorScratch.Lock()
	defer armorScratch.Unlock()
	if tile > 0 {
		a.matMulT(y, x, n, tile)
		a.x, a.y, a.t, a.xt = nil, nil, nil, nil
		return
	}
	in, out := a.In(), a.Out()
	a.t = growScratch(&armorScratch.t, n*in)
	a.u = growScratch(&armorScratch.u, n*out)
	if a.pre == nil {
		a.pre = func(lo, hi int) { a.Pre.rows(a.t, a.x, a.n, lo, hi) }
		a.pp = a.corePost
	}
	a.x, a.y, a.n = x[:n*in], y[:n*out], n
	par := parallel
	if in*out/2*n < minParallelWork {
		par = func(n, _ int, fn ranger) { fn.run(0, n) }
	}
	par(in, 16, funcRanger(a.pre))
	a.tile = 0
	if n > 1 {
		if a.tile = spmmTile(n); a.tile > 0 {
			a.xt = growScratch(&armorScratch.xt, xtLen(in, n, a.tile))
			transposeTiles(a.xt, a.t, in, in, n, a.tile)
		}
	}
	// Chunks start on Post block boundaries, so each block is done by one
	// thread from its core rows to its outputs.
	par(out, a.Post.B, funcRanger(a.pp))
	a.x, a.y, a.t, a.u, a.xt = nil, nil, nil, nil, nil
}

// corePost computes output rows [lo, hi) (whole Post blocks).
func (a *Armor) corePost(lo, hi int) {
	in, out, n := a.In(), a.Out(), a.n
	core := a.Core.view()
	for i := lo; i < hi; {
		r0, s, w := a.Post.block(i / a.Post.B)
		if n == 1 {
			spmv(a.u[r0:], core.sub(r0), s, a.t[:in])
			gemv(a.y[r0:], w, s, s, a.u[r0:r0+s])
		} else {
			if a.tile > 0 {
				spmmXT(a.u[r0:], out, core.sub(r0), s, a.t[:n*in], in, n, a.xt, a.tile)
			} else {
				spmm(a.u[r0:], out, core.sub(r0), s, a.t[:n*in], in, n)
			}
			gemm(a.y[r0:], out, w, s, s, a.u[r0:], out, n)
		}
		if a.Bias != nil {
			for t := 0; t < n; t++ {
				Axpy(1, a.Bias[r0:r0+s], a.y[t*out+r0:t*out+r0+s])
			}
		}
		i = r0 + s
	}
}
