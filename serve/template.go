package serve

import (
	"fmt"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/chat"
	"github.com/armor-llm/armor/model/tokenizer"
)

// ChatTemplate picks the chat template as armor-run --chat does: the
// built-in one named (chatml, llama3, llama2, plain), else the model's own
// Jinja template, else a built-in one guessed from the vocabulary's special
// tokens. warn hears why the model's template was not used.
func ChatTemplate(m *model.Model, tok tokenizer.Tokenizer, name string, warn func(string)) (chat.Template, error) {
	if name == "" {
		if src := m.ChatTemplate(); src != "" {
			bos, eos := "", ""
			if b := tok.BOS(); b >= 0 {
				bos = tok.Piece(b)
			}
			if e := tok.EOS(); e >= 0 {
				eos = tok.Piece(e)
			}
			t, err := chat.FromJinja(src, bos, eos)
			if err == nil {
				return t, nil
			}
			if warn != nil {
				warn(fmt.Sprintf("the model's chat template does not compile (%v); using a built-in one", err))
			}
		}
		name = chat.GuessBuiltin(func(text string) bool { return len(tok.Encode(text, false)) == 1 })
	}
	return chat.Builtin(name)
}
