package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ChatRequest is a parsed POST /v1/chat/completions body. The top-level fields
// are kept raw so an OpenAI-compatible upstream gets the client's request as
// sent (tools, response_format, logprobs, ...) without the gateway having to
// know every parameter; only the fields the gateway acts on are decoded.
type ChatRequest struct {
	Raw map[string]json.RawMessage

	Model    string
	Messages []Message
	Stream   bool
	// IncludeUsage is the client's stream_options.include_usage. The gateway
	// always asks a streaming upstream for usage (it bills from it) and hides the
	// usage chunk from a client that did not ask for it.
	IncludeUsage bool
	// MaxTokens is max_completion_tokens, else max_tokens; 0 when unset.
	MaxTokens int64
	// User is the end user (LiteLLM's customer) the request is billed to.
	User string
	// Tags are the request's tags: metadata.tags and top-level tags.
	Tags []string

	// Fields the Anthropic translation reads.
	Temperature *float64
	TopP        *float64
	Stop        []string
	Tools       []Tool
	ToolChoice  json.RawMessage

	// textBytes is TextBytes, measured once by ParseChatRequest (measured).
	textBytes int64
	measured  bool
}

// Message is one chat message. Content is a string, an array of parts, or null.
type Message struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []ToolCall      `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

// Part is one element of an array content.
type Part struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	ImageURL     *ImageURL       `json:"image_url,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// ImageURL is an image_url part's payload.
type ImageURL struct {
	URL string `json:"url"`
}

// ToolCall is a function call an assistant made.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and carries its arguments as JSON text.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Tool is a function the model may call.
type Tool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	} `json:"function"`
}

// Parts returns the message content as parts: a string content is one text part.
func (m *Message) Parts() ([]Part, error) {
	c := bytes.TrimSpace(m.Content)
	if len(c) == 0 || string(c) == "null" {
		return nil, nil
	}
	if c[0] == '"' {
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return nil, err
		}
		return []Part{{Type: "text", Text: s}}, nil
	}
	var parts []Part
	if err := json.Unmarshal(c, &parts); err != nil {
		return nil, err
	}
	return parts, nil
}

// Text returns the concatenated text of the message content.
func (m *Message) Text() string {
	parts, _ := m.Parts()
	if len(parts) == 1 {
		return parts[0].Text
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// TextBytes is the number of bytes of text in the request: message contents,
// tool call arguments and tool names. It is the input of the gateway's one
// deterministic token estimate (EstimateTokens).
func (r *ChatRequest) TextBytes() int64 {
	if r.measured {
		return r.textBytes
	}
	var n int64
	for i := range r.Messages {
		parts, _ := r.Messages[i].Parts()
		n += r.Messages[i].textBytes(parts)
	}
	return n
}

// textBytes is the message's share of TextBytes, given its content parts.
func (m *Message) textBytes(parts []Part) int64 {
	var n int64
	for _, p := range parts {
		n += int64(len(p.Text))
	}
	for _, tc := range m.ToolCalls {
		n += int64(len(tc.Function.Name) + len(tc.Function.Arguments))
	}
	return n
}

// EstimateTokens is the gateway's deterministic token count for text of n
// bytes: ceil(n/4), about right for English with OpenAI's and Anthropic's
// tokenizers. It is an estimate, not a bound (dense non-Latin text runs closer
// to one token per 1-3 bytes); it sizes admission estimates and mock usage.
func EstimateTokens(n int64) int64 { return (n + 3) / 4 }

// maxBodyFields bounds how many top-level keys a request may have; a body is
// parsed into a map, so this keeps a hostile body from costing much.
const maxBodyFields = 256

// ParseChatRequest decodes and validates a chat completions body. Errors are
// 400s naming the parameter.
func ParseChatRequest(body []byte) (*ChatRequest, *Error) {
	r := &ChatRequest{}
	if err := json.Unmarshal(body, &r.Raw); err != nil || r.Raw == nil {
		return nil, BadRequest("request body is not a JSON object: "+errText(err), "")
	}
	if len(r.Raw) > maxBodyFields {
		return nil, BadRequest(fmt.Sprintf("request has %d top-level fields; at most %d are accepted", len(r.Raw), maxBodyFields), "")
	}
	if e := field(r.Raw, "model", &r.Model); e != nil {
		return nil, e
	}
	if r.Model == "" {
		return nil, BadRequest("you must provide a model parameter", "model")
	}
	if e := field(r.Raw, "messages", &r.Messages); e != nil {
		return nil, e
	}
	if len(r.Messages) == 0 {
		return nil, BadRequest("messages must be a non-empty array", "messages")
	}
	var textBytes int64
	for i := range r.Messages {
		m := &r.Messages[i]
		if m.Role == "" {
			return nil, BadRequest(fmt.Sprintf("messages[%d].role is required", i), fmt.Sprintf("messages[%d].role", i))
		}
		parts, err := m.Parts()
		if err != nil {
			return nil, BadRequest(fmt.Sprintf("messages[%d].content must be a string or an array of content parts", i), fmt.Sprintf("messages[%d].content", i))
		}
		textBytes += m.textBytes(parts)
	}
	if e := field(r.Raw, "stream", &r.Stream); e != nil {
		return nil, e
	}
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	if e := field(r.Raw, "stream_options", &so); e != nil {
		return nil, e
	}
	r.IncludeUsage = so.IncludeUsage
	var maxTokens, maxCompletion *int64
	if e := field(r.Raw, "max_tokens", &maxTokens); e != nil {
		return nil, e
	}
	if e := field(r.Raw, "max_completion_tokens", &maxCompletion); e != nil {
		return nil, e
	}
	switch {
	case maxCompletion != nil:
		r.MaxTokens = *maxCompletion
	case maxTokens != nil:
		r.MaxTokens = *maxTokens
	}
	if r.MaxTokens < 0 {
		return nil, BadRequest("max_tokens must not be negative", "max_tokens")
	}
	if e := field(r.Raw, "user", &r.User); e != nil {
		return nil, e
	}
	var meta struct {
		Tags []string `json:"tags"`
	}
	if raw, ok := r.Raw["metadata"]; ok && len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, BadRequest("metadata.tags must be an array of strings", "metadata.tags")
		}
	}
	var tags []string
	if e := field(r.Raw, "tags", &tags); e != nil {
		return nil, e
	}
	r.Tags = append(meta.Tags, tags...)
	if e := field(r.Raw, "temperature", &r.Temperature); e != nil {
		return nil, e
	}
	if e := field(r.Raw, "top_p", &r.TopP); e != nil {
		return nil, e
	}
	if raw, ok := r.Raw["stop"]; ok && len(raw) > 0 && string(raw) != "null" {
		if raw[0] == '"' {
			var s string
			_ = json.Unmarshal(raw, &s)
			r.Stop = []string{s}
		} else if err := json.Unmarshal(raw, &r.Stop); err != nil {
			return nil, BadRequest("stop must be a string or an array of strings", "stop")
		}
	}
	if e := field(r.Raw, "tools", &r.Tools); e != nil {
		return nil, e
	}
	r.ToolChoice = r.Raw["tool_choice"]
	r.textBytes, r.measured = textBytes, true
	return r, nil
}

func field(raw map[string]json.RawMessage, name string, v any) *Error {
	b, ok := raw[name]
	if !ok || string(b) == "null" {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return BadRequest(fmt.Sprintf("invalid value for %s: %s", name, errText(err)), name)
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

// Dedup returns the non-empty strings of a, sorted, without duplicates.
func Dedup(a ...[]string) []string {
	var out []string
	for _, s := range a {
		for _, v := range s {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	if len(out) < 2 {
		return out
	}
	sort.Strings(out)
	j := 1
	for i := 1; i < len(out); i++ {
		if out[i] != out[j-1] {
			out[j] = out[i]
			j++
		}
	}
	return out[:j]
}

// gatewayOnly are request fields that steer LiteLLM or this gateway and must not
// reach a provider, which would reject them (metadata with non-string values,
// tags) or misread them.
var gatewayOnly = map[string]bool{
	"metadata": true, "tags": true, "mock_response": true, "fallbacks": true,
	"context_window_fallbacks": true, "num_retries": true, "caching": true,
	"mock_testing_fallbacks": true, "mock_testing_context_fallbacks": true,
	"litellm_metadata": true, "guardrails": true,
}

// UpstreamBody writes the request for an OpenAI-compatible upstream: the
// client's fields, with model set to the backend model, gateway-only fields
// removed, and, for a stream, stream_options.include_usage forced on (the other
// stream_options the client set are kept).
func (r *ChatRequest) UpstreamBody(model string, stream bool) []byte {
	var b bytes.Buffer
	b.Grow(256 + len(r.Raw)*16)
	b.WriteByte('{')
	first := true
	put := func(k string, v []byte) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(v)
	}
	mb, _ := json.Marshal(model)
	put("model", mb)
	for k, v := range r.Raw {
		switch {
		case k == "model", k == "stream", k == "stream_options", gatewayOnly[k]:
			continue
		}
		put(k, v)
	}
	if stream {
		put("stream", []byte("true"))
		so := map[string]json.RawMessage{}
		if raw, ok := r.Raw["stream_options"]; ok {
			_ = json.Unmarshal(raw, &so)
		}
		so["include_usage"] = json.RawMessage("true")
		sb, _ := json.Marshal(so)
		put("stream_options", sb)
	}
	b.WriteByte('}')
	return b.Bytes()
}
