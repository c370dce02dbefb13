package chat

import "testing"

// FuzzRender: any template source either fails to compile, renders, or
// fails to render with an error, within the budget; never a panic, a
// stack overflow or a hang. Seeds: the chat templates of
// ../shared/testdata and the built-ins (testdata/fuzz/FuzzRender).
func FuzzRender(f *testing.F) {
	for _, b := range builtins {
		f.Add(b.src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		j, err := FromJinjaSource(src, "fuzz", "<s>", "</s>")
		if err != nil {
			return
		}
		j.Vars = map[string]any{"enable_thinking": false}
		j.Render([]Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello."}, {Role: "user", Content: "2+2?"}}, true)
	})
}
