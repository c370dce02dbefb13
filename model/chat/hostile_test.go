package chat

import (
	"github.com/armor-llm/armor/internal/hostile"
	"strings"
	"testing"
)

// Templates from model files are untrusted: each of these must end in an
// error naming the template's source, fast and with little memory.
func TestHostileTemplates(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"negative repetition", `{{ 'ab' * -3 }}{{ x }}`, ""},
		{"recursive macro", `{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}`, "levels deep"},
		{"huge range", `{% for i in range(10000000000) %}x{% endfor %}`, "exceeds the limit"},
		{"huge repetition", `{{ 'abcdefgh' * 1000000000 }}`, "exceeds the limit"},
		{"doubling", `{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}`, "exceeds the limit"},
		{"nested loops", `{% for i in range(60000) %}{% for j in range(60000) %}{% endfor %}{% endfor %}`, "rendering took more than"},
		{"output bomb", `{% for i in range(60000) %}{{ 'x' * 1000 }}{% endfor %}`, "bytes"},
		{"replace bomb", `{{ ('x' * 1000000) | replace('x', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy') }}`, "replace"},
		{"deep parse", strings.Repeat("{{ (", 1) + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000) + ") }}", "levels deep"},
		{"deep blocks", strings.Repeat("{% if true %}", 100000) + strings.Repeat("{% endif %}", 100000), "levels deep"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out string
			var err error
			hostile.Bounded(t, c.name, func() {
				var j *Jinja
				j, err = FromJinjaSource(c.src, "tokenizer_config.json of /models/evil", "<s>", "</s>")
				if err == nil {
					out, err = j.Render([]Message{{Role: "user", Content: "hi"}}, true)
				}
			})
			if c.want == "" {
				// Negative repetition gives "", as in Jinja, instead of a panic.
				if err != nil || out != "" {
					t.Fatalf("got %q, %v", out, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "/models/evil") {
				t.Fatalf("error %v; want one naming the source and %q", err, c.want)
			}

		})
	}
}
