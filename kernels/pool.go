package kernels

import (
	"runtime"
	"sync"
)

var threads = runtime.NumCPU()

// SetThreads sets how many goroutines the parallel kernels use (n ≥ 1).
func SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	threads = n
}

// Threads reports the thread count set by SetThreads (default: all cores).
func Threads() int { return threads }

// ParallelFor splits [0, n) into contiguous chunks and runs fn on each, using
// up to Threads() goroutines. Chunks are multiples of align (except the last).
//
// TODO(kernels): replace the per-call goroutines with a persistent pool.
func ParallelFor(n, align int, fn func(lo, hi int)) {
	t := threads
	if align < 1 {
		align = 1
	}
	if t <= 1 || n <= align {
		fn(0, n)
		return
	}
	chunk := (n + t - 1) / t
	chunk = (chunk + align - 1) / align * align
	var wg sync.WaitGroup
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) { fn(lo, hi); wg.Done() }(lo, hi)
	}
	fn(0, min(chunk, n))
	wg.Wait()
}
