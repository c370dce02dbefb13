package convert

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model"
)

// storiesLayers reads linear weights of the first transformer layer of
// stories260K from its GGUF (the shared .bin holds the same tensors, see
// runtime/stories_test.go).
func storiesLayers(t *testing.T) map[string]Matrix {
	t.Helper()
	m, err := model.Load(filepath.Join(testdata.Dir(t), "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := map[string]Matrix{}
	for short, name := range map[string]string{"wq": "blk.0.attn_q.weight", "wk": "blk.0.attn_k.weight", "wo": "blk.0.attn_output.weight",
		"w1": "blk.0.ffn_gate.weight", "w2": "blk.0.ffn_down.weight"} {
		tt := m.Tensors[name]
		f := tt.ToF32()
		mat := Matrix{Rows: tt.Shape[0], Cols: tt.Shape[1], Data: make([]float64, len(f))}
		for i, v := range f {
			mat.Data[i] = float64(v)
		}
		out[short] = mat
	}
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
	h := storiesCalibration(t)
	for _, name := range []string{"w1", "w2", "wq"} {
		w := layers[name]
		for _, b := range []int{4, 8} {
			t.Log(compareLine(t, fmt.Sprintf("%s b=%d", name, b), w, h[name], b))
		}
	}
}

// storiesCalibration returns the real calibration statistics h of block 0's
// inputs (40,960 tokens of the training text in sequences of 256, seed 1:
// the quality table's setting), keyed like storiesLayers.
func storiesCalibration(t *testing.T) map[string][]float64 {
	m, err := model.Load(filepath.Join(testdata.Dir(t), "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(testdata.Dir(t), "text", "tinystories_train_subset.txt"))
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := CalibrationSequences(tok, []string{string(text)}, 40960, 256, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Calibrate(m, seqs, CalibOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for short, name := range map[string]string{"wq": "blk.0.attn_q", "wk": "blk.0.attn_k", "wo": "blk.0.attn_output", "w1": "blk.0.ffn_gate", "w2": "blk.0.ffn_down"} {
		if out[short] = st.H[name]; out[short] == nil {
			t.Fatalf("no statistics for %s", name)
		}
	}
	return out
}
