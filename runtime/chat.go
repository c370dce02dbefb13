package runtime

import (
	"fmt"

	"github.com/armor-llm/armor/model/chat"
)

// ChatTemplate picks the chat template of a loaded model, for armor-run
// --chat and armor-serve alike: the built-in one named (chatml, llama3,
// llama2, plain), else the model's own Jinja template, else a built-in one
// guessed from the vocabulary's special tokens. warn hears why the model's
// template was not used (nil: not told).
func (l *Loaded) ChatTemplate(name string, warn func(string)) (chat.Template, error) {
	if l.Tok == nil {
		return nil, fmt.Errorf("%s: a chat template needs the model's tokenizer", l.Model.Path)
	}
	if name == "" {
		if src := l.Model.ChatTemplate(); src != "" {
			bos, eos := "", ""
			if b := l.Tok.BOS(); b >= 0 {
				bos = l.Tok.Piece(b)
			}
			if e := l.Tok.EOS(); e >= 0 {
				eos = l.Tok.Piece(e)
			}
			// The source (file and key) names the template in its errors.
			t, err := chat.FromJinjaSource(src, l.Model.ChatTemplateSource(), bos, eos)
			if err == nil {
				return t, nil
			}
			if warn != nil {
				warn(fmt.Sprintf("the model's chat template does not compile (%v); using a built-in one", err))
			}
		}
		name = chat.GuessBuiltin(func(text string) bool { return len(l.Tok.Encode(text, false)) == 1 })
	}
	return chat.Builtin(name)
}
