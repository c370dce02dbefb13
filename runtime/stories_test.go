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
// (writeLlama2c) because the shared stories260K.bin is not a genuine export
// (see TestSharedStoriesBin).
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

// llama2cReference is what llama2.c's run.c prints for the genuine
// stories260K.bin with tok512.bin at temperature 0 for 200 steps: the
// expected_stdout of llama2.c's test_all.py (an external reference, not an
// output of this project).
const llama2cReference = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"\nLily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\nLily didn't want to help her mom, so she"

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
		if got := greedyText(t, c.tr, g.Vocab.Tokens, 200); got != llama2cReference {
			t.Errorf("%s: greedy text differs from llama2.c's reference:\n got %q\nwant %q", c.name, got, llama2cReference)
		}
	}
}

// unpermuteShared undoes the permutation found in the shared
// stories260K.bin: for a matrix with R rows (out) and C columns (in), N = R·C
// floats, the genuine float k sits at index C⁵·k mod (N−1) of the file (the
// last float stays). That is the file holding g⁵(W), where g(W) reads W's
// floats as a [C][R] matrix and transposes it back to [R][C] (a transpose
// done with the in/out shape mislabelled); for square matrices g is the plain
// transpose and g⁵ = g. It returns false when the tensor does not match the
// genuine one under that map.
func unpermuteShared(file, genuine *tensor.Tensor) ([]byte, bool) {
	if len(file.Shape) != 2 || len(file.Data) != len(genuine.Data) {
		return nil, false
	}
	r, c := int64(file.Shape[0]), int64(file.Shape[1])
	n := r * c
	if n < 2 {
		return nil, false
	}
	mul := int64(1)
	for range 5 {
		mul = mul * c % (n - 1)
	}
	out := make([]byte, len(file.Data))
	for k := int64(0); k < n; k++ {
		j := n - 1
		if k != n-1 {
			j = mul * k % (n - 1)
		}
		copy(out[4*k:4*k+4], file.Data[4*j:4*j+4])
	}
	return out, bytes.Equal(out, genuine.Data)
}

// TestSharedStoriesBin checks the shared stories260K.bin against its GGUF
// twin. A genuine llama2.c file must give the GGUF's logits as loaded. The
// file shipped in testdata is not genuine: its embedding and norms equal the
// GGUF's but every matrix is permuted within itself (unpermuteShared); as
// loaded it computes garbage. The test pins that exact permutation and
// checks that, undone, the file gives the GGUF's logits, so the diagnosis
// fails loudly if the file changes.
func TestSharedStoriesBin(t *testing.T) {
	g, a := loadTransformer(t, testdata.File(t, "models/stories260K.gguf"))
	bm, err := model.Load(testdata.File(t, "models/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Close()
	// As loaded (views on the file as it is), for the record.
	b0, err := New(bm, nil)
	if err != nil {
		t.Fatal(err)
	}
	asIs := maxRelLogitDiff(t, a, b0, storiesTokens)
	genuine, permuted := 0, 0
	for name, bt := range bm.Tensors {
		gt := g.Tensors[name]
		if gt == nil {
			t.Fatalf("stories260K.bin: tensor %s has no GGUF twin", name)
		}
		if bytes.Equal(bt.Data, gt.Data) {
			genuine++
			continue
		}
		fixed, ok := unpermuteShared(bt, gt)
		if !ok {
			t.Fatalf("stories260K.bin: tensor %s %v differs from the GGUF's and is not the known permutation of it", name, bt.Shape)
		}
		bt.Data = fixed
		permuted++
	}
	// Built after the repair: New views tensor data as it finds it.
	b, err := New(bm, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := maxRelLogitDiff(t, a, b, storiesTokens)
	if permuted > 0 {
		t.Logf("stories260K.bin is not a genuine llama2.c export: %d matrices permuted (C^5 map), %d tensors genuine; max relative logit difference %g as loaded, %g undone", permuted, genuine, asIs, d)
		// Every matrix of the 5 layers (7 each) is permuted; nothing else.
		if permuted != 7*g.Config.Layers {
			t.Errorf("%d permuted tensors, want %d", permuted, 7*g.Config.Layers)
		}
	}
	if d > 1e-5 {
		t.Fatalf("max relative logit difference %g > 1e-5", d)
	}
}
