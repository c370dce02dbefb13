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

// ChatTemplateSource names where ChatTemplate came from, for errors: the
// template is untrusted code from the model file.
func (m *Model) ChatTemplateSource() string {
	if m.Vocab != nil {
		switch m.Vocab.Kind {
		case "hf":
			return filepath.Join(m.Vocab.Dir, "tokenizer_config.json")
		case "spm-model":
			return filepath.Join(filepath.Dir(m.Vocab.Path), "tokenizer_config.json")
		}
	}
	switch m.Format {
	case "gguf":
		return m.Path + " (GGUF metadata tokenizer.chat_template)"
	case "armor":
		return m.Path + " (header vocab.chat_template)"
	}
	return m.Path + " (chat template)"
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
		sp.AddSpacePrefix = !v.NoSpacePrefix
		tk = sp
	case "bpe":
		b, err := tokenizer.NewBPE(tokenizer.BPEConfig{Tokens: v.Tokens, Types: v.Types, Merges: v.Merges, Pre: v.Pre,
			BOS: v.BOS, EOS: v.EOS, EOT: v.EOT, AddBOS: v.AddBOS})
		if err != nil {
			return nil, err
		}
		tk = b
	case "hf":
		t, err := tokenizer.LoadDir(v.Dir)
		if err != nil {
			return nil, err
		}
		if b, ok := t.(*tokenizer.BPE); ok && v.ChatTemplate == "" {
			v.ChatTemplate = b.ChatTemplate
		}
		if v.ChatTemplate == "" {
			if c, err := tokenizer.LoadHFConfig(v.Dir); err == nil {
				v.ChatTemplate = c.ChatTemplate
			}
		}
		tk = t
	case "hf-embedded":
		b, err := tokenizer.ParseHFTokenizer("tokenizer.json", []byte(v.HFTokenizer), "tokenizer_config.json", nilIfEmpty(v.HFConfig))
		if err != nil {
			return nil, err
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
	if len(v.ExtraEOG) > 0 {
		e := &eogTokenizer{Tokenizer: tk, extra: map[int]bool{}}
		for _, id := range v.ExtraEOG {
			e.extra[id] = true
		}
		tk = e
	}
	return tk, nil
}

// eogTokenizer adds end-of-generation ids to a tokenizer.
type eogTokenizer struct {
	tokenizer.Tokenizer
	extra map[int]bool
}

func (e *eogTokenizer) IsEOG(id int) bool { return e.extra[id] || e.Tokenizer.IsEOG(id) }

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

func nilIfEmpty(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// Embedded returns a self-contained copy of v that refers to no file, for
// writing into an .armor file: Hugging Face tokenizers keep their JSON,
// SentencePiece files become their pieces and scores.
func (v *Vocab) Embedded(vocab int) (*Vocab, error) {
	out := *v
	out.Dir, out.Path = "", ""
	switch v.Kind {
	case "spm", "bpe", "hf-embedded":
		return &out, nil
	case "hf":
		tj, err := os.ReadFile(filepath.Join(v.Dir, "tokenizer.json"))
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		cj, err := os.ReadFile(filepath.Join(v.Dir, "tokenizer_config.json"))
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		out.Kind, out.HFTokenizer, out.HFConfig = "hf-embedded", string(tj), string(cj)
		if out.ChatTemplate == "" {
			if b, err := tokenizer.ParseHFTokenizer("tokenizer.json", tj, "tokenizer_config.json", cj); err == nil {
				out.ChatTemplate = b.ChatTemplate
			}
		}
		return &out, nil
	case "llama2c", "spm-model":
		tk, err := v.Build(vocab)
		if err != nil {
			return nil, err
		}
		sp, ok := tk.(*tokenizer.SentencePiece)
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s is not SentencePiece", v.Path)
		}
		out.Kind = "spm"
		n := sp.VocabSize()
		out.Tokens, out.Scores, out.Types = make([]string, n), make([]float32, n), make([]int32, n)
		for i := 0; i < n; i++ {
			out.Tokens[i], out.Scores[i], out.Types[i] = sp.Piece(i), sp.Score(i), sp.Type(i)
		}
		out.BOS, out.EOS, out.UNK, out.AddBOS = sp.BOS(), sp.EOS(), sp.UnknownID(), sp.AddBOS
		return &out, nil
	}
	return nil, fmt.Errorf("tokenizer type %q cannot be embedded", v.Kind)
}
