package runtime

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/tensor"
)

func loadTransformer(t *testing.T, path string) (*model.Model, *Transformer) {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tr, err := New(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, tr
}

// storiesTokens is an arbitrary prompt: BOS, " Once upon a time" and a few
// more ids.
var storiesTokens = []int{1, 403, 407, 261, 378, 1008 % 512, 29, 300, 13}

// maxRelLogitDiff runs tokens through both transformers and returns the
// largest relative difference of their logits (relative to b, floor 1e-3).
func maxRelLogitDiff(t *testing.T, a, b *Transformer, tokens []int) float64 {
	t.Helper()
	sa, err := a.NewState(64)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.NewState(64)
	if err != nil {
		t.Fatal(err)
	}
	la, err := sa.Forward(tokens, true)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := sb.Forward(tokens, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(la) != len(lb) {
		t.Fatalf("logit counts differ: %d vs %d", len(la), len(lb))
	}
	var maxRel float64
	for i := range la {
		d := math.Abs(float64(la[i]-lb[i])) / (math.Abs(float64(lb[i])) + 1e-3)
		maxRel = max(maxRel, d)
	}
	return maxRel
}

// writeLlama2c writes m's weights as a genuine llama2.c legacy checkpoint,
// following llama2.c's export.py (legacy_export): every matrix is
// nn.Linear.weight [out][in] serialized row-major, which is the byte order
// the GGUF already holds, so tensors are copied as they are.
func writeLlama2c(t *testing.T, m *model.Model, path string) {
	t.Helper()
	c := m.Config
	get := func(name string) []byte {
		tt := m.Tensors[name]
		if tt == nil || tt.DType != tensor.F32 {
			t.Fatalf("writeLlama2c: tensor %s missing or not F32", name)
		}
		return tt.Data
	}
	// llama2.c has no separate classifier when it equals the embedding.
	shared := m.Tensors["output.weight"] == nil || bytes.Equal(get("output.weight"), get("token_embd.weight"))
	vocab := c.Vocab
	if !shared {
		vocab = -vocab
	}
	var b bytes.Buffer
	for _, h := range []int{c.Dim, c.Hidden, c.Layers, c.Heads, c.KVHeads, vocab, c.Context} {
		binary.Write(&b, binary.LittleEndian, int32(h))
	}
	b.Write(get("token_embd.weight"))
	for _, kind := range []string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"} {
		for l := 0; l < c.Layers; l++ {
			b.Write(get(fmt.Sprintf("blk.%d.%s.weight", l, kind)))
		}
	}
	b.Write(get("output_norm.weight"))
	// freq_cis_real then freq_cis_imag [seq][head_dim/2], as export.py
	// computes them (theta 10000); the loader skips them.
	half := c.HeadDim / 2
	for _, f := range []func(float64) float64{math.Cos, math.Sin} {
		for p := 0; p < c.Context; p++ {
			for i := 0; i < half; i++ {
				freq := 1 / math.Pow(10000, float64(2*i)/float64(c.HeadDim))
				binary.Write(&b, binary.LittleEndian, float32(f(float64(p)*freq)))
			}
		}
	}
	if !shared {
		b.Write(get("output.weight"))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The same weights from GGUF and from a genuine llama2.c checkpoint give the
// same logits. The checkpoint is written from the GGUF by llama2.c's rules
// (writeLlama2c), which also covers an untied classifier's place in the file
// when the GGUF has one; TestSharedStoriesBin checks the shared export.
func TestStoriesGGUFMatchesLlama2c(t *testing.T) {
	g, a := loadTransformer(t, testdata.File(t, "models/stories260K.gguf"))
	p := filepath.Join(t.TempDir(), "stories260K.bin")
	writeLlama2c(t, g, p)
	bm, b := loadTransformer(t, p)
	if bm.Format != "llama2c" {
		t.Fatalf("%s loaded as %q, want llama2c", p, bm.Format)
	}
	if d := maxRelLogitDiff(t, a, b, storiesTokens); d > 1e-5 {
		t.Fatalf("max relative logit difference %g > 1e-5", d)
	}
}

// greedyText generates steps tokens greedily from BOS and decodes them as
// run.c does (byte tokens <0xXX> as bytes, "▁" as space, the leading space
// after BOS dropped).
func greedyText(t *testing.T, tr *Transformer, pieces []string, steps int) string {
	t.Helper()
	s, err := tr.NewState(steps)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	tok := 1
	for i := 0; i < steps; i++ {
		logits, err := s.Forward([]int{tok}, false)
		if err != nil {
			t.Fatal(err)
		}
		next := 0
		for j, v := range logits {
			if v > logits[next] {
				next = j
			}
		}
		if next == 1 { // run.c stops at BOS
			break
		}
		p := pieces[next]
		var bv byte
		if n, _ := fmt.Sscanf(p, "<0x%02X>", &bv); n == 1 && len(p) == 6 {
			out.WriteByte(bv)
		} else {
			p = strings.ReplaceAll(p, "▁", " ")
			if tok == 1 {
				p = strings.TrimPrefix(p, " ")
			}
			out.WriteString(p)
		}
		tok = next
	}
	return out.String()
}

// Both the GGUF and a genuine llama2.c checkpoint written from it reproduce
// llama2.c's own greedy output, which pins the GGUF as the weights as trained
// and the runtime to run.c.
func TestStoriesGreedyMatchesLlama2cReference(t *testing.T) {
	g, a := loadTransformer(t, testdata.File(t, "models/stories260K.gguf"))
	if g.Vocab == nil || len(g.Vocab.Tokens) != g.Config.Vocab {
		t.Fatal("stories260K.gguf carries no vocabulary")
	}
	p := filepath.Join(t.TempDir(), "stories260K.bin")
	writeLlama2c(t, g, p)
	_, b := loadTransformer(t, p)
	for _, c := range []struct {
		name string
		tr   *Transformer
	}{{"gguf", a}, {"llama2c", b}} {
		if got := greedyText(t, c.tr, g.Vocab.Tokens, 200); got != testdata.Llama2cStoriesGreedy {
			t.Errorf("%s: greedy text differs from llama2.c's reference:\n got %q\nwant %q", c.name, got, testdata.Llama2cStoriesGreedy)
		}
	}
}

// TestSharedStoriesBin proves the shared stories260K.bin a genuine llama2.c
// checkpoint of the GGUF's weights: every tensor holds the GGUF's bytes, its
// logits are the GGUF's, and its greedy text is llama2.c's own reference.
func TestSharedStoriesBin(t *testing.T) {
	g, a := loadTransformer(t, testdata.File(t, "models/stories260K.gguf"))
	bm, b := loadTransformer(t, testdata.File(t, "models/stories260K.bin"))
	if bm.Format != "llama2c" {
		t.Fatalf("stories260K.bin loaded as %q, want llama2c", bm.Format)
	}
	if bm.Config.Dim != g.Config.Dim || bm.Config.Layers != g.Config.Layers || bm.Config.KVHeads != g.Config.KVHeads || bm.Config.Vocab != g.Config.Vocab {
		t.Fatalf("stories260K.bin config %+v differs from the GGUF's %+v", bm.Config, g.Config)
	}
	for name, bt := range bm.Tensors {
		gt := g.Tensors[name]
		if gt == nil {
			t.Fatalf("stories260K.bin: tensor %s has no GGUF twin", name)
		}
		if !bytes.Equal(bt.Data, gt.Data) {
			t.Errorf("stories260K.bin: tensor %s %v differs from the GGUF's", name, bt.Shape)
		}
	}
	if d := maxRelLogitDiff(t, a, b, storiesTokens); d > 1e-5 {
		t.Fatalf("max relative logit difference %g > 1e-5", d)
	}
	if got := greedyText(t, b, g.Vocab.Tokens, 200); got != testdata.Llama2cStoriesGreedy {
		t.Fatalf("stories260K.bin: greedy text differs from llama2.c's reference:\n got %q\nwant %q", got, testdata.Llama2cStoriesGreedy)
	}
}

// OpenWith reports reading a copied file and building every block.
func TestOpenProgress(t *testing.T) {
	defer mmap.SetMode(mmap.CurrentMode())
	mmap.SetMode(mmap.Copy)
	p := testdata.File(t, "models/stories260K.gguf")
	var read, built int64
	var stages []string
	ld, err := OpenWith("cpu", p, "", true, OpenOptions{Progress: func(stage string, done, total int64) {
		if len(stages) == 0 || stages[len(stages)-1] != stage {
			stages = append(stages, stage)
		}
		if stage == "reading" && done == total {
			read = total
		}
		if stage == "building" && done == total {
			built = total
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	st, _ := os.Stat(p)
	if strings.Join(stages, ",") != "reading,building" || read != st.Size() || built != int64(ld.Tr.Config.Layers) {
		t.Fatalf("stages %v, read %d of %d bytes, built %d blocks", stages, read, st.Size(), built)
	}
}
