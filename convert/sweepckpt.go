package convert

import (
	"os"
	"path/filepath"
)

// Checkpoints within a layer. A 4096×11008 layer at b = 128 takes hours of
// sweeps on a few cores; armor-fast saves its best iterate to
// PartsDir/NAME.sweep every few minutes, and --resume continues from there.
// The continued run restarts the extrapolation step and the L-BFGS history,
// so its result can differ slightly from an uninterrupted run's (never
// above the saved iterate's loss).

// sweepState is ArmorFast's best iterate after Iters sweeps.
type sweepState struct {
	Key                string // the layer's key (layerKey): same source, options and calibration
	Iters              int
	MulAdds            int64
	InitLoss, BestLoss float64
	A, B               [][]float64
	X                  []float64
	Mask               []uint8
}

// fits reports whether r is a state of st's shape.
func (r *sweepState) fits(st *state) bool {
	if r == nil || r.Iters <= 0 || len(r.X) != st.n*st.m || len(r.Mask) != st.n*st.m ||
		len(r.A) != len(st.rb)-1 || len(r.B) != len(st.cb)-1 {
		return false
	}
	for J := range r.A {
		if s := st.rb[J+1] - st.rb[J]; len(r.A[J]) != s*s {
			return false
		}
	}
	for K := range r.B {
		if s := st.cb[K+1] - st.cb[K]; len(r.B[K]) != s*s {
			return false
		}
	}
	return true
}

// sweepFile is where a layer's sweep checkpoints go.
type sweepFile struct {
	path, key string
}

func newSweepFile(dir, name, key string) *sweepFile {
	return &sweepFile{path: filepath.Join(dir, name+".sweep"), key: key}
}

// load returns the saved state if it is intact and of this layer and run.
func (f *sweepFile) load() *sweepState {
	var s sweepState
	if readSealed(f.path, &s) != nil || s.Key != f.key {
		return nil
	}
	return &s
}

// save writes s; a failure costs only the checkpoint.
func (f *sweepFile) save(s *sweepState) {
	s.Key = f.key
	writeSealed(f.path, s)
}

func (f *sweepFile) remove() { os.Remove(f.path) }
