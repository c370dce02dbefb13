package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/armor-llm/armor/runtime"
)

// apiError is an OpenAI-style error: {"error": {"message", "type", "param", "code"}}.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(param, format string, args ...any) *apiError {
	e := &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	return e
}

func writeError(w http.ResponseWriter, e *apiError) {
	code := map[int]string{400: "invalid_request_error", 401: "invalid_api_key", 404: "not_found", 413: "request_too_large",
		429: "rate_limit_exceeded", 500: "internal_error", 503: "unavailable"}[e.Status]
	if e.Code == nil && code != "" {
		e.Code = &code
	}
	if e.Type == "" {
		e.Type = map[bool]string{true: "server_error", false: "invalid_request_error"}[e.Status >= 500]
	}
	writeJSON(w, e.Status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body into v, turning every failure into the error
// the client should see: 413 past the size limit, 400 naming the field of
// a type mismatch.
func decode(r io.Reader, v any) *apiError {
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typ *json.UnmarshalTypeError
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &tooBig):
			return &apiError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit), Type: "invalid_request_error"}
		case errors.As(err, &typ):
			// The path runs through the Go struct that embeds the shared
			// fields; the client knows only the JSON names.
			f := strings.TrimPrefix(typ.Field, "samplingFields.")
			return badRequest(f, "%s: expected %s, got a JSON %s", f, typ.Type, typ.Value)
		case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return badRequest("", "the body is not valid JSON: %v", err)
		}
		return badRequest("", "cannot read the request: %v", err)
	}
	if dec.More() {
		return badRequest("", "the body holds more than one JSON value")
	}
	return nil
}

// samplingFields are the generation settings chat and completions share.
type samplingFields struct {
	Model            string          `json:"model"`
	Stream           bool            `json:"stream"`
	StreamOptions    *streamOptions  `json:"stream_options"`
	MaxTokens        *int            `json:"max_tokens"`
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	TopK             *int            `json:"top_k"`
	MinP             *float64        `json:"min_p"`
	Seed             *int64          `json:"seed"`
	Stop             json.RawMessage `json:"stop"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	N                *int            `json:"n"`
	User             string          `json:"user"`
	// IgnoreEOS (llama-server's extension) keeps generating past an
	// end-of-generation token, for benchmarks that need full-length answers.
	IgnoreEOS bool `json:"ignore_eos"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatRequest struct {
	samplingFields
	Messages            []chatMessage   `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	Functions           json.RawMessage `json:"functions"`
	FunctionCall        json.RawMessage `json:"function_call"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	Modalities []string        `json:"modalities"`
	Audio      json.RawMessage `json:"audio"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
}

type completionRequest struct {
	samplingFields
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs *int            `json:"logprobs"`
	Echo     bool            `json:"echo"`
	Suffix   *string         `json:"suffix"`
	BestOf   *int            `json:"best_of"`
}

// defaults are the server's sampling settings for fields a request leaves out.
type defaults struct {
	Temp, TopP, MinP float64
	TopK, MaxTokens  int
}

// params checks the shared fields and turns them into Params.
func (f *samplingFields) params(d defaults, maxTokens *int, maxParam string) (Params, *apiError) {
	p := Params{MaxTokens: d.MaxTokens}
	if f.N != nil && *f.N != 1 {
		return p, badRequest("n", "n = %d: only one choice per request is supported (n = 1)", *f.N)
	}
	if maxTokens != nil {
		if *maxTokens < 1 {
			return p, badRequest(maxParam, "%s must be at least 1, got %d", maxParam, *maxTokens)
		}
		p.MaxTokens = *maxTokens
	}
	sc := runtime.SamplerConfig{Temp: float32(d.Temp), TopP: float32(d.TopP), MinP: float32(d.MinP), TopK: d.TopK, RepeatPenalty: 1}
	if f.Temperature != nil {
		if *f.Temperature < 0 || *f.Temperature > 2 {
			return p, badRequest("temperature", "temperature must be between 0 and 2, got %g", *f.Temperature)
		}
		sc.Temp = float32(*f.Temperature)
	}
	if f.TopP != nil {
		if *f.TopP <= 0 || *f.TopP > 1 {
			return p, badRequest("top_p", "top_p must be in (0, 1], got %g", *f.TopP)
		}
		sc.TopP = float32(*f.TopP)
	}
	if f.TopK != nil {
		if *f.TopK < 0 {
			return p, badRequest("top_k", "top_k must be ≥ 0, got %d", *f.TopK)
		}
		sc.TopK = *f.TopK
	}
	if f.MinP != nil {
		if *f.MinP < 0 || *f.MinP > 1 {
			return p, badRequest("min_p", "min_p must be in [0, 1], got %g", *f.MinP)
		}
		sc.MinP = float32(*f.MinP)
	}
	if f.Seed != nil {
		sc.Seed = uint64(*f.Seed)
	} else {
		sc.Seed = rand.Uint64()
	}
	p.Sampler = sc
	p.IgnoreEOS = f.IgnoreEOS
	for _, pen := range []struct {
		name string
		v    *float64
		dst  *float32
	}{{"presence_penalty", f.PresencePenalty, &p.PresencePenalty}, {"frequency_penalty", f.FrequencyPenalty, &p.FrequencyPenalty}} {
		if pen.v != nil {
			if *pen.v < -2 || *pen.v > 2 {
				return p, badRequest(pen.name, "%s must be between -2 and 2, got %g", pen.name, *pen.v)
			}
			*pen.dst = float32(*pen.v)
		}
	}
	if len(f.Stop) > 0 && string(f.Stop) != "null" {
		var one string
		var list []string
		if json.Unmarshal(f.Stop, &one) == nil {
			list = []string{one}
		} else if err := json.Unmarshal(f.Stop, &list); err != nil {
			return p, badRequest("stop", "stop must be a string or a list of strings")
		}
		if len(list) > 4 {
			return p, badRequest("stop", "stop holds %d strings; at most 4 are allowed", len(list))
		}
		p.Stops = list
	}
	if f.StreamOptions != nil && !f.Stream {
		return p, badRequest("stream_options", "stream_options is only allowed with stream: true")
	}
	return p, nil
}

// chatParams checks a chat request's own fields.
func (c *chatRequest) check() *apiError {
	switch {
	case len(c.Tools) > 0 && string(c.Tools) != "null" && string(c.Tools) != "[]":
		return badRequest("tools", "tools are not supported by this server")
	case len(c.ToolChoice) > 0 && string(c.ToolChoice) != "null" && string(c.ToolChoice) != `"none"`:
		return badRequest("tool_choice", "tool_choice is not supported by this server")
	case len(c.Functions) > 0 && string(c.Functions) != "null":
		return badRequest("functions", "functions are not supported by this server")
	case len(c.FunctionCall) > 0 && string(c.FunctionCall) != "null":
		return badRequest("function_call", "function_call is not supported by this server")
	case c.ResponseFormat != nil && c.ResponseFormat.Type != "" && c.ResponseFormat.Type != "text":
		return badRequest("response_format", "response_format %q is not supported (only text)", c.ResponseFormat.Type)
	case len(c.Audio) > 0 && string(c.Audio) != "null":
		return badRequest("audio", "audio output is not supported")
	case len(c.Messages) == 0:
		return badRequest("messages", "messages must hold at least one message")
	case c.MaxTokens != nil && c.MaxCompletionTokens != nil && *c.MaxTokens != *c.MaxCompletionTokens:
		return badRequest("max_completion_tokens", "max_tokens and max_completion_tokens differ; give one")
	}
	for _, m := range c.Modalities {
		if m != "text" {
			return badRequest("modalities", "modality %q is not supported (only text)", m)
		}
	}
	if c.TopLogprobs != nil {
		if *c.TopLogprobs < 0 || *c.TopLogprobs > 20 {
			return badRequest("top_logprobs", "top_logprobs must be between 0 and 20, got %d", *c.TopLogprobs)
		}
		if c.Logprobs == nil || !*c.Logprobs {
			return badRequest("top_logprobs", "top_logprobs requires logprobs: true")
		}
	}
	return nil
}

// messages converts the request's messages to chat turns; content is a
// string or a list of text parts.
func (c *chatRequest) messages() ([]msgText, *apiError) {
	var out []msgText
	for i, m := range c.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		case "tool", "function":
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d]: role %q is not supported (tools are not supported)", i, m.Role)
		default:
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d]: unknown role %q (use system, user or assistant)", i, m.Role)
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		var text string
		if len(m.Content) == 0 || string(m.Content) == "null" {
			if m.Role != "assistant" {
				return nil, badRequest(fmt.Sprintf("messages[%d].content", i), "messages[%d]: content is missing", i)
			}
		} else if json.Unmarshal(m.Content, &text) != nil {
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				return nil, badRequest(fmt.Sprintf("messages[%d].content", i), "messages[%d]: content must be a string or a list of content parts", i)
			}
			var b strings.Builder
			for j, p := range parts {
				if p.Type != "text" {
					return nil, badRequest(fmt.Sprintf("messages[%d].content[%d].type", i, j), "messages[%d].content[%d]: %q parts are not supported (only text; no images or audio)", i, j, p.Type)
				}
				b.WriteString(p.Text)
			}
			text = b.String()
		}
		out = append(out, msgText{role, text})
	}
	return out, nil
}

type msgText struct{ Role, Content string }

// promptText checks a completion request's prompt: a string, or a list
// holding one string.
func (c *completionRequest) promptText() (string, *apiError) {
	if c.Echo {
		return "", badRequest("echo", "echo is not supported")
	}
	if c.Suffix != nil && *c.Suffix != "" {
		return "", badRequest("suffix", "suffix is not supported")
	}
	if c.BestOf != nil && *c.BestOf != 1 {
		return "", badRequest("best_of", "best_of = %d: only 1 is supported", *c.BestOf)
	}
	if c.Logprobs != nil && (*c.Logprobs < 0 || *c.Logprobs > 5) {
		return "", badRequest("logprobs", "logprobs must be between 0 and 5, got %d", *c.Logprobs)
	}
	if len(c.Prompt) == 0 || string(c.Prompt) == "null" {
		return "", badRequest("prompt", "prompt is missing")
	}
	var s string
	if json.Unmarshal(c.Prompt, &s) == nil {
		return s, nil
	}
	var list []string
	if json.Unmarshal(c.Prompt, &list) == nil {
		if len(list) != 1 {
			return "", badRequest("prompt", "prompt lists %d strings; one prompt per request is supported", len(list))
		}
		return list[0], nil
	}
	return "", badRequest("prompt", "prompt must be a string (token-id prompts are not supported)")
}
