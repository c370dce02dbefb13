package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestOpenAIClient drives the server with the official Go client.
func TestOpenAIClient(t *testing.T) {
	ts := startTiny(t, EngineConfig{Parallel: 4, Queue: 16}, Options{APIKey: "k"})
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	ctx := context.Background()

	chat, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:     "tiny",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("t5"), openai.UserMessage("t300 t301")},
		MaxTokens: openai.Int(8), Temperature: openai.Float(0), Seed: openai.Int(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Choices) != 1 || chat.Choices[0].Message.Role != "assistant" || chat.Usage.CompletionTokens < 1 ||
		chat.Usage.TotalTokens != chat.Usage.PromptTokens+chat.Usage.CompletionTokens {
		t.Errorf("chat: %+v", chat)
	}

	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:     "tiny",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("t5"), openai.UserMessage("t300 t301")},
		MaxTokens: openai.Int(8), Temperature: openai.Float(0), Seed: openai.Int(1),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != chat.Choices[0].Message.Content || acc.Choices[0].FinishReason != chat.Choices[0].FinishReason ||
		acc.Usage.CompletionTokens != chat.Usage.CompletionTokens {
		t.Errorf("streamed %q (%s, %d tokens), whole %q (%s, %d tokens)", acc.Choices[0].Message.Content, acc.Choices[0].FinishReason,
			acc.Usage.CompletionTokens, chat.Choices[0].Message.Content, chat.Choices[0].FinishReason, chat.Usage.CompletionTokens)
	}

	comp, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model:     "tiny",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("t300")},
		MaxTokens: openai.Int(6), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Choices) != 1 || comp.Usage.CompletionTokens < 1 {
		t.Errorf("completion: %+v", comp)
	}

	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "tiny", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}, N: openai.Int(3),
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "n" || apiErr.Type != "invalid_request_error" {
		t.Errorf("n = 3: %v", err)
	}
	bad := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
	if _, err := bad.Models.List(ctx); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Errorf("wrong key: %v", err)
	}
	models, err := client.Models.List(ctx)
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != "tiny" {
		t.Errorf("models: %+v %v", models, err)
	}

	// Eight clients at once, streaming and not: every answer well formed
	// and complete.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			params := openai.ChatCompletionNewParams{
				Model:     "tiny",
				Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("t%d t%d", 300+i, 310+i))},
				MaxTokens: openai.Int(int64(10 + 3*i)), Seed: openai.Int(int64(i)),
			}
			if i%2 == 0 {
				c, err := client.Chat.Completions.New(ctx, params)
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				if c.Choices[0].FinishReason != "length" && c.Choices[0].FinishReason != "stop" || c.Usage.CompletionTokens > int64(10+3*i) {
					t.Errorf("client %d: %+v", i, c)
				}
				return
			}
			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			s := client.Chat.Completions.NewStreaming(ctx, params)
			acc := openai.ChatCompletionAccumulator{}
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if err := s.Err(); err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			if fr := acc.Choices[0].FinishReason; fr != "length" && fr != "stop" || acc.Usage.CompletionTokens < 1 {
				t.Errorf("client %d: finish %q, usage %+v", i, fr, acc.Usage)
			}
		}()
	}
	wg.Wait()
}
