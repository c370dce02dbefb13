package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/armor-llm/armor/model/limits"
)

type hfAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type hfStep struct {
	Type           string          `json:"type"`
	Pattern        json.RawMessage `json:"pattern"`
	Behavior       string          `json:"behavior"`
	Invert         bool            `json:"invert"`
	AddPrefixSpace bool            `json:"add_prefix_space"`
	UseRegex       bool            `json:"use_regex"`
	Normalizers    []hfStep        `json:"normalizers"`
	Pretokenizers  []hfStep        `json:"pretokenizers"`
}

type hfTokenizerJSON struct {
	AddedTokens  []hfAddedToken `json:"added_tokens"`
	Normalizer   *hfStep        `json:"normalizer"`
	PreTokenizer *hfStep        `json:"pre_tokenizer"`
	Model        struct {
		Type                    string          `json:"type"`
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		IgnoreMerges            bool            `json:"ignore_merges"`
		ByteFallback            bool            `json:"byte_fallback"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	} `json:"model"`
}

// LoadHFTokenizer loads a Hugging Face byte-level BPE tokenizer from dir:
// tokenizer.json (vocabulary, merges, normalizer, pre-tokenizer, added
// tokens) and, when present, tokenizer_config.json (bos_token, eos_token,
// add_bos_token, chat_template). Without add_bos_token, BOS is added by
// default when the config names a BOS token (Llama 3) and not otherwise.
func LoadHFTokenizer(dir string) (*BPE, error) {
	path := filepath.Join(dir, "tokenizer.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	cfgData, err := os.ReadFile(cfgPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer config: %w", err)
	}
	return ParseHFTokenizer(path, data, cfgPath, cfgData)
}

// ParseHFTokenizer builds the tokenizer from the contents of tokenizer.json
// and tokenizer_config.json (cfgData may be nil); the paths name them in
// errors. It lets .armor files carry the tokenizer inside.
func ParseHFTokenizer(path string, data []byte, cfgPath string, cfgData []byte) (*BPE, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("tokenizer %s: %s", path, fmt.Sprintf(format, a...))
	}
	var tj hfTokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fail("%v", err)
	}
	m := &tj.Model
	if m.Type != "BPE" {
		return nil, fail("model type %q is not supported (only byte-level BPE)", m.Type)
	}
	if m.ByteFallback {
		return nil, fail("byte_fallback BPE (SentencePiece style) is not supported from tokenizer.json; use tokenizer.model")
	}
	if (m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "") || (m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "") {
		return nil, fail("continuing_subword_prefix / end_of_word_suffix are not supported")
	}
	if len(m.Vocab) == 0 {
		return nil, fail("empty vocabulary")
	}

	var err error
	cfg := BPEConfig{IgnoreMerges: m.IgnoreMerges, BOS: -1, EOS: -1, EOT: -1}
	if cfg.NFC, err = hfNormalizer(tj.Normalizer); err != nil {
		return nil, fail("%v", err)
	}
	if cfg.Regexes, err = hfPreTokenizer(tj.PreTokenizer); err != nil {
		return nil, fail("%v", err)
	}
	if cfg.Merges, err = hfMerges(m.Merges); err != nil {
		return nil, fail("merges: %v", err)
	}

	// Ids index arrays sized by the largest one: they must be bounded by
	// the entries the file actually has, or a one-line file with id
	// 16777215 would allocate for 16M tokens.
	entries := len(m.Vocab) + len(tj.AddedTokens)
	if entries > limits.MaxVocab {
		return nil, fail("%d vocabulary entries exceed the limit of %d", entries, limits.MaxVocab)
	}
	n := 0
	for tok, id := range m.Vocab {
		if id < 0 || id >= entries {
			return nil, fail("token %q has id %d, outside the %d entries of the vocabulary and added tokens", tok, id, entries)
		}
		n = max(n, id+1)
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 || a.ID >= entries {
			return nil, fail("added token %q has id %d, outside the %d entries of the vocabulary and added tokens", a.Content, a.ID, entries)
		}
		n = max(n, a.ID+1)
	}
	cfg.Tokens = make([]string, n)
	cfg.Types = make([]int32, n)
	for i := range cfg.Types {
		cfg.Types[i] = TypeUnused // ids no entry names
	}
	for tok, id := range m.Vocab {
		cfg.Tokens[id] = tok
		cfg.Types[id] = TypeNormal
	}
	for _, a := range tj.AddedTokens {
		// single_word and normalized=true are rare and not implemented:
		// the token is matched anywhere in the raw text.
		cfg.Tokens[a.ID] = a.Content
		cfg.Types[a.ID] = TypeUserDefined
		if a.Special {
			cfg.Types[a.ID] = TypeControl
		}
		if a.LStrip || a.RStrip {
			cfg.Specials = append(cfg.Specials, AddedToken{ID: a.ID, Content: a.Content, Special: a.Special, LStrip: a.LStrip, RStrip: a.RStrip})
		}
	}

	conf, err := parseHFConfig(cfgPath, cfgData)
	if err != nil {
		return nil, err
	}
	find := func(s string) int {
		if s == "" {
			return -1
		}
		for _, a := range tj.AddedTokens {
			if a.Content == s {
				return a.ID
			}
		}
		if id, ok := m.Vocab[s]; ok {
			return id
		}
		return -1
	}
	cfg.BOS = find(conf.BOSToken)
	cfg.EOS = find(conf.EOSToken)
	if conf.BOSToken != "" && cfg.BOS < 0 {
		return nil, fail("bos_token %q of tokenizer_config.json is no token", conf.BOSToken)
	}
	if conf.EOSToken != "" && cfg.EOS < 0 {
		return nil, fail("eos_token %q of tokenizer_config.json is no token", conf.EOSToken)
	}
	cfg.AddBOS = cfg.BOS >= 0
	if conf.AddBOSToken != nil {
		cfg.AddBOS = *conf.AddBOSToken
	}
	t, err := NewBPE(cfg)
	if err != nil {
		return nil, fail("%v", err)
	}
	t.ChatTemplate = conf.ChatTemplate
	return t, nil
}

// LoadDir loads the tokenizer of a Hugging Face model directory:
// tokenizer.json when it describes a byte-level BPE, else tokenizer.model
// (SentencePiece; Llama 2 style directories carry both, their
// tokenizer.json being a byte-fallback BPE this package reads from
// tokenizer.model instead). add_bos_token from tokenizer_config.json applies
// to both.
func LoadDir(dir string) (Tokenizer, error) {
	jsonPath := filepath.Join(dir, "tokenizer.json")
	modelPath := filepath.Join(dir, "tokenizer.model")
	_, jsonErr := os.Stat(jsonPath)
	_, modelErr := os.Stat(modelPath)
	if jsonErr == nil {
		t, err := LoadHFTokenizer(dir)
		if err == nil || modelErr != nil {
			return t, err
		}
	}
	if modelErr != nil {
		return nil, fmt.Errorf("tokenizer: %s has neither tokenizer.json nor tokenizer.model", dir)
	}
	t, err := LoadSentencePieceModel(modelPath)
	if err != nil {
		return nil, err
	}
	conf, err := LoadHFConfig(dir)
	if err != nil {
		return nil, err
	}
	if conf.AddBOSToken != nil {
		t.AddBOS = *conf.AddBOSToken
	}
	return t, nil
}

func hfNormalizer(s *hfStep) (nfc bool, err error) {
	if s == nil {
		return false, nil
	}
	switch s.Type {
	case "NFC":
		return true, nil
	case "Sequence":
		for i := range s.Normalizers {
			n, err := hfNormalizer(&s.Normalizers[i])
			if err != nil {
				return false, err
			}
			nfc = nfc || n
		}
		return nfc, nil
	}
	return false, fmt.Errorf("normalizer %q is not supported", s.Type)
}

// hfPreTokenizer turns the supported pre-tokenizers (Split with a regex and
// behavior Isolated, ByteLevel) into a regex list.
func hfPreTokenizer(s *hfStep) ([]string, error) {
	if s == nil {
		return nil, errors.New("no pre_tokenizer: not a byte-level BPE tokenizer")
	}
	switch s.Type {
	case "Sequence":
		var all []string
		byteLevel := false
		for i := range s.Pretokenizers {
			if s.Pretokenizers[i].Type == "ByteLevel" {
				byteLevel = true
			}
			r, err := hfPreTokenizer(&s.Pretokenizers[i])
			if err != nil {
				return nil, err
			}
			all = append(all, r...)
		}
		if !byteLevel {
			return nil, errors.New("pre_tokenizer has no ByteLevel step: not a byte-level BPE tokenizer")
		}
		return all, nil
	case "Split":
		var pat struct {
			Regex  *string `json:"Regex"`
			String *string `json:"String"`
		}
		if err := json.Unmarshal(s.Pattern, &pat); err != nil || pat.Regex == nil {
			return nil, fmt.Errorf("Split pre-tokenizer: only Regex patterns are supported (got %s)", s.Pattern)
		}
		if s.Behavior != "Isolated" || s.Invert {
			return nil, fmt.Errorf("Split pre-tokenizer: behavior %q invert %v not supported (only Isolated)", s.Behavior, s.Invert)
		}
		return []string{*pat.Regex}, nil
	case "ByteLevel":
		if s.AddPrefixSpace {
			return nil, errors.New("ByteLevel pre-tokenizer with add_prefix_space is not supported")
		}
		if s.UseRegex {
			return []string{regexGPT2}, nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("pre-tokenizer %q is not supported", s.Type)
}

// hfMerges accepts both merge layouts: ["a b", ...] and [["a", "b"], ...].
func hfMerges(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	rest := bytes.TrimSpace(raw[1:])
	if len(rest) > 0 && rest[0] == '[' {
		var pairs [][2]string
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return nil, err
		}
		out := make([]string, len(pairs))
		for i, p := range pairs {
			out[i] = p[0] + " " + p[1]
		}
		return out, nil
	}
	var out []string
	err := json.Unmarshal(raw, &out)
	return out, err
}

// HFConfig is what a tokenizer_config.json says about special tokens and
// chat formatting.
type HFConfig struct {
	BOSToken, EOSToken string // token texts, "" if none
	AddBOSToken        *bool  // nil when the file does not say
	ChatTemplate       string // "" if none
}

// LoadHFConfig reads dir/tokenizer_config.json; a missing file gives the
// zero HFConfig and no error.
func LoadHFConfig(dir string) (HFConfig, error) {
	path := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return HFConfig{}, nil
	}
	if err != nil {
		return HFConfig{}, fmt.Errorf("tokenizer config: %w", err)
	}
	return parseHFConfig(path, data)
}

// parseHFConfig reads tokenizer_config.json's contents; none is no error.
func parseHFConfig(path string, data []byte) (HFConfig, error) {
	var c HFConfig
	if data == nil {
		return c, nil
	}
	var err error
	var raw struct {
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
		AddBOS       *bool           `json:"add_bos_token"`
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return c, fmt.Errorf("tokenizer config %s: %w", path, err)
	}
	if c.BOSToken, err = tokenText(raw.BOS); err != nil {
		return c, fmt.Errorf("tokenizer config %s: bos_token: %w", path, err)
	}
	if c.EOSToken, err = tokenText(raw.EOS); err != nil {
		return c, fmt.Errorf("tokenizer config %s: eos_token: %w", path, err)
	}
	c.AddBOSToken = raw.AddBOS
	if c.ChatTemplate, err = chatTemplateText(raw.ChatTemplate); err != nil {
		return c, fmt.Errorf("tokenizer config %s: chat_template: %w", path, err)
	}
	return c, nil
}

// tokenText accepts null, "text" or {"content": "text", ...}.
func tokenText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var o struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", err
	}
	return o.Content, nil
}

// chatTemplateText accepts a string or a list of {name, template}, taking
// the one named "default" (else the first).
func chatTemplateText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", err
	}
	for _, e := range list {
		if e.Name == "default" {
			return e.Template, nil
		}
	}
	if len(list) > 0 {
		return list[0].Template, nil
	}
	return "", nil
}
