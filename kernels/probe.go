package kernels

// Sum returns Σ x[i], reading x once in parallel over Threads() threads. It
// is the memory-read bandwidth probe that the GEMV kernels are measured
// against (a pure streaming read with nothing else to do).
func Sum(x []float32) float32 { return sumPar(x, false) }

// SumPrefetch is Sum with software prefetch (AVX-512 only; Sum elsewhere).
// Which of the two reads faster depends on the machine and the moment, so
// the bandwidth probe takes the better of them.
func SumPrefetch(x []float32) float32 { return sumPar(x, true) }

func sumPar(x []float32, pf bool) float32 {
	const chunk = 1 << 16
	nc := (len(x) + chunk - 1) / chunk
	parts := make([]float32, nc)
	ParallelFor(nc, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			parts[c] = sum(x[c*chunk:min(len(x), (c+1)*chunk)], pf)
		}
	})
	var s float32
	for _, p := range parts {
		s += p
	}
	return s
}

func sum(x []float32, pf bool) float32 {
	s, done := float32(0), 0
	if level != Generic {
		s, done = sumArch(x, pf)
	}
	for _, v := range x[done:] {
		s += v
	}
	return s
}
