// Package chat renders conversations into prompt text with a model's chat
// template: the Jinja template shipped in tokenizer_config.json (or GGUF's
// tokenizer.chat_template), or a built-in fallback for files without one.
//
// The rendered text contains the special tokens as text (and BOS where the
// template writes bos_token), so it must be tokenized with special-token
// parsing and without adding another BOS: tok.Encode(text, false) for
// templates that write bos_token (Llama 2/3), tok.Encode(text,
// tok.AddBOSDefault()) otherwise; StartsWithBOS tells which.
package chat

import (
	"fmt"
	"strings"

	"github.com/armor-llm/armor/model/chat/jinja"
)

// Message is one conversation turn; Role is "system", "user" or
// "assistant" (templates may accept "tool" too).
type Message struct {
	Role    string
	Content string
}

// Template renders a conversation; with addGenerationPrompt the text ends
// with the header that makes the model answer as the assistant.
type Template interface {
	Render(msgs []Message, addGenerationPrompt bool) (string, error)
}

// Jinja is a compiled Jinja chat template.
//
// Templates come from model files, so rendering runs under a budget (steps,
// wall time, nesting depth, output size: model/limits) in armor's fork of
// the engine (model/chat/jinja), and a failure is an error naming Source.
type Jinja struct {
	tmpl     *jinja.Template
	bosToken string
	eosToken string
	// Source says where the template came from ("GGUF metadata
	// tokenizer.chat_template of FILE", ...), for errors; FromJinja sets
	// "chat template".
	Source string
	// Vars are extra template variables, e.g. "enable_thinking": false for
	// Qwen3 (disables its thinking block).
	Vars map[string]any
}

// FromJinja compiles a Jinja chat template; bosToken and eosToken are the
// texts of the model's BOS and EOS tokens ("" if none), which templates use
// as bos_token and eos_token.
func FromJinja(src, bosToken, eosToken string) (*Jinja, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("chat template: empty template")
	}
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return &Jinja{tmpl: t, bosToken: bosToken, eosToken: eosToken, Source: "chat template"}, nil
}

// FromJinjaSource is FromJinja for a template read from source (a file,
// a metadata key), which its errors name.
func FromJinjaSource(src, source, bosToken, eosToken string) (*Jinja, error) {
	j, err := FromJinja(src, bosToken, eosToken)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	j.Source = source
	return j, nil
}

// Render renders msgs, passing the variables Hugging Face's
// apply_chat_template passes: messages, add_generation_prompt, bos_token,
// eos_token (tools and documents are left undefined).
func (j *Jinja) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	data := map[string]any{
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             j.bosToken,
		"eos_token":             j.eosToken,
	}
	for k, v := range j.Vars {
		data[k] = v
	}
	out, err := j.tmpl.Render(data)
	if err != nil {
		if j.Source != "chat template" {
			return "", fmt.Errorf("%s: chat template: rendering: %w", j.Source, err)
		}
		return "", fmt.Errorf("chat template: rendering: %w", err)
	}
	return out, nil
}

// Built-in templates, written in Jinja so that they go through the same
// engine as shipped ones.
var builtins = map[string]struct {
	src, bos, eos string
}{
	// ChatML (Qwen, many fine-tunes).
	"chatml": {`{%- for m in messages -%}
<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}`, "", "<|im_end|>"},
	// Llama 3 Instruct (the template Meta ships).
	"llama3": {`{%- for m in messages -%}
{%- if loop.first %}{{ bos_token }}{% endif -%}
<|start_header_id|>{{ m.role }}<|end_header_id|>

{{ m.content | trim }}<|eot_id|>
{%- endfor -%}
{%- if add_generation_prompt -%}
<|start_header_id|>assistant<|end_header_id|>

{% endif -%}`, "<|begin_of_text|>", "<|eot_id|>"},
	// Llama 2 Chat: <s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] answer </s>
	// (the system prompt goes inside the first [INST]; every exchange
	// starts with BOS and a finished answer ends with EOS).
	"llama2": {`{%- set ns = namespace(sys='') -%}
{%- for m in messages -%}
{%- if m.role == 'system' -%}
{%- set ns.sys = '<<SYS>>\n' + (m.content | trim) + '\n<</SYS>>\n\n' -%}
{%- elif m.role == 'user' -%}
{{ bos_token }}[INST] {{ ns.sys }}{{ m.content | trim }} [/INST]
{%- set ns.sys = '' -%}
{%- elif m.role == 'assistant' -%}
{{ ' ' }}{{ m.content | trim }} {{ eos_token }}
{%- endif -%}
{%- endfor -%}`, "<s>", "</s>"},
	// Plain text for base models (TinyStories...): the contents, one
	// paragraph each, the model simply continues the text.
	"plain": {`{%- for m in messages -%}
{%- if not loop.first %}{{ '\n\n' }}{% endif -%}
{{ m.content }}
{%- endfor -%}`, "", ""},
}

// Builtin returns a fallback template by name: "chatml", "llama3",
// "llama2" or "plain".
func Builtin(name string) (*Jinja, error) {
	b, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("chat template: no built-in template %q (have chatml, llama2, llama3, plain)", name)
	}
	t, err := FromJinja(b.src, b.bos, b.eos)
	if err != nil {
		return nil, fmt.Errorf("built-in %s: %w", name, err)
	}
	return t, nil
}

// GuessBuiltin picks a built-in template from the special tokens a
// vocabulary has, for model files that carry no template.
func GuessBuiltin(hasToken func(text string) bool) string {
	switch {
	case hasToken("<|im_start|>") && hasToken("<|im_end|>"):
		return "chatml"
	case hasToken("<|start_header_id|>") && hasToken("<|eot_id|>"):
		return "llama3"
	case hasToken("[INST]") || hasToken("[/INST]"):
		return "llama2"
	}
	return "plain"
}

// StartsWithBOS reports whether rendered text already begins with the BOS
// text, in which case the tokenizer must not add another BOS.
func StartsWithBOS(rendered, bosToken string) bool {
	return bosToken != "" && strings.HasPrefix(rendered, bosToken)
}
