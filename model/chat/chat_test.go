package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model/tokenizer"
)

// loadTemplate reads chat_template, bos_token and eos_token from a
// tokenizer_config.json of the test data.
func loadTemplate(t *testing.T, model string) *Jinja {
	t.Helper()
	data, err := os.ReadFile(testdata.File(t, filepath.Join("tokenizers", model, "tokenizer_config.json")))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ChatTemplate string  `json:"chat_template"`
		BOS          *string `json:"bos_token"`
		EOS          *string `json:"eos_token"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	tmpl, err := FromJinja(c.ChatTemplate, str(c.BOS), str(c.EOS))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

var twoTurns = []Message{
	{"system", "You are helpful."},
	{"user", "Hello"},
	{"assistant", "Hi there!"},
	{"user", "How are you?"},
}

func check(t *testing.T, tmpl Template, msgs []Message, gen bool, want string) {
	t.Helper()
	got, err := tmpl.Render(msgs, gen)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("rendered\n%q\nwant\n%q", got, want)
	}
}

func TestQwen3Template(t *testing.T) {
	tmpl := loadTemplate(t, "qwen3")
	check(t, tmpl, twoTurns, true,
		"<|im_start|>system\nYou are helpful.<|im_end|>\n"+
			"<|im_start|>user\nHello<|im_end|>\n"+
			"<|im_start|>assistant\nHi there!<|im_end|>\n"+
			"<|im_start|>user\nHow are you?<|im_end|>\n"+
			"<|im_start|>assistant\n")
	// Reasoning in an earlier answer is dropped (content after </think>,
	// left-stripped of newlines); no system message means no system block.
	check(t, tmpl, []Message{
		{"user", "Hello"},
		{"assistant", "<think>\nhmm\n</think>\n\nHi!"},
		{"user", "Bye"},
	}, false,
		"<|im_start|>user\nHello<|im_end|>\n"+
			"<|im_start|>assistant\nHi!<|im_end|>\n"+
			"<|im_start|>user\nBye<|im_end|>\n")
	// The final answer after the last query gets an (empty) think block.
	check(t, tmpl, []Message{{"user", "Hello"}, {"assistant", "Hi!"}}, false,
		"<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi!<|im_end|>\n")
	// enable_thinking=false pre-fills an empty think block.
	tmpl.Vars = map[string]any{"enable_thinking": false}
	check(t, tmpl, []Message{{"user", "Hello"}}, true,
		"<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
}

func TestLlama3Template(t *testing.T) {
	tmpl := loadTemplate(t, "llama3")
	want := "<|begin_of_text|>" +
		"<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\nHi there!<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\n"
	check(t, tmpl, twoTurns, true, want)
	// This (base-model) template writes the assistant header even without
	// add_generation_prompt, and trims contents.
	check(t, tmpl, []Message{{"user", "  Hi \n"}}, false,
		"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
	// The built-in llama3 template agrees with the shipped one.
	b, err := Builtin("llama3")
	if err != nil {
		t.Fatal(err)
	}
	check(t, b, twoTurns, true, want)
}

func TestBuiltins(t *testing.T) {
	chatml, err := Builtin("chatml")
	if err != nil {
		t.Fatal(err)
	}
	check(t, chatml, twoTurns, true,
		"<|im_start|>system\nYou are helpful.<|im_end|>\n"+
			"<|im_start|>user\nHello<|im_end|>\n"+
			"<|im_start|>assistant\nHi there!<|im_end|>\n"+
			"<|im_start|>user\nHow are you?<|im_end|>\n"+
			"<|im_start|>assistant\n")
	check(t, chatml, twoTurns[1:2], false, "<|im_start|>user\nHello<|im_end|>\n")

	llama2, err := Builtin("llama2")
	if err != nil {
		t.Fatal(err)
	}
	check(t, llama2, twoTurns, true,
		"<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHello [/INST] Hi there! </s>"+
			"<s>[INST] How are you? [/INST]")
	check(t, llama2, twoTurns[1:2], true, "<s>[INST] Hello [/INST]")

	plain, err := Builtin("plain")
	if err != nil {
		t.Fatal(err)
	}
	check(t, plain, []Message{{"user", "Once upon a time"}}, true, "Once upon a time")
	check(t, plain, twoTurns[:2], true, "You are helpful.\n\nHello")

	if _, err := Builtin("nope"); err == nil {
		t.Error("unknown built-in accepted")
	}
	if _, err := FromJinja("{% if %}", "", ""); err == nil {
		t.Error("broken template accepted")
	}
	if !StartsWithBOS("<s>[INST]", "<s>") || StartsWithBOS("<|im_start|>", "") {
		t.Error("StartsWithBOS")
	}
	has := func(set ...string) func(string) bool {
		return func(s string) bool {
			for _, x := range set {
				if x == s {
					return true
				}
			}
			return false
		}
	}
	for want, toks := range map[string][]string{
		"chatml": {"<|im_start|>", "<|im_end|>"},
		"llama3": {"<|start_header_id|>", "<|eot_id|>"},
		"plain":  {"<s>", "</s>"},
	} {
		if got := GuessBuiltin(has(toks...)); got != want {
			t.Errorf("GuessBuiltin(%v) = %s, want %s", toks, got, want)
		}
	}
}

// TestRenderedTokens checks the documented convention end to end: rendered
// text, encoded with special-token parsing, gives the control tokens.
func TestRenderedTokens(t *testing.T) {
	tmpl := loadTemplate(t, "qwen3")
	text, err := tmpl.Render([]Message{{"user", "Hello"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadHFTokenizer(filepath.Join(testdata.Dir(t), "tokenizers", "qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	got := tok.Encode(text, tok.AddBOSDefault() && !StartsWithBOS(text, ""))
	// <|im_start|> user \n Hello <|im_end|> \n <|im_start|> assistant \n
	want := []int{151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198}
	if !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}

	tmpl = loadTemplate(t, "llama3")
	text, err = tmpl.Render([]Message{{"user", "Hello"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	l3, err := tokenizer.LoadHFTokenizer(filepath.Join(testdata.Dir(t), "tokenizers", "llama3"))
	if err != nil {
		t.Fatal(err)
	}
	bos := l3.Decode([]int{l3.BOS()})
	if !StartsWithBOS(text, bos) {
		t.Fatalf("llama3 rendering %q does not start with BOS %q", text, bos)
	}
	got = l3.Encode(text, l3.AddBOSDefault() && !StartsWithBOS(text, bos))
	if got[0] != 128000 || got[1] != 128006 || got[len(got)-1] == 128000 || slices.Index(got[1:], 128000) >= 0 {
		t.Fatalf("llama3 tokens %v: want exactly one leading BOS then <|start_header_id|>", got)
	}
}
