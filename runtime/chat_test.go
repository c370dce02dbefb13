package runtime

import (
	"strings"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model/chat"
)

// One template choice for armor-run and armor-serve: a named built-in wins,
// the model's own Jinja template comes next, and one that does not compile
// falls back to a built-in one with a warning naming where it came from.
func TestLoadedChatTemplate(t *testing.T) {
	ld, err := Open(testdata.File(t, "models/stories260K.gguf"), "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	msgs := []chat.Message{{Role: "user", Content: "hi"}}
	render := func(tm chat.Template) string {
		s, err := tm.Render(msgs, true)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := func(name string) string {
		tm, err := chat.Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		return render(tm)
	}
	var warned []string
	warn := func(s string) { warned = append(warned, s) }

	ld.Model.Vocab.ChatTemplate = "{% for m in messages %}<<{{ m.content }}>>{% endfor %}"
	tm, err := ld.ChatTemplate("chatml", warn)
	if err != nil {
		t.Fatal(err)
	}
	if got := render(tm); got != want("chatml") {
		t.Errorf("named chatml rendered %q, want %q", got, want("chatml"))
	}
	tm, err = ld.ChatTemplate("", warn)
	if err != nil {
		t.Fatal(err)
	}
	if got := render(tm); got != "<<hi>>" {
		t.Errorf("model's template rendered %q, want <<hi>>", got)
	}
	if len(warned) != 0 {
		t.Errorf("warnings for a good template: %q", warned)
	}

	ld.Model.Vocab.ChatTemplate = "{% for m in messages %}"
	tm, err = ld.ChatTemplate("", warn)
	if err != nil {
		t.Fatal(err)
	}
	guessed := chat.GuessBuiltin(func(text string) bool { return len(ld.Tok.Encode(text, false)) == 1 })
	if got := render(tm); got != want(guessed) {
		t.Errorf("broken template: rendered %q, want the built-in %s's %q", got, guessed, want(guessed))
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "does not compile") || !strings.Contains(warned[0], ld.Model.ChatTemplateSource()) {
		t.Errorf("broken template: warnings %q, want one naming %s", warned, ld.Model.ChatTemplateSource())
	}

	if _, err := ld.ChatTemplate("no-such", nil); err == nil {
		t.Error("an unknown built-in name was accepted")
	}
}
