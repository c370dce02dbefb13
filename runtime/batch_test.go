package runtime

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// aloneGreedy runs one sequence by itself: prompt, then steps greedy tokens.
// It returns the tokens and the logits each was chosen from.
func aloneGreedy(t *testing.T, tr *Transformer, ctx int, prompt []int, steps int) ([]int, [][]float32) {
	t.Helper()
	st, err := tr.NewState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := st.Forward(prompt, false)
	if err != nil {
		t.Fatal(err)
	}
	var toks []int
	var ls [][]float32
	for range steps {
		ls = append(ls, append([]float32(nil), logits...))
		tok := Argmax(logits)
		toks = append(toks, tok)
		if logits, err = st.Forward([]int{tok}, false); err != nil {
			t.Fatal(err)
		}
	}
	return toks, ls
}

// checkBatchMatchesAlone runs prompts of different lengths through one
// Batch the way a server does (sequences join at different steps, prompts
// go in chunks beside the others' decode tokens) and checks every
// sequence's greedy tokens and logits against running it alone.
func checkBatchMatchesAlone(t *testing.T, tr *Transformer, prompts [][]int, steps, chunk int) {
	t.Helper()
	ctx := 0
	for _, p := range prompts {
		ctx = max(ctx, len(p)+steps+1)
	}
	b, err := tr.NewBatch(len(prompts), ctx, chunk+len(prompts))
	if err != nil {
		t.Fatal(err)
	}
	type seq struct {
		fed    int // prompt tokens run
		toks   []int
		logits [][]float32
		join   int // step at which it starts
	}
	seqs := make([]*seq, len(prompts))
	for i := range seqs {
		seqs[i] = &seq{join: 2 * i}
	}
	for step := 0; ; step++ {
		var items []BatchItem
		var who []int
		budget := chunk
		done := true
		for i, s := range seqs {
			p := prompts[i]
			switch {
			case len(s.toks) >= steps:
				continue
			case step < s.join:
				done = false
				continue
			case s.fed < len(p):
				done = false
				if budget == 0 {
					continue
				}
				n := min(budget, len(p)-s.fed)
				items = append(items, BatchItem{Slot: i, Tokens: p[s.fed : s.fed+n]})
				s.fed += n
				budget -= n
			default:
				done = false
				items = append(items, BatchItem{Slot: i, Tokens: []int{s.toks[len(s.toks)-1]}})
			}
			who = append(who, i)
		}
		if done {
			break
		}
		if len(items) == 0 {
			continue
		}
		out, err := b.Forward(items)
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range who {
			s := seqs[i]
			if s.fed < len(prompts[i]) {
				continue // mid-prompt: its logits are not sampled
			}
			s.logits = append(s.logits, append([]float32(nil), out[k]...))
			s.toks = append(s.toks, Argmax(out[k]))
		}
	}
	for i, p := range prompts {
		want, wantLogits := aloneGreedy(t, tr, ctx, p, steps)
		s := seqs[i]
		var maxDiff float64
		for j := range want {
			if s.toks[j] != want[j] {
				t.Fatalf("sequence %d (prompt %d tokens): step %d: batched token %d, alone %d\nbatched %v\nalone   %v", i, len(p), j, s.toks[j], want[j], s.toks, want)
			}
			for v := range wantLogits[j] {
				d := math.Abs(float64(s.logits[j][v] - wantLogits[j][v]))
				maxDiff = max(maxDiff, d/(math.Abs(float64(wantLogits[j][v]))+1))
			}
		}
		// Products over several rows sum in another order than one row's,
		// so logits differ in the last bits; an f16 cache then rounds a
		// key that moved by 1e-6 to a neighbouring f16 (1e-3 apart).
		tol := 1e-4
		if tr.KVF16 {
			tol = 1e-2
		}
		if maxDiff > tol {
			t.Errorf("sequence %d: logits differ from running alone by up to %.2g (relative)", i, maxDiff)
		}
		t.Logf("sequence %d: prompt %d tokens, %d greedy tokens equal alone's, logits within %.2g", i, len(p), steps, maxDiff)
	}
	for i := range prompts {
		if got, want := b.Pos(i), len(prompts[i])+steps-1; got != want {
			t.Errorf("slot %d holds %d positions, want %d", i, got, want)
		}
	}
}

func randomPrompts(vocab int, lens ...int) [][]int {
	rng := rand.New(rand.NewPCG(7, 8))
	var out [][]int
	for _, n := range lens {
		p := make([]int, n)
		for i := range p {
			p[i] = rng.IntN(vocab)
		}
		out = append(out, p)
	}
	return out
}

func TestBatchMatchesAloneStories(t *testing.T) {
	_, tr := loadTransformer(t, testdata.File(t, "models/stories260K.gguf"))
	prompts := [][]int{storiesTokens, storiesTokens[:3], randomPrompts(tr.Config.Vocab, 37)[0], {1}}
	checkBatchMatchesAlone(t, tr, prompts, 24, 16)
	tr.KVF16 = true
	checkBatchMatchesAlone(t, tr, prompts, 24, 16)
}

func TestBatchMatchesAloneSynthetic(t *testing.T) {
	dir := t.TempDir()
	for name, c := range synth.TinyGGUFConfigs() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".gguf")
			if err := synth.WriteGGUF(path, c, tensor.F16, 3); err != nil {
				t.Fatal(err)
			}
			_, tr := loadTransformer(t, path)
			checkBatchMatchesAlone(t, tr, randomPrompts(c.Vocab, 5, 40, 1, 23), 16, 12)
		})
	}
	c := synth.TinyGGUFConfigs()["tiny-llama"]
	path := filepath.Join(dir, "armor.armor")
	if err := synth.WriteArmor(path, c, synth.ArmorOptions{Variant: synth.Armor, DType: tensor.F16, Block: 16, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tr, err := New(m, ArmorFileBuilder(m))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("armor", func(t *testing.T) {
		checkBatchMatchesAlone(t, tr, randomPrompts(c.Vocab, 9, 30, 2, 17), 16, 8)
	})
}

func TestBatchErrors(t *testing.T) {
	c := synth.TinyGGUFConfigs()["tiny-llama"]
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := synth.WriteGGUF(path, c, tensor.F32, 1); err != nil {
		t.Fatal(err)
	}
	_, tr := loadTransformer(t, path)
	if _, err := tr.NewBatch(4, 16, 2); err == nil {
		t.Error("a step smaller than the slots was accepted")
	}
	b, err := tr.NewBatch(2, 16, 8)
	if err != nil {
		t.Fatal(err)
	}
	for name, items := range map[string][]BatchItem{
		"empty":      nil,
		"bad slot":   {{Slot: 2, Tokens: []int{1}}},
		"twice":      {{Slot: 0, Tokens: []int{1}}, {Slot: 0, Tokens: []int{2}}},
		"no tokens":  {{Slot: 1}},
		"bad token":  {{Slot: 0, Tokens: []int{c.Vocab}}},
		"too many":   {{Slot: 0, Tokens: make([]int, 9)}},
		"over ctx":   {{Slot: 0, Tokens: make([]int, 8)}, {Slot: 1, Tokens: make([]int, 0)}},
		"ctx filled": {{Slot: 1, Tokens: make([]int, 17)}},
	} {
		if _, err := b.Forward(items); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if b.Pos(0) != 0 || b.Pos(1) != 0 {
		t.Errorf("failed steps moved the slots: %d, %d", b.Pos(0), b.Pos(1))
	}
}
