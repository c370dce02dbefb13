package convert

import (
	"github.com/armor-llm/armor/internal/testdata"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/tokenizer"
)

// stories loads stories260K (GGUF) and the first bytes of the training text.
func stories(t *testing.T, textBytes int) (*model.Model, tokenizer.Tokenizer, string) {
	t.Helper()
	td := testdata.Dir(t)
	m, err := model.Load(filepath.Join(td, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(td, "text", "tinystories_train_subset.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok, string(b[:min(textBytes, len(b))])
}

func TestCalibrationSequences(t *testing.T) {
	_, tok, text := stories(t, 40000)
	ids := tok.Tokenize(text, false, false)
	seqs, err := CalibrationSequences(tok, []string{text}, 1000, 64, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 16 { // ceil(1000/64)
		t.Fatalf("%d sequences, want 16", len(seqs))
	}
	prev := -1
	for i, s := range seqs {
		if len(s) != 64 || s[0] != tok.BOS() {
			t.Fatalf("sequence %d: %d tokens starting with %d, want 64 starting with BOS %d", i, len(s), s[0], tok.BOS())
		}
		// The body is a window of the tokenized text at a multiple of 63,
		// and windows come in text order without repeats.
		k := -1
		for start := 0; start+63 <= len(ids); start += 63 {
			if slices.Equal(ids[start:start+63], s[1:]) {
				k = start / 63
				break
			}
		}
		if k < 0 || k <= prev {
			t.Fatalf("sequence %d is not a new window of the text in order (window %d after %d)", i, k, prev)
		}
		prev = k
	}
	again, _ := CalibrationSequences(tok, []string{text}, 1000, 64, 7)
	other, _ := CalibrationSequences(tok, []string{text}, 1000, 64, 8)
	if !slices.EqualFunc(seqs, again, slices.Equal) {
		t.Fatal("same seed, different sequences")
	}
	if slices.EqualFunc(seqs, other, slices.Equal) {
		t.Fatal("seeds 7 and 8 chose the same sequences")
	}
	for _, c := range []struct {
		texts []string
		n     int
		want  string
	}{
		{[]string{""}, 100, "empty"},
		{[]string{" \n "}, 100, "empty"},
		{[]string{"Once upon a time there was a cat."}, 100, "give more text"},
		{[]string{text}, 1 << 22, "give more text"},
	} {
		if _, err := CalibrationSequences(tok, c.texts, c.n, 64, 1); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("texts %.20q, %d tokens: error %v, want one mentioning %q", c.texts, c.n, err, c.want)
		}
	}
}

// The inputs of block 0's q/k/v are RMSNorm(embedding)·attn_norm, which a
// test can compute without the transformer: the recorded statistics must
// match them, in both the diagonal and the full XXᵀ.
func TestCalibrateFirstBlockByHand(t *testing.T) {
	m, tok, text := stories(t, 30000)
	seqs, err := CalibrationSequences(tok, []string{text}, 1024, 128, 3)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Calibrate(m, seqs, CalibOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Tokens != 1024 {
		t.Fatalf("%d tokens, want 1024", st.Tokens)
	}
	c := m.Config
	emb := m.Tensors["token_embd.weight"].ToF32()
	norm := m.Tensors["blk.0.attn_norm.weight"].ToF32()
	d := c.Dim
	h := make([]float64, d)
	H := make([]float64, d*d)
	x := make([]float64, d)
	n := 0
	for _, s := range seqs {
		for _, tk := range s {
			row := emb[tk*d : (tk+1)*d]
			ss := 0.0
			for _, v := range row {
				ss += float64(v) * float64(v)
			}
			sc := 1 / math.Sqrt(ss/float64(d)+c.NormEps)
			for j, v := range row {
				x[j] = float64(v) * sc * float64(norm[j])
				h[j] += x[j] * x[j]
			}
			for i := range x {
				for j := range x {
					H[i*d+j] += x[i] * x[j]
				}
			}
			n++
		}
	}
	for _, name := range []string{"blk.0.attn_q", "blk.0.attn_k", "blk.0.attn_v"} {
		for j := range h {
			if e := relErr(st.H[name][j], h[j]/float64(n)); e > 1e-5 {
				t.Fatalf("%s: h[%d] = %v, by hand %v", name, j, st.H[name][j], h[j]/float64(n))
			}
		}
		var num, den float64
		for k := range H {
			dd := st.Full[name][k] - H[k]/float64(n)
			num += dd * dd
			den += H[k] * H[k] / float64(n*n)
		}
		if math.Sqrt(num/den) > 1e-5 {
			t.Fatalf("%s: full XXᵀ/N differs from the hand computation by %g (relative)", name, math.Sqrt(num/den))
		}
	}
	// Every linear of every block has statistics of its input width; the
	// full matrix is symmetric with h on its diagonal; a second run gives the
	// same bits.
	again, err := Calibrate(m, seqs, CalibOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	for l := 0; l < c.Layers; l++ {
		for _, name := range model.LayerLinears(l) {
			_, cols := shapeOf(m, name)
			hv, F := st.H[name], st.Full[name]
			if len(hv) != cols || len(F) != cols*cols {
				t.Fatalf("%s: %d statistics and %d full, want %d and %d²", name, len(hv), len(F), cols, cols)
			}
			for i := 0; i < cols; i++ {
				if F[i*cols+i] != hv[i] || !(hv[i] > 0) {
					t.Fatalf("%s: diagonal %d: full %v, h %v", name, i, F[i*cols+i], hv[i])
				}
				for j := 0; j < i; j++ {
					if F[i*cols+j] != F[j*cols+i] {
						t.Fatalf("%s: full XXᵀ not symmetric at %d,%d", name, i, j)
					}
				}
			}
			if !slices.Equal(hv, again.H[name]) || !slices.Equal(F, again.Full[name]) {
				t.Fatalf("%s: a second calibration gave different statistics", name)
			}
		}
	}
	// Restricting the layers collects only those.
	part, err := Calibrate(m, seqs, CalibOptions{Layers: []string{"blk.2.ffn_down"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(part.H) != 1 || !slices.Equal(part.H["blk.2.ffn_down"], st.H["blk.2.ffn_down"]) || part.Full != nil {
		t.Fatalf("restricted calibration: %d layers, or different statistics", len(part.H))
	}
	if _, err := Calibrate(m, nil, CalibOptions{}); err == nil {
		t.Fatal("no sequences: no error")
	}
	if _, err := Calibrate(m, [][]int{make([]int, c.Context+1)}, CalibOptions{}); err == nil || !strings.Contains(err.Error(), "context") {
		t.Fatalf("sequence longer than the context: %v", err)
	}
}
