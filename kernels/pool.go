package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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

// ranger is a unit of parallel work. The kernels pass pooled structs
// through it, so a call does not allocate a closure.
type ranger interface{ run(lo, hi int) }

type funcRanger func(lo, hi int)

func (f funcRanger) run(lo, hi int) { f(lo, hi) }

// job is one parallel call shared by the caller and the workers. Work is
// handed out in chunks through an atomic counter, so a thread that is slowed
// down (the machine is shared, or a core is busy with something else) simply
// takes fewer chunks and all threads finish together. The caller waits for
// the chunks, not for the workers: a worker that wakes up late finds no work
// and costs the caller nothing.
type job struct {
	fn       ranger
	n, chunk int
	nchunks  int64
	next     atomic.Int64 // start of the next unclaimed chunk
	finished atomic.Int64 // chunks done
	slots    atomic.Int32 // helpers still allowed to join
	refs     atomic.Int32 // helpers holding a pointer to this job
}

func (j *job) run() {
	for {
		lo := int(j.next.Add(int64(j.chunk))) - j.chunk
		if lo >= j.n {
			return
		}
		j.fn.run(lo, min(lo+j.chunk, j.n))
		j.finished.Add(1)
	}
}

// The pool: persistent workers that spin for a while after each job (so the
// back-to-back products of a decode step start without a wake-up) and then
// sleep on a channel.
var pool struct {
	mu      sync.Mutex // one parallel call at a time; others run inline
	jobs    [2]job     // alternate, so a late worker never sees a job being reset
	k       int
	cur     atomic.Pointer[job]
	gen     atomic.Uint64
	workers []*worker
}

type worker struct {
	sleeping atomic.Bool
	wake     chan struct{}
}

// spinFor is how long an idle worker polls for the next job before sleeping.
// A decode step issues its products a few µs apart, so workers stay awake
// through it and a parallel call costs ~0.3 µs instead of a futex wake-up
// (5–20 µs, measured). On an oversubscribed machine the spinning takes CPU
// from others for at most spinFor after each call.
const spinFor = 50 * time.Microsecond

func (w *worker) loop() {
	seen := pool.gen.Load()
	for {
		start := time.Now()
		for i := 0; pool.gen.Load() == seen; i++ {
			if i&1023 != 1023 {
				continue
			}
			if time.Since(start) < spinFor {
				continue // (runtime.Gosched here cost 7% in scheduler locks)
			}
			// Sleep. The caller wakes sleepers after publishing a job; re-check
			// after announcing so that a job published meanwhile is not missed.
			w.sleeping.Store(true)
			if pool.gen.Load() != seen && w.sleeping.CompareAndSwap(true, false) {
				break
			}
			<-w.wake
			start = time.Now()
		}
		seen = pool.gen.Load()
		j := pool.cur.Load()
		j.refs.Add(1)
		if pool.cur.Load() == j && j.slots.Add(-1) >= 0 {
			j.run()
		}
		j.refs.Add(-1)
	}
}

// chunksPerThread trades balance (a chunk claimed by a thread that then loses
// its core holds up the call) against streaming: each chunk start is a
// prefetch ramp-up (16 per thread measured worse than 4 for 2:4 GEMV).
const chunksPerThread = 4

// ParallelFor splits [0, n) into chunks and runs fn on each, using up to
// Threads() threads (the caller's goroutine plus persistent workers). Chunks
// start at multiples of align; the last one may be shorter. A call made
// while another ParallelFor is running (nested, or from another goroutine)
// runs on the calling goroutine alone.
func ParallelFor(n, align int, fn func(lo, hi int)) { parallel(n, align, funcRanger(fn)) }

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
	for len(pool.workers) < t-1 {
		w := &worker{wake: make(chan struct{}, 1)}
		pool.workers = append(pool.workers, w)
		go w.loop()
	}
	j := &pool.jobs[pool.k]
	pool.k ^= 1
	for j.refs.Load() != 0 {
		runtime.Gosched() // a worker from two calls ago is still leaving
	}
	j.fn, j.n, j.chunk = fn, n, chunk
	j.nchunks = int64((n + chunk - 1) / chunk)
	j.next.Store(0)
	j.finished.Store(0)
	j.slots.Store(int32(t - 1))
	pool.cur.Store(j)
	pool.gen.Add(1)
	for _, w := range pool.workers {
		if w.sleeping.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
	j.run()
	for i := 1; j.finished.Load() < j.nchunks; i++ {
		if i&1023 == 0 {
			runtime.Gosched() // a worker holding a chunk may need this P
		}
	}
}
