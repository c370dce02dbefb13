package runtime

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// Small llama, qwen2 and qwen3 models written by our own GGUF writer make
// llama.cpp's greedy choices (testdata/llamacpp/synthetic_greedy.json, from
// bench/llamacpp/synthetic.sh). Steps where llama.cpp's top two logits were
// within 0.02 are not compared: there its f16 KV cache may legitimately pick
// the other token.
func TestSyntheticGGUFGreedyMatchesLlamaCpp(t *testing.T) {
	var golden map[string]struct {
		Prompt       string    `json:"prompt"`
		PromptIDs    []int     `json:"prompt_ids"`
		GeneratedIDs []int     `json:"generated_ids"`
		Margins      []float64 `json:"margins"`
	}
	testdata.LlamaCpp(t, "synthetic_greedy.json", &golden)
	dir := t.TempDir()
	for name, c := range synth.TinyGGUFConfigs() {
		g, ok := golden[name]
		if !ok {
			t.Fatalf("no golden for %s", name)
		}
		path := filepath.Join(dir, name+".gguf")
		if err := synth.WriteGGUF(path, c, tensor.F32, 11); err != nil {
			t.Fatal(err)
		}
		ld, err := Open(path, "", true)
		if err != nil {
			t.Fatal(err)
		}
		prompt := ld.Tok.Encode(g.Prompt, true)
		if !slices.Equal(prompt, g.PromptIDs) {
			t.Fatalf("%s: prompt ids %v, llama.cpp %v", name, prompt, g.PromptIDs)
		}
		// Teacher-forced: feed llama.cpp's tokens and check our argmax at every
		// step whose margin is clear.
		st, _ := ld.Tr.NewState(128)
		logits, err := st.Forward(prompt, false)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for i, want := range g.GeneratedIDs {
			if g.Margins[i] >= 0.02 {
				if got := Argmax(logits); got != want {
					t.Errorf("%s: step %d: argmax %d, llama.cpp %d (its margin %.3f)", name, i, got, want, g.Margins[i])
				}
				checked++
			}
			if logits, err = st.Forward([]int{want}, false); err != nil {
				t.Fatal(err)
			}
		}
		if checked < len(g.GeneratedIDs)*3/4 {
			t.Fatalf("%s: only %d of %d steps had a clear margin", name, checked, len(g.GeneratedIDs))
		}
		t.Logf("%s: %d of %d greedy choices checked, all equal llama.cpp's", name, checked, len(g.GeneratedIDs))
		ld.Close()
	}
}
