package model

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/armor-llm/armor/model/gguf"
	"github.com/armor-llm/armor/model/tokenizer"
)

// Tokenizer builds the tokenizer the model file describes.
func (m *Model) Tokenizer() (tokenizer.Tokenizer, error) {
	if m.Vocab == nil {
		return nil, fmt.Errorf("model: %s carries no tokenizer (give one with --tokenizer: a tokenizer.json directory, tokenizer.model, llama2.c tokenizer.bin or a GGUF)", m.Path)
	}
	tk, err := m.Vocab.Build(m.Config.Vocab)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", m.Path, err)
	}
	return tk, nil
}

// ChatTemplate returns the Jinja chat template that came with the model, or "".
func (m *Model) ChatTemplate() string {
	if m.Vocab == nil {
		return ""
	}
	return m.Vocab.ChatTemplate
}

// Build makes the tokenizer; vocab is the model's embedding rows, which the
// tokenizer must not exceed.
func (v *Vocab) Build(vocab int) (tokenizer.Tokenizer, error) {
	var tk tokenizer.Tokenizer
	switch v.Kind {
	case "spm":
		sp, err := tokenizer.NewSentencePiece(v.Tokens, v.Scores, v.Types, v.BOS, v.EOS, v.UNK)
		if err != nil {
			return nil, err
		}
		sp.AddBOS = v.AddBOS
		tk = sp
	case "bpe":
		b, err := tokenizer.NewBPE(tokenizer.BPEConfig{Tokens: v.Tokens, Types: v.Types, Merges: v.Merges, Pre: v.Pre,
			BOS: v.BOS, EOS: v.EOS, EOT: v.EOT, AddBOS: v.AddBOS})
		if err != nil {
			return nil, err
		}
		tk = b
	case "hf":
		b, err := tokenizer.LoadHFTokenizer(v.Dir)
		if err != nil {
			return nil, err
		}
		if v.ChatTemplate == "" {
			v.ChatTemplate = b.ChatTemplate
		}
		tk = b
	case "spm-model":
		sp, err := tokenizer.LoadSentencePieceModel(v.Path)
		if err != nil {
			return nil, err
		}
		tk = sp
	case "llama2c":
		sp, err := tokenizer.LoadLlama2cTokenizer(v.Path, vocab)
		if err != nil {
			return nil, err
		}
		tk = sp
	default:
		return nil, fmt.Errorf("tokenizer type %q is not supported (supported: SentencePiece, byte-level BPE)", v.Kind)
	}
	if tk.VocabSize() > vocab {
		return nil, fmt.Errorf("tokenizer has %d tokens but the model only %d embedding rows", tk.VocabSize(), vocab)
	}
	return tk, nil
}

// LoadVocab describes a tokenizer given separately from the model: a Hugging
// Face directory (tokenizer.json), a tokenizer.json file, a SentencePiece
// tokenizer.model, a llama2.c tokenizer.bin, or a GGUF whose metadata holds
// a vocabulary.
func LoadVocab(path string) (*Vocab, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.IsDir() {
		return &Vocab{Kind: "hf", Dir: path, BOS: -1, EOS: -1, EOT: -1, UNK: -1}, nil
	}
	if filepath.Base(path) == "tokenizer.json" {
		return &Vocab{Kind: "hf", Dir: filepath.Dir(path), BOS: -1, EOS: -1, EOT: -1, UNK: -1}, nil
	}
	var magic [4]byte
	if f, err := os.Open(path); err == nil {
		f.Read(magic[:])
		f.Close()
	}
	if string(magic[:]) == "GGUF" {
		f, err := gguf.Open(path)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		defer f.Close()
		v := ggufVocab(f)
		if v == nil {
			return nil, fmt.Errorf("tokenizer: %s: GGUF has no tokenizer.ggml.tokens", path)
		}
		return v, nil
	}
	if strings.HasSuffix(path, ".model") {
		return &Vocab{Kind: "spm-model", Path: path}, nil
	}
	return &Vocab{Kind: "llama2c", Path: path, BOS: 1, EOS: 2, EOT: -1, UNK: 0, AddBOS: true}, nil
}
