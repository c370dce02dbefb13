package model

import (
	"encoding/json"
	"testing"

	"github.com/armor-llm/armor/model/gguf"
)

// The fuzz targets of the model readers. Their seed corpora live in
// testdata/fuzz/FuzzXxx (written by `go run ./internal/fuzzseeds` from the
// files of ../shared/testdata, plus one regression seed per bug of issue
// 14); `go test` runs the seeds, .ci/fuzz fuzzes each target for a while.
// A reader may refuse any input, but must not panic, hang or allocate
// without bound.

// useModel exercises what a loaded model offers: the checks Load does and
// the tokenizer.
func useModel(m *Model) {
	if m.check() != nil {
		return
	}
	if m.Vocab != nil && m.Vocab.Kind != "hf" && m.Vocab.Kind != "spm-model" && m.Vocab.Kind != "llama2c" {
		if tk, err := m.Tokenizer(); err == nil {
			ids, _ := tk.TokenizeErr("Hello <s> world ✓ 123", true, true)
			tk.Decode(ids)
		}
	}
}

func FuzzArmorHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		parseArmorPrefix("fuzz.armor", int64(len(b)), func(off, n int64) ([]byte, error) { return b[off : off+n], nil })
	})
}

func FuzzArmorFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := parseArmor("fuzz.armor", b); err == nil {
			useModel(m)
		}
	})
}

func FuzzLlama2c(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := parseLlama2c("fuzz.bin", b); err == nil {
			useModel(m)
		}
	})
}

func FuzzGGUFModel(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := gguf.Parse("fuzz.gguf", b)
		if err != nil {
			return
		}
		if m, err := ggufModel("fuzz.gguf", g); err == nil {
			useModel(m)
		}
	})
}

func FuzzHFConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var hc hfConfig
		if json.Unmarshal(b, &hc) != nil {
			return
		}
		var c Config
		if hfToConfig(&hc, &c) == nil && c.Validate() == nil {
			c.RopeFreqs()
		}
	})
}
