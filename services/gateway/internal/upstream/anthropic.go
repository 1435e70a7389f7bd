package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// DefaultAnthropicBase is Anthropic's API base.
const DefaultAnthropicBase = "https://api.anthropic.com"

// anthropicVersion is the Messages API version the translation follows.
const anthropicVersion = "2023-06-01"

// DefaultAnthropicMaxTokens is sent when the client set no max_tokens: the
// Messages API requires one (LiteLLM sends the same default).
const DefaultAnthropicMaxTokens = 4096

// Anthropic is a transport to Anthropic's Messages API. It translates chat
// messages to Messages (system prompt, content parts, images, tools, tool
// results, cache_control) and the answer back, including streaming events.
type Anthropic struct {
	endpoint
	model string
}

// NewAnthropic returns a transport to base's /v1/messages for model.
func NewAnthropic(client *http.Client, base, apiKey, model string) *Anthropic {
	if base == "" {
		base = DefaultAnthropicBase
	}
	base = strings.TrimRight(base, "/")
	switch {
	case strings.HasSuffix(base, "/v1/messages"):
	case strings.HasSuffix(base, "/v1"):
		base += "/messages"
	default:
		base += "/v1/messages"
	}
	h := http.Header{"Content-Type": {"application/json"}, "Anthropic-Version": {anthropicVersion}}
	if apiKey != "" {
		h.Set("X-Api-Key", apiKey)
	}
	return &Anthropic{endpoint: newEndpoint(client, base, h), model: model}
}

// URL is the endpoint the transport posts to.
func (t *Anthropic) URL() string { return t.url }

type msgRequest struct {
	Model         string          `json:"model"`
	System        []block         `json:"system,omitempty"`
	Messages      []msgMessage    `json:"messages"`
	MaxTokens     int64           `json:"max_tokens"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Tools         []msgTool       `json:"tools,omitempty"`
	ToolChoice    json.RawMessage `json:"tool_choice,omitempty"`
	Metadata      *msgMetadata    `json:"metadata,omitempty"`
}

type msgMetadata struct {
	UserID string `json:"user_id"`
}

type msgMessage struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

type block struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	Source       *imageSource    `json:"source,omitempty"`
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      string          `json:"content,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type imageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type msgTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// toMessages translates a chat request to a Messages request.
func toMessages(req *openai.ChatRequest, model string, stream bool) (*msgRequest, error) {
	out := &msgRequest{
		Model: model, MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP,
		StopSequences: req.Stop, Stream: stream,
	}
	if out.MaxTokens == 0 {
		out.MaxTokens = DefaultAnthropicMaxTokens
	}
	if req.User != "" {
		out.Metadata = &msgMetadata{UserID: req.User}
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		parts, err := m.Parts()
		if err != nil {
			return nil, fmt.Errorf("messages[%d].content: %w", i, err)
		}
		var blocks []block
		role := m.Role
		switch m.Role {
		case "system", "developer":
			for _, p := range parts {
				if p.Type == "text" && p.Text != "" {
					out.System = append(out.System, block{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
				}
			}
			continue
		case "tool", "function":
			role = "user"
			blocks = append(blocks, block{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Text()})
		default:
			if role != "assistant" {
				role = "user"
			}
			for _, p := range parts {
				b, ok := partBlock(p)
				if ok {
					blocks = append(blocks, b)
				}
			}
			for _, tc := range m.ToolCalls {
				input := json.RawMessage(tc.Function.Arguments)
				if len(bytes.TrimSpace(input)) == 0 || !json.Valid(input) {
					input = json.RawMessage("{}")
				}
				blocks = append(blocks, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
			}
		}
		if len(blocks) == 0 {
			continue
		}
		// The Messages API wants turns to alternate; merge consecutive turns of
		// one role (e.g. several tool results, then the next user message).
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		out.Messages = append(out.Messages, msgMessage{Role: role, Content: blocks})
	}
	for _, t := range req.Tools {
		schema := t.Function.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, msgTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	out.ToolChoice = toolChoice(req.ToolChoice)
	return out, nil
}

func partBlock(p openai.Part) (block, bool) {
	switch p.Type {
	case "text":
		if p.Text == "" {
			return block{}, false
		}
		return block{Type: "text", Text: p.Text, CacheControl: p.CacheControl}, true
	case "image_url":
		if p.ImageURL == nil {
			return block{}, false
		}
		u := p.ImageURL.URL
		if rest, ok := strings.CutPrefix(u, "data:"); ok {
			meta, data, _ := strings.Cut(rest, ",")
			media, _, _ := strings.Cut(meta, ";")
			return block{Type: "image", Source: &imageSource{Type: "base64", MediaType: media, Data: data}, CacheControl: p.CacheControl}, true
		}
		return block{Type: "image", Source: &imageSource{Type: "url", URL: u}, CacheControl: p.CacheControl}, true
	}
	return block{}, false
}

func toolChoice(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto":
			return json.RawMessage(`{"type":"auto"}`)
		case "required":
			return json.RawMessage(`{"type":"any"}`)
		case "none":
			return json.RawMessage(`{"type":"none"}`)
		}
		return nil
	}
	var v struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &v) == nil && v.Function.Name != "" {
		b, _ := json.Marshal(map[string]string{"type": "tool", "name": v.Function.Name})
		return b
	}
	return nil
}

// anthropicUsage is the Messages API's usage object.
type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

// normalize maps Anthropic's counts with pricing.FromAnthropic.
func (u *anthropicUsage) normalize() (pricing.Usage, error) {
	creation, oneHour := u.CacheCreationInputTokens, int64(0)
	if c := u.CacheCreation; c != nil {
		oneHour = c.Ephemeral1h
		creation = max(creation, c.Ephemeral5m+c.Ephemeral1h)
	}
	n, err := pricing.FromAnthropic(u.InputTokens, u.CacheReadInputTokens, creation, oneHour, u.OutputTokens)
	if err != nil {
		return pricing.Usage{}, fmt.Errorf("anthropic usage: %w", err)
	}
	return n, nil
}

type msgResponse struct {
	ID         string `json:"id"`
	Model      string `json:"model"`
	StopReason string `json:"stop_reason"`
	Content    []struct {
		Type     string          `json:"type"`
		Text     string          `json:"text"`
		Thinking string          `json:"thinking"`
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		Input    json.RawMessage `json:"input"`
	} `json:"content"`
	Usage anthropicUsage `json:"usage"`
}

func finishReason(stop string) string {
	switch stop {
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default:
		return "stop"
	}
}

func (t *Anthropic) post(ctx context.Context, req *openai.ChatRequest, stream bool) (*http.Response, error) {
	mr, err := toMessages(req, t.model, stream)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	body, err := json.Marshal(mr)
	if err != nil {
		return nil, fmt.Errorf("upstream: encode messages request: %w", err)
	}
	return t.endpoint.post(ctx, body)
}

// Complete implements Transport.
func (t *Anthropic) Complete(ctx context.Context, req *openai.ChatRequest) (*Result, error) {
	resp, err := t.post(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readBody(resp, maxResponseBytes)
	if err != nil {
		return nil, wrapErr(ctx, err)
	}
	var mr msgResponse
	if err := json.Unmarshal(b, &mr); err != nil {
		return nil, &Error{Status: http.StatusBadGateway, Message: "upstream answered with invalid JSON", Err: err}
	}
	u, err := mr.Usage.normalize()
	if err != nil {
		return nil, &Error{Status: http.StatusBadGateway, Message: "upstream reported inconsistent usage", Err: err}
	}
	var text strings.Builder
	msg := openai.ResponseMessage{Role: "assistant"}
	for _, c := range mr.Content {
		switch c.Type {
		case "text":
			text.WriteString(c.Text)
		case "tool_use":
			args := string(c.Input)
			if args == "" {
				args = "{}"
			}
			msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{ID: c.ID, Type: "function", Function: openai.FunctionCall{Name: c.Name, Arguments: args}})
		}
	}
	if text.Len() > 0 || len(msg.ToolCalls) == 0 {
		msg.Content = openai.Ptr(text.String())
	}
	out, err := json.Marshal(openai.Completion{
		ID: mr.ID, Object: "chat.completion", Created: time.Now().Unix(), Model: mr.Model,
		Choices: []openai.Choice{{Message: msg, FinishReason: finishReason(mr.StopReason)}},
		Usage:   openai.FromNormalized(u),
	})
	if err != nil {
		return nil, fmt.Errorf("upstream: encode completion: %w", err)
	}
	return &Result{Body: out, Usage: u}, nil
}

// Stream implements Transport.
func (t *Anthropic) Stream(ctx context.Context, req *openai.ChatRequest) (Stream, error) {
	resp, err := t.post(ctx, req, true)
	if err != nil {
		return nil, err
	}
	return &anthropicStream{ctx: ctx, body: resp.Body, sse: newSSEReader(resp.Body), req: req, created: time.Now().Unix(), toolIndex: map[int]int{}}, nil
}

// anthropicStream translates Messages streaming events into chat chunks:
// message_start gives the role chunk and the prompt-side usage,
// content_block_start/delta give content and tool-call chunks, message_delta
// gives the finish reason and the output usage, and message_stop ends the
// stream with the usage chunk.
type anthropicStream struct {
	ctx       context.Context
	body      io.ReadCloser
	sse       *sseReader
	req       *openai.ChatRequest
	id, model string
	created   int64
	usage     anthropicUsage
	gotUsage  bool
	outBytes  int64
	toolIndex map[int]int // content block index -> tool call index
	done      bool
	buf       []byte
}

type streamEvent struct {
	Type    string `json:"type"`
	Message *struct {
		ID    string         `json:"id"`
		Model string         `json:"model"`
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
	Index        int `json:"index"`
	ContentBlock *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"content_block"`
	Delta *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Thinking    string `json:"thinking"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *anthropicUsage `json:"usage"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *anthropicStream) chunk(d openai.Delta, finish *string, usage *openai.Usage) (Chunk, error) {
	c := openai.Chunk{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model, Usage: usage}
	if usage == nil {
		c.Choices = []openai.ChunkChoice{{Delta: d, FinishReason: finish}}
	} else {
		c.Choices = []openai.ChunkChoice{}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return Chunk{}, fmt.Errorf("upstream: encode chunk: %w", err)
	}
	s.buf = b
	return Chunk{Data: s.buf, UsageOnly: usage != nil}, nil
}

// anthropicErrorStatus maps a streamed error type to the HTTP status the same
// error would have had before the stream started.
func anthropicErrorStatus(typ string) int {
	switch typ {
	case "overloaded_error":
		return 529
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}

func (s *anthropicStream) Next() (Chunk, error) {
	for {
		if s.done {
			return Chunk{}, io.EOF
		}
		_, data, err := s.sse.Next()
		if err == io.EOF {
			s.done = true
			return Chunk{}, io.EOF
		}
		if err != nil {
			return Chunk{}, wrapErr(s.ctx, err)
		}
		var ev streamEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return Chunk{}, &Error{Status: http.StatusBadGateway, Message: "upstream sent an invalid stream event", Err: err}
		}
		switch ev.Type {
		case "message_start":
			if ev.Message != nil {
				s.id, s.model = ev.Message.ID, ev.Message.Model
				s.usage = ev.Message.Usage
				s.gotUsage = true
			}
			return s.chunk(openai.Delta{Role: "assistant", Content: openai.Ptr("")}, nil, nil)
		case "content_block_start":
			if cb := ev.ContentBlock; cb != nil && cb.Type == "tool_use" {
				i := len(s.toolIndex)
				s.toolIndex[ev.Index] = i
				s.outBytes += int64(len(cb.Name))
				return s.chunk(openai.Delta{ToolCalls: []openai.ToolCall{{Index: openai.Ptr(i), ID: cb.ID, Type: "function", Function: openai.FunctionCall{Name: cb.Name}}}}, nil, nil)
			}
		case "content_block_delta":
			d := ev.Delta
			if d == nil {
				continue
			}
			switch d.Type {
			case "text_delta":
				s.outBytes += int64(len(d.Text))
				return s.chunk(openai.Delta{Content: openai.Ptr(d.Text)}, nil, nil)
			case "thinking_delta":
				s.outBytes += int64(len(d.Thinking))
				return s.chunk(openai.Delta{ReasoningContent: openai.Ptr(d.Thinking)}, nil, nil)
			case "input_json_delta":
				s.outBytes += int64(len(d.PartialJSON))
				i := s.toolIndex[ev.Index]
				return s.chunk(openai.Delta{ToolCalls: []openai.ToolCall{{Index: openai.Ptr(i), Function: openai.FunctionCall{Arguments: d.PartialJSON}}}}, nil, nil)
			}
		case "message_delta":
			if u := ev.Usage; u != nil {
				// output_tokens is cumulative; the prompt-side counts, when
				// repeated here, are final.
				s.usage.OutputTokens = u.OutputTokens
				if u.InputTokens > 0 {
					s.usage.InputTokens = u.InputTokens
				}
				if u.CacheReadInputTokens > 0 {
					s.usage.CacheReadInputTokens = u.CacheReadInputTokens
				}
				if u.CacheCreationInputTokens > 0 {
					s.usage.CacheCreationInputTokens = u.CacheCreationInputTokens
				}
				if u.CacheCreation != nil {
					s.usage.CacheCreation = u.CacheCreation
				}
				s.gotUsage = true
			}
			if ev.Delta != nil && ev.Delta.StopReason != "" {
				return s.chunk(openai.Delta{}, openai.Ptr(finishReason(ev.Delta.StopReason)), nil)
			}
		case "message_stop":
			s.done = true
			u, _ := s.Usage()
			return s.chunk(openai.Delta{}, nil, openai.FromNormalized(u))
		case "error":
			e := &Error{Status: http.StatusInternalServerError, Message: "upstream failed mid-stream"}
			if ev.Error != nil {
				e.Status, e.Type, e.Message = anthropicErrorStatus(ev.Error.Type), ev.Error.Type, "upstream failed mid-stream: "+ev.Error.Message
			}
			return Chunk{}, e
		}
	}
}

func (s *anthropicStream) Usage() (pricing.Usage, bool) {
	if s.gotUsage {
		if u, err := s.usage.normalize(); err == nil {
			return u, false
		}
	}
	return estimate(s.req, s.outBytes), true
}

func (s *anthropicStream) Close() error { return s.body.Close() }
