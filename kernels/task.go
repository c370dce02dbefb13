package kernels

import "sync"

// task carries the arguments of one parallel product to the pool without a
// closure (see ranger); tasks are recycled through taskPool.
type task struct {
	op       taskOp
	w        wview
	s        sview
	y, x, xt []float32
	cols, n  int
	ldy, ldx int
	tile     int
	bd       *BlockDiag
}

type taskOp uint8

const (
	opGemv taskOp = iota
	opGemm
	opGemmXT
	opSpmv
	opSpmm
	opSpmmXT
	opBlockDiag
	opTranspose // ldy holds the column count (see transposeTiles)
	opSiLUMul   // y = gate, x = up
)

var taskPool = sync.Pool{New: func() any { return new(task) }}

func (t *task) run(lo, hi int) {
	switch t.op {
	case opGemv:
		gemv(t.y[lo:hi], t.w.sub(lo), hi-lo, t.cols, t.x)
	case opGemm:
		gemm(t.y[lo:], t.ldy, t.w.sub(lo), hi-lo, t.cols, t.x, t.ldx, t.n)
	case opGemmXT:
		gemmXT(t.y[lo:], t.ldy, t.w.sub(lo), hi-lo, t.cols, t.xt, t.n, t.tile)
	case opSpmv:
		spmv(t.y[lo:hi], t.s.sub(lo), hi-lo, t.x)
	case opSpmm:
		spmm(t.y[lo:], t.ldy, t.s.sub(lo), hi-lo, t.x, t.ldx, t.n)
	case opSpmmXT:
		spmmXT(t.y[lo:], t.ldy, t.s.sub(lo), hi-lo, t.x, t.ldx, t.n, t.xt, t.tile)
	case opBlockDiag:
		t.bd.rows(t.y, t.x, t.n, lo, hi)
	case opSiLUMul:
		siluMul(t.y[lo:hi], t.x[lo:hi])
	case opTranspose:
		transposeCols(t.xt, t.x, t.ldx, t.ldy, t.n, t.tile, lo, hi)
	}
}

// minParallelWork is the number of multiply-adds below which a product runs
// on the calling goroutine: handing chunks to the pool costs a few
// microseconds, as much as ~30k multiply-adds, which dominated small models
// (stories260K's 64-wide layers decoded 2.4× slower than llama.cpp).
const minParallelWork = 1 << 15

// runTask runs t over [0, n) (in parallel when it is worth it) and recycles it.
func runTask(t *task, n, align int) {
	if t.work(n) < minParallelWork {
		t.run(0, n)
	} else {
		parallel(n, align, t)
	}
	*t = task{}
	taskPool.Put(t)
}

// work estimates the multiply-adds (or element moves) of t over [0, n).
func (t *task) work(n int) int {
	switch t.op {
	case opSpmv, opSpmm, opSpmmXT:
		// The kept values per row (t.cols is not set for these; counting
		// 1 per row ran every 2:4 GEMV on one thread).
		return n * max(t.s.cols/2, 1) * max(t.n, 1)
	case opBlockDiag:
		return n * t.bd.B * max(t.n, 1)
	case opTranspose:
		return n * t.n
	}
	return n * max(t.cols, 1) * max(t.n, 1)
}

func newTask(op taskOp) *task {
	t := taskPool.Get().(*task)
	t.op = op
	return t
}
