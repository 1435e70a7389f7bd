package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
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
	return parseChatRequest(body, &fastDecoders)
}

// decoders read the parts of a request the gateway acts on. fastDecoders
// split the body in place (jsonscan.go); the tests hold them to decoders that
// use encoding/json for everything, as the gateway did before.
type decoders struct {
	split     func(r *ChatRequest, body []byte) *Error
	messages  func(r *ChatRequest) *Error
	textBytes func(m *Message) (int64, error)
	str       func([]byte, *string) error
	boolean   func([]byte, *bool) error
	int64p    func([]byte, **int64) error
	float64p  func([]byte, **float64) error
}

var fastDecoders = decoders{
	split:     (*ChatRequest).splitBody,
	messages:  (*ChatRequest).parseMessages,
	textBytes: (*Message).contentTextBytes,
	str:       decodeString,
	boolean:   decodeBool,
	int64p:    decodeInt64Ptr,
	float64p:  decodeFloat64Ptr,
}

func parseChatRequest(body []byte, d *decoders) (*ChatRequest, *Error) {
	r := &ChatRequest{}
	if e := d.split(r, body); e != nil {
		return nil, e
	}
	if len(r.Raw) > maxBodyFields {
		return nil, BadRequest(fmt.Sprintf("request has %d top-level fields; at most %d are accepted", len(r.Raw), maxBodyFields), "")
	}
	if e := typedField(r.Raw, "model", &r.Model, d.str); e != nil {
		return nil, e
	}
	if r.Model == "" {
		return nil, BadRequest("you must provide a model parameter", "model")
	}
	if e := d.messages(r); e != nil {
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
		n, err := d.textBytes(m)
		if err != nil {
			return nil, BadRequest(fmt.Sprintf("messages[%d].content must be a string or an array of content parts", i), fmt.Sprintf("messages[%d].content", i))
		}
		textBytes += n
	}
	if e := typedField(r.Raw, "stream", &r.Stream, d.boolean); e != nil {
		return nil, e
	}
	if raw, ok := r.Raw["stream_options"]; ok && string(raw) != "null" {
		var so struct {
			IncludeUsage bool `json:"include_usage"`
		}
		if e := field(r.Raw, "stream_options", &so); e != nil {
			return nil, e
		}
		r.IncludeUsage = so.IncludeUsage
	}
	var maxTokens, maxCompletion *int64
	if e := typedField(r.Raw, "max_tokens", &maxTokens, d.int64p); e != nil {
		return nil, e
	}
	if e := typedField(r.Raw, "max_completion_tokens", &maxCompletion, d.int64p); e != nil {
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
	if e := typedField(r.Raw, "user", &r.User, d.str); e != nil {
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
	if e := typedField(r.Raw, "temperature", &r.Temperature, d.float64p); e != nil {
		return nil, e
	}
	if e := typedField(r.Raw, "top_p", &r.TopP, d.float64p); e != nil {
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

// splitBody fills Raw with the body's top-level members. The values are
// slices of body, which the request keeps.
func (r *ChatRequest) splitBody(body []byte) *Error {
	var buf [16]member
	members, ok := objectMembers(body, buf[:0])
	for i := 0; ok && i < len(members); i++ {
		ok = !members[i].escaped && utf8.Valid(members[i].key)
	}
	if !ok {
		if err := json.Unmarshal(body, &r.Raw); err != nil || r.Raw == nil {
			return BadRequest("request body is not a JSON object: "+errText(err), "")
		}
		return nil
	}
	r.Raw = make(map[string]json.RawMessage, len(members))
	for _, m := range members {
		r.Raw[internKey(m.key)] = m.val // the last of duplicate keys wins, as in encoding/json
	}
	return nil
}

// parseMessages decodes messages: plain messages on the fast path, the rest
// with encoding/json.
func (r *ChatRequest) parseMessages() *Error {
	raw, ok := r.Raw["messages"]
	if !ok || string(raw) == "null" {
		return nil
	}
	if msgs, ok := fastMessages(raw); ok {
		r.Messages = msgs
		return nil
	}
	return field(r.Raw, "messages", &r.Messages)
}

// messageFields are Message's JSON names, in decodeMembers' order.
var messageFields = []string{"role", "content", "name", "tool_calls", "tool_call_id"}

// fastMessages decodes an array of message objects whose members are
// plainly typed; ok is false when encoding/json must decide.
func fastMessages(raw []byte) ([]Message, bool) {
	var buf [8][]byte
	elems, ok := arrayElements(raw, buf[:0])
	if !ok {
		return nil, false
	}
	msgs := make([]Message, len(elems))
	for i, e := range elems {
		m := &msgs[i]
		ok := decodeMembers(e, messageFields, func(k int, v []byte) bool {
			if k == 1 {
				m.Content = v // null too: encoding/json keeps it as the raw "null"
				return true
			}
			if string(v) == "null" {
				return true
			}
			var ok bool
			switch k {
			case 0:
				m.Role, ok = plainString(v)
			case 2:
				m.Name, ok = plainString(v)
			case 3:
				ok = json.Unmarshal(v, &m.ToolCalls) == nil
			default:
				m.ToolCallID, ok = plainString(v)
			}
			return ok
		})
		if !ok {
			return nil, false
		}
	}
	return msgs, true
}

// contentTextBytes is the text bytes of the message (its share of
// TextBytes), and an error when its content is neither a string nor an array
// of parts.
func (m *Message) contentTextBytes() (int64, error) {
	c := bytes.TrimSpace(m.Content)
	if t, ok := plainStringBytes(c); ok {
		return int64(len(t)) + m.textBytes(nil), nil
	}
	parts, err := m.Parts()
	if err != nil {
		return 0, err
	}
	return m.textBytes(parts), nil
}

func field(raw map[string]json.RawMessage, name string, v any) *Error {
	return typedField(raw, name, v, func(b []byte, v any) error { return json.Unmarshal(b, v) })
}

// typedField decodes the member name (absent or null: left alone) with
// decode; its error is the 400 naming the parameter.
func typedField[T any](raw map[string]json.RawMessage, name string, v T, decode func([]byte, T) error) *Error {
	b, ok := raw[name]
	if !ok || string(b) == "null" {
		return nil
	}
	if err := decode(b, v); err != nil {
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
	n := len(`{"model":,"stream":true,"stream_options":}`) + 2*len(model) + 32
	for k, v := range r.Raw {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, `{"model":`...)
	b = appendJSONString(b, model)
	for k, v := range r.Raw {
		switch {
		case k == "model", k == "stream", k == "stream_options", gatewayOnly[k]:
			continue
		}
		b = append(b, ',')
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = append(b, v...)
	}
	if stream {
		b = append(b, `,"stream":true,"stream_options":`...)
		b = append(b, r.upstreamStreamOptions()...)
	}
	return append(b, '}')
}

// upstreamStreamOptions are the client's stream_options with include_usage
// forced on.
func (r *ChatRequest) upstreamStreamOptions() []byte {
	so := map[string]json.RawMessage{}
	if raw, ok := r.Raw["stream_options"]; ok {
		_ = json.Unmarshal(raw, &so)
	}
	if so == nil { // "stream_options": null
		so = map[string]json.RawMessage{}
	}
	so["include_usage"] = json.RawMessage("true")
	sb, _ := json.Marshal(so)
	return sb
}
