// Package hostile holds the bounds a reader must keep when it refuses a
// hostile input, for the tests of every reader (issue 14: fail within a
// second, allocating under 100 MB).
package hostile

import (
	"runtime"
	"testing"
	"time"
)

const (
	MaxTime  = time.Second // to refuse a hostile input
	MaxAlloc = 100 << 20   // bytes allocated on the way
)

// Bounded runs f and reports on t when it took longer than MaxTime or
// allocated more than MaxAlloc bytes.
func Bounded(t testing.TB, what string, f func()) {
	t.Helper()
	Within(t, what, MaxTime, f)
}

// Within is Bounded with another time limit (a case that must run into a
// timeout of its own first).
func Within(t testing.TB, what string, max time.Duration, f func()) {
	t.Helper()
	el, alloc := measure(f)
	if el > max {
		// A busy machine (CI shares its cores) can stretch one run; a
		// reader that really spins takes as long again.
		el, alloc = measure(f)
	}
	if el > max {
		t.Errorf("%s: took %v twice (limit %v)", what, el, max)
	}
	if alloc > MaxAlloc {
		t.Errorf("%s: allocated %d MB (limit %d MB)", what, alloc>>20, MaxAlloc>>20)
	}
}

// measure runs f and returns its wall time and the bytes it allocated.
func measure(f func()) (time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	return el, after.TotalAlloc - before.TotalAlloc
}
