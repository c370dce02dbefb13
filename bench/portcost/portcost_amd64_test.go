package portcost

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// BenchmarkUnits reports each body's time per pass and per dense-equivalent
// multiply-add (ns/denseMAC: the dense and 2:4 bodies compare directly; for
// the op pairs, 16 per FMA).
func BenchmarkUnits(b *testing.B) {
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512BW {
		b.Skip("no AVX-512 on this machine")
	}
	buf := make([]float32, 8192) // zeros: weights, activations and index words
	for _, u := range units {
		b.Run(u.name, func(b *testing.B) {
			const passes = 1 << 12
			for range b.N {
				u.fn(passes, &buf[0])
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / passes
			b.ReportMetric(ns, "ns/pass")
			b.ReportMetric(ns/float64(u.macs), "ns/denseMAC")
		})
	}
}

// TestUnitsRun runs every body once, so that a broken generator or a body
// that faults fails the tests and not only the benchmark.
func TestUnitsRun(t *testing.T) {
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512BW {
		t.Skip("no AVX-512 on this machine")
	}
	buf := make([]float32, 8192)
	for _, u := range units {
		u.fn(3, &buf[0])
		if u.macs <= 0 {
			t.Errorf("%s: %d multiply-adds a pass", u.name, u.macs)
		}
	}
}
