package convert

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// TestCompareReferenceFast measures the target: the multiply-adds
// ArmorFast needs to reach the reference schedule's 2,000-iteration proxy
// loss, on a random 64×172 layer with log-normal h. It is a measurement
// (seconds to minutes), so it runs only with ARMOR_COMPARE=1;
// ARMOR_COMPARE_ITERS overrides the reference's 2,000 iterations and
// ARMOR_COMPARE_SWEEPS ArmorFast's 200 sweeps.
//
//	ARMOR_COMPARE=1 go test -run CompareReferenceFast -v ./convert/
func TestCompareReferenceFast(t *testing.T) {
	if os.Getenv("ARMOR_COMPARE") != "1" {
		t.Skip("measurement: set ARMOR_COMPARE=1 to run")
	}
	w, h := randLayer(newRng(42), 64, 172)
	for _, b := range []int{4, 8, 16} {
		t.Log(compareLine(t, fmt.Sprintf("b=%-2d", b), w, h, b))
	}
}

// compareIters returns the reference's iterations and ArmorFast's sweeps
// for the comparisons (ARMOR_COMPARE_ITERS, ARMOR_COMPARE_SWEEPS).
func compareIters() (int, int) {
	refIters, sweeps := 2000, 200
	if v, err := strconv.Atoi(os.Getenv("ARMOR_COMPARE_ITERS")); err == nil && v > 0 {
		refIters = v
	}
	if v, err := strconv.Atoi(os.Getenv("ARMOR_COMPARE_SWEEPS")); err == nil && v > 0 {
		sweeps = v
	}
	return refIters, sweeps
}

// compareLine runs both methods on one layer and describes loss vs
// multiply-adds, and where ArmorFast first reaches the reference's loss.
func compareLine(t *testing.T, label string, w Matrix, h []float64, b int) string {
	refIters, sweeps := compareIters()
	ref, err := Armor(w, h, Options{Block: b, Iters: refIters, Seed: 1, Patience: refIters})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := ArmorFast(w, h, Options{Block: b, Iters: sweeps, Patience: sweeps})
	if err != nil {
		t.Fatal(err)
	}
	// reach describes where ArmorFast first gets to the loss target.
	reach := func(what string, target float64) string {
		for k, p := range fast.History {
			if p.Loss <= target {
				return fmt.Sprintf(" | reaches armor's %s loss at sweep %d with %.3g madds = %.2f%% of armor's %s", what, k, float64(p.MulAdds), 100*float64(p.MulAdds)/float64(ref.MulAdds), what)
			}
		}
		return fmt.Sprintf(" | ends %.2f%% above armor's %s loss", 100*(fast.BestLoss/target-1), what)
	}
	line := fmt.Sprintf("%s NoWag-P %.5f | armor %d it: %.5f, %.3g madds", label, ref.InitLoss, ref.Iters, ref.BestLoss, float64(ref.MulAdds))
	for _, it := range []int{100, 500, 1000, 2000} {
		if it < len(ref.History)-1 {
			line += fmt.Sprintf(" (it %d: %.5f)", it, ref.History[it].Loss)
		}
	}
	line += fmt.Sprintf(" | armor-fast %d sweeps: %.5f, %.3g madds", fast.Iters, fast.BestLoss, float64(fast.MulAdds))
	for _, sw := range []int{1, 5, 10, 20, 50, 100, 200, 500} {
		if sw < len(fast.History)-1 {
			line += fmt.Sprintf(" (sw %d: %.5f)", sw, fast.History[sw].Loss)
		}
	}
	if len(ref.History) > 2001 {
		p := ref.History[2000]
		for k, q := range fast.History {
			if q.Loss <= p.Loss {
				line += fmt.Sprintf(" | reaches armor's 2000-it loss at sweep %d with %.3g madds = %.2f%% of armor's 2000 its", k, float64(q.MulAdds), 100*float64(q.MulAdds)/float64(p.MulAdds))
				break
			}
		}
	}
	line += reach(fmt.Sprintf("%d-it", ref.Iters), ref.BestLoss)
	return line
}

// Wall time per reference iteration and per ArmorFast sweep (plain, and with
// the 10 L-BFGS steps of the late phase) on a 64×172 layer at b = 8:
//
//	go test -run - -bench Armor -benchtime 20x ./convert/
func BenchmarkArmorIteration(b *testing.B) {
	w, h := randLayer(newRng(42), 64, 172)
	for b.Loop() {
		if _, err := Armor(w, h, Options{Block: 8, Iters: 100, Patience: 1000, Threads: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/iter")
}

func BenchmarkArmorFastSweep(b *testing.B) {
	w, h := randLayer(newRng(42), 64, 172)
	for _, lb := range []int{-1, 10} {
		b.Run(fmt.Sprintf("lbfgs=%d", lb), func(b *testing.B) {
			for b.Loop() {
				if _, err := ArmorFast(w, h, Options{Block: 8, Iters: 10, Patience: 1000, LBFGSSteps: lb, LBFGSSwitch: -1, Threads: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10, "ns/sweep")
		})
	}
}
