package model

import "testing"

// Every loader reports an unknown family with the one message of the
// traits table, and the table maps Hugging Face types to families.
func TestArchTable(t *testing.T) {
	want := `unknown architecture "gpt2" (supported: llama, qwen2, qwen3)`
	if _, err := LookupArch("gpt2"); err == nil || err.Error() != want {
		t.Errorf("LookupArch: %v", err)
	}
	c := Config{Arch: "gpt2"}
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate: %v", err)
	}
	if _, err := archForHF("gpt2"); err == nil || err.Error() != `unknown model_type "gpt2" (supported: llama, mistral, qwen2, qwen3)` {
		t.Errorf("archForHF: %v", err)
	}
	for typ, name := range map[string]string{"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"} {
		if a, err := archForHF(typ); err != nil || a.Name != name {
			t.Errorf("archForHF(%q) = %v, %v; want %s", typ, a, err, name)
		}
	}
	// The traits as the forward pass needs them.
	for _, c := range []struct {
		name                       string
		bias, norm, ggufRopeHalves bool
	}{{"llama", false, false, false}, {"qwen2", true, false, true}, {"qwen3", false, true, true}} {
		a, err := LookupArch(c.name)
		if err != nil || a.QKBias != c.bias || a.QKNorm != c.norm || a.GGUFRopeHalves != c.ggufRopeHalves {
			t.Errorf("%s: %+v, %v", c.name, a, err)
		}
	}
}
