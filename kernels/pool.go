package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads = runtime.NumCPU()

// SetThreads sets how many threads the parallel kernels use (n ≥ 1).
func SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	threads = n
}

// Threads reports the thread count set by SetThreads (default: all cores).
func Threads() int { return threads }

// job is one ParallelFor call shared by the caller and the workers. Work is
// handed out in chunks through an atomic counter, so a thread that is slowed
// down (the machine is shared, or a core is busy with something else) simply
// takes fewer chunks and all threads finish together.
type job struct {
	fn    ranger
	n     int
	chunk int
	next  atomic.Int64
	done  sync.WaitGroup
}

func (j *job) run() {
	for {
		lo := int(j.next.Add(int64(j.chunk))) - j.chunk
		if lo >= j.n {
			return
		}
		j.fn.run(lo, min(lo+j.chunk, j.n))
	}
}

// The pool: persistent worker goroutines fed through one channel, so a call
// costs a channel hand-off per helper instead of a goroutine start.
var pool struct {
	mu      sync.Mutex // one ParallelFor at a time; others run inline
	started int
	jobs    chan *job
	j       job // reused: no allocation per call
}

func init() { pool.jobs = make(chan *job, 256) }

func worker() {
	for j := range pool.jobs {
		j.run()
		j.done.Done()
	}
}

// chunksPerThread trades hand-out overhead against balance: with several
// chunks per thread a thread that lost its core for a while still finishes
// with the others.
const chunksPerThread = 4

// ParallelFor splits [0, n) into chunks and runs fn on each, using up to
// Threads() threads (the caller's goroutine plus persistent workers). Chunks
// start at multiples of align; the last one may be shorter. A call made
// while another ParallelFor is running (nested, or from another goroutine)
// runs on the calling goroutine alone.
func ParallelFor(n, align int, fn func(lo, hi int)) { parallel(n, align, funcRanger(fn)) }

// ranger is a unit of parallel work. The kernels pass pooled structs
// through it, so a call does not allocate a closure.
type ranger interface{ run(lo, hi int) }

type funcRanger func(lo, hi int)

func (f funcRanger) run(lo, hi int) { f(lo, hi) }

func parallel(n, align int, fn ranger) {
	if n <= 0 {
		return
	}
	t := threads
	if align < 1 {
		align = 1
	}
	if t <= 1 || n <= align || !pool.mu.TryLock() {
		fn.run(0, n)
		return
	}
	defer pool.mu.Unlock()
	chunk := (n + t*chunksPerThread - 1) / (t * chunksPerThread)
	chunk = (chunk + align - 1) / align * align
	helpers := min(t, (n+chunk-1)/chunk) - 1
	for pool.started < helpers {
		go worker()
		pool.started++
	}
	j := &pool.j
	j.fn, j.n, j.chunk = fn, n, chunk
	j.next.Store(0)
	j.done.Add(helpers)
	for i := 0; i < helpers; i++ {
		pool.jobs <- j
	}
	j.run()
	j.done.Wait()
	j.fn = nil
}
