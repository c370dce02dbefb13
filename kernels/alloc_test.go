package kernels

import (
	"math/rand/v2"
	"testing"
)

// The hot paths must not allocate per call: the runtime calls them
// thousands of times per token.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, which allocates")
	}
	r := rand.New(rand.NewPCG(3, 4))
	d := randDense(r, F16, 64, 96)
	s, err := Pack24(rand24(r, 64, 96), 64, 96, F16)
	if err != nil {
		t.Fatal(err)
	}
	a := &Armor{Pre: randBlockDiag(r, F16, 96, 32), Core: s, Post: randBlockDiag(r, F16, 64, 32), Bias: randVec(r, 64)}
	// Wide matrices in column panels.
	dp := randDense(r, F16, 16, 8224).Panelize(nil)
	sp, err := Pack24(rand24(r, 16, 8224), 16, 8224, F16)
	if err != nil {
		t.Fatal(err)
	}
	sp = sp.Panelize(nil)
	xw, yw := randVec(r, 20*8224), make([]float32, 20*16)
	x, y := randVec(r, 20*96), make([]float32, 20*64)
	for name, f := range map[string]func(){
		"Dense.MatVec":           func() { d.MatVec(y, x) },
		"Dense.MatMul":           func() { d.MatMul(y, x, 5) },
		"Sparse24.MatVec":        func() { s.MatVec(y, x) },
		"Sparse24.MatMul":        func() { s.MatMul(y, x, 20) },
		"BlockDiag.MatVec":       func() { a.Pre.MatVec(y, x) },
		"BlockDiag.MatMul":       func() { a.Pre.MatMul(y, x, 5) },
		"Armor.MatVec":           func() { a.MatVec(y, x) },
		"Armor.MatMul":           func() { a.MatMul(y, x, 20) },
		"Dot":                    func() { y[0] = Dot(x[:96], x[96:192]) },
		"panels Dense.MatVec":    func() { dp.MatVec(yw, xw) },
		"panels Dense.MatMul":    func() { dp.MatMul(yw, xw, 20) },
		"panels Sparse24.MatVec": func() { sp.MatVec(yw, xw) },
		"panels Sparse24.MatMul": func() { sp.MatMul(yw, xw, 20) },
	} {
		f() // grow scratch
		if n := testing.AllocsPerRun(20, f); n > 0 {
			t.Errorf("%s: %.1f allocations per call", name, n)
		}
	}
}
