package openai

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spendledger/spendledger/ledger/pricing"
)

// Usage is OpenAI's usage object. prompt_tokens includes cached tokens (and,
// from LiteLLM-style proxies in front of Anthropic, cache writes), and
// completion_tokens includes reasoning tokens.
type Usage struct {
	PromptTokens            int64                    `json:"prompt_tokens"`
	CompletionTokens        int64                    `json:"completion_tokens"`
	TotalTokens             int64                    `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
	// LiteLLM's fields for Anthropic-style cache accounting.
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens,omitempty"`
}

// PromptTokensDetails breaks prompt_tokens down.
type PromptTokensDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// CompletionTokensDetails breaks completion_tokens down.
type CompletionTokensDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// Normalize turns OpenAI-style overlapping counts into disjoint ones with
// pricing.FromOpenAI. Cache writes reported as cache_creation_input_tokens (by
// LiteLLM-style proxies, which count them inside prompt_tokens) are moved out
// of the uncached input into CacheCreation.
func (u *Usage) Normalize() (pricing.Usage, error) {
	var cached, reasoning int64
	if d := u.PromptTokensDetails; d != nil {
		cached = d.CachedTokens
	}
	if cached == 0 {
		cached = u.CacheReadInputTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		reasoning = d.ReasoningTokens
	}
	n, err := pricing.FromOpenAI(u.PromptTokens, cached, u.CompletionTokens, reasoning)
	if err != nil {
		return pricing.Usage{}, fmt.Errorf("openai usage: %w", err)
	}
	if w := u.CacheCreationInputTokens; w > 0 {
		if w > n.Input {
			return pricing.Usage{}, fmt.Errorf("openai usage: cache_creation_input_tokens %d exceed uncached prompt tokens %d", w, n.Input)
		}
		n.Input -= w
		n.CacheCreation = w
	}
	return n, nil
}

// FromNormalized is the OpenAI usage object for normalized counts, as a client
// of an OpenAI-compatible API expects it (cache reads and writes inside
// prompt_tokens, reasoning inside completion_tokens).
func FromNormalized(n pricing.Usage) *Usage {
	creation := n.CacheCreation + n.CacheCreation1h
	u := &Usage{
		PromptTokens:     n.Input + n.CacheRead + creation,
		CompletionTokens: n.Output + n.Reasoning,
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	u.PromptTokensDetails = &PromptTokensDetails{CachedTokens: n.CacheRead}
	if n.Reasoning > 0 {
		u.CompletionTokensDetails = &CompletionTokensDetails{ReasoningTokens: n.Reasoning}
	}
	u.CacheCreationInputTokens = creation
	u.CacheReadInputTokens = n.CacheRead
	return u
}

// Completion is a chat.completion response.
type Completion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint *string  `json:"system_fingerprint"`
}

// Choice is one completion choice.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
}

// ResponseMessage is the assistant's message in a completion.
type ResponseMessage struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// Chunk is a chat.completion.chunk (one streamed event).
type Chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *Usage        `json:"usage,omitempty"`
}

// ChunkChoice is one choice's delta.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is the increment of a streamed message.
type Delta struct {
	Role             string     `json:"role,omitempty"`
	Content          *string    `json:"content,omitempty"`
	ReasoningContent *string    `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
}

// ChunkSummary is what the gateway reads from every streamed chunk: whether it
// carries usage, and the text it adds (for the estimate when an upstream never
// reports usage).
type ChunkSummary struct {
	Choices []struct {
		Delta struct {
			Content   string     `json:"content"`
			ToolCalls []ToolCall `json:"tool_calls"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *Usage          `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// TextBytes is the number of bytes of generated text in the chunk.
func (c *ChunkSummary) TextBytes() int64 {
	var n int64
	for _, ch := range c.Choices {
		n += int64(len(ch.Delta.Content))
		for _, tc := range ch.Delta.ToolCalls {
			n += int64(len(tc.Function.Name) + len(tc.Function.Arguments))
		}
	}
	return n
}

// CompletionSummary is what the gateway reads from a non-streamed completion.
type CompletionSummary struct {
	Choices []struct {
		Message struct {
			Content   json.RawMessage `json:"content"`
			ToolCalls []ToolCall      `json:"tool_calls"`
		} `json:"message"`
	} `json:"choices"`
	Usage *Usage `json:"usage"`
}

// TextBytes is the number of bytes of generated text in the completion.
func (c *CompletionSummary) TextBytes() int64 {
	var n int64
	for _, ch := range c.Choices {
		var s string
		if json.Unmarshal(ch.Message.Content, &s) == nil {
			n += int64(len(s))
		}
		for _, tc := range ch.Message.ToolCalls {
			n += int64(len(tc.Function.Name) + len(tc.Function.Arguments))
		}
	}
	return n
}

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }

// ReportedUsage reads the usage a chat.completion body reports: nil when it
// has none (absent or null). ok is false when the fast path does not vouch
// for the body (see jsonscan.go); the caller then decodes it with
// encoding/json, which decides.
func ReportedUsage(body []byte) (u *Usage, ok bool) {
	var buf [16]member
	members, ok := objectMembers(body, buf[:0])
	if !ok {
		return nil, false
	}
	var raw []byte
	for _, m := range members {
		switch {
		case m.escaped:
			return nil, false
		case string(m.key) == "usage":
			if raw != nil {
				return nil, false // encoding/json merges duplicates
			}
			raw = m.val
		case strings.EqualFold(string(m.key), "usage"):
			return nil, false
		}
	}
	if raw == nil || string(raw) == "null" {
		return nil, true
	}
	u = &Usage{}
	ok = decodeMembers(raw, usageFields, func(k int, v []byte) bool {
		switch k {
		case 0:
			return intMember(v, &u.PromptTokens)
		case 1:
			return intMember(v, &u.CompletionTokens)
		case 2:
			return intMember(v, &u.TotalTokens)
		case 3:
			if string(v) == "null" {
				return true
			}
			u.PromptTokensDetails = &PromptTokensDetails{}
			return decodeMembers(v, promptDetailsFields, func(_ int, v []byte) bool { return intMember(v, &u.PromptTokensDetails.CachedTokens) })
		case 4:
			if string(v) == "null" {
				return true
			}
			u.CompletionTokensDetails = &CompletionTokensDetails{}
			return decodeMembers(v, completionDetailsFields, func(_ int, v []byte) bool {
				return intMember(v, &u.CompletionTokensDetails.ReasoningTokens)
			})
		case 5:
			return intMember(v, &u.CacheCreationInputTokens)
		default:
			return intMember(v, &u.CacheReadInputTokens)
		}
	})
	if !ok {
		return nil, false
	}
	return u, true
}

// The JSON names of Usage's fields and its details', in decodeMembers' order.
var (
	usageFields = []string{"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
		"completion_tokens_details", "cache_creation_input_tokens", "cache_read_input_tokens"}
	promptDetailsFields     = []string{"cached_tokens"}
	completionDetailsFields = []string{"reasoning_tokens"}
)

// decodeMembers walks the object obj and hands set's members to decode (by
// index in names), ignoring other keys as encoding/json does. It gives up
// (false) where encoding/json would read differently: a key matching a name
// only regardless of case, a repeated or escaped key, a value decode rejects.
func decodeMembers(obj []byte, names []string, decode func(k int, v []byte) bool) bool {
	var buf [16]member
	members, ok := objectMembers(obj, buf[:0])
	if !ok {
		return false
	}
	var seen uint64
	for _, m := range members {
		if m.escaped {
			return false
		}
		k := -1
		for j, name := range names {
			if string(m.key) == name {
				k = j
				break
			}
			if strings.EqualFold(string(m.key), name) {
				return false
			}
		}
		if k < 0 {
			continue
		}
		if seen&(1<<k) != 0 || !decode(k, m.val) {
			return false
		}
		seen |= 1 << k
	}
	return true
}

// intMember decodes an int64 member (null leaves it alone).
func intMember(v []byte, dst *int64) bool {
	if string(v) == "null" {
		return true
	}
	n, ok := plainInt(v)
	*dst = n
	return ok
}
