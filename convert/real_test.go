package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// testdataDir finds the shared test data: $ARMOR_TESTDATA, or shared/testdata
// in the repository root or any directory above it. It skips the test when the
// data is absent, unless ARMOR_REQUIRE_TESTDATA=1.
func testdataDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("ARMOR_TESTDATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err == nil {
		for {
			cand := filepath.Join(dir, "shared", "testdata")
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				return cand
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if os.Getenv("ARMOR_REQUIRE_TESTDATA") == "1" {
		t.Fatal("test data not found: set ARMOR_TESTDATA or put shared/testdata beside the repository")
	}
	t.Skip("test data not found (../shared/testdata or $ARMOR_TESTDATA); skipping")
	return ""
}

// storiesLayers reads the linear weights of the first transformer layer of
// stories260K from its llama2.c checkpoint (a test-only reader: the model
// loaders live in model/).
func storiesLayers(t *testing.T) map[string]Matrix {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testdataDir(t), "models", "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var hdr [7]int32
	for i := range hdr {
		hdr[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	dim, hidden, layers, heads, kvHeads, vocab := int(hdr[0]), int(hdr[1]), int(hdr[2]), int(hdr[3]), int(hdr[4]), int(hdr[5])
	if vocab < 0 {
		vocab = -vocab
	}
	kvDim := dim * kvHeads / heads
	off := 28
	next := func(rows, cols int) Matrix {
		if off+4*rows*cols > len(raw) {
			t.Fatalf("stories260K.bin: %d×%d tensor at byte %d runs past the end (%d bytes)", rows, cols, off, len(raw))
		}
		m := Matrix{Rows: rows, Cols: cols, Data: make([]float64, rows*cols)}
		for k := range m.Data {
			m.Data[k] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[off+4*k:])))
		}
		return m
	}
	skip := func(n int) { off += 4 * n }
	skip(vocab * dim)  // token embedding
	skip(layers * dim) // attention RMS norms
	out := map[string]Matrix{}
	out["wq"] = next(dim, dim)
	skip((layers - 1) * dim * dim)
	out["wk"] = next(kvDim, dim)
	skip((layers - 1) * kvDim * dim)
	skip(layers * kvDim * dim) // wv
	out["wo"] = next(dim, dim)
	skip((layers - 1) * dim * dim)
	skip(layers * dim) // FFN RMS norms
	out["w1"] = next(hidden, dim)
	skip((layers - 1) * hidden * dim)
	out["w2"] = next(dim, hidden)
	return out
}

// On real trained weights (with synthetic log-normal statistics until the
// calibration pass exists), both ARMOR variants beat NoWag-P at b = 4 and 8.
func TestRealWeightsBeatNoWagP(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for name, w := range storiesLayers(t) {
		h := make([]float64, w.Cols)
		rng := newRng(uint64(len(name)))
		for j := range h {
			h[j] = math.Exp(1.5 * rng.NormFloat64())
		}
		now, _ := NoWagP(w, h)
		nowLoss, _ := ProxyLoss(w, h, now.W)
		for _, b := range []int{4, 8} {
			ref, err := Armor(w, h, Options{Block: b, Iters: 100, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			fast, err := ArmorFast(w, h, Options{Block: b, Iters: 10})
			if err != nil {
				t.Fatal(err)
			}
			if !(ref.BestLoss <= nowLoss && fast.BestLoss < nowLoss) {
				t.Fatalf("%s b=%d: NoWag-P %v, armor %v, armor-fast %v", name, b, nowLoss, ref.BestLoss, fast.BestLoss)
			}
			t.Logf("%s %dx%d b=%d: NoWag-P %.5f armor(100 it) %.5f armor-fast(10 sweeps) %.5f", name, w.Rows, w.Cols, b, nowLoss, ref.BestLoss, fast.BestLoss)
		}
	}
}

// TestCompareRealWeights is TestCompareReferenceFast on stories260K's layer-0
// w1 (172×64) and w2 (64×172) (ARMOR_COMPARE=1).
func TestCompareRealWeights(t *testing.T) {
	if os.Getenv("ARMOR_COMPARE") != "1" {
		t.Skip("measurement: set ARMOR_COMPARE=1 to run")
	}
	layers := storiesLayers(t)
	for _, name := range []string{"w1", "w2"} {
		w := layers[name]
		h := make([]float64, w.Cols)
		rng := newRng(77)
		for j := range h {
			h[j] = math.Exp(1.5 * rng.NormFloat64())
		}
		for _, b := range []int{4, 8} {
			t.Log(compareLine(t, fmt.Sprintf("%s b=%d", name, b), w, h, b))
		}
	}
}
