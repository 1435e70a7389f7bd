package openai

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/spendledger/spendledger/ledger/pricing"
)

func TestParseChatRequest(t *testing.T) {
	r, e := ParseChatRequest([]byte(`{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":10,"max_completion_tokens":20,
		"user":"u","metadata":{"tags":["b","a"]},"tags":["c"],"messages":[{"role":"user","content":[{"type":"text","text":"ab"},{"type":"text","text":"cd"}]}]}`))
	if e != nil {
		t.Fatal(e)
	}
	if r.Model != "m" || !r.Stream || !r.IncludeUsage || r.MaxTokens != 20 || r.User != "u" || len(r.Tags) != 3 || r.TextBytes() != 4 {
		t.Fatalf("%+v", r)
	}
	for body, param := range map[string]string{
		`[]`: "",
		`{"messages":[{"role":"user","content":"x"}]}`: "model",
		`{"model":"m"}`: "messages",
		`{"model":"m","messages":[{"content":"x"}]}`:                              "messages[0].role",
		`{"model":"m","messages":[{"role":"user","content":1}]}`:                  "messages[0].content",
		`{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}`: "stream",
	} {
		if _, e := ParseChatRequest([]byte(body)); e == nil || e.Status != 400 || e.Param != param {
			t.Errorf("%s: %+v; want 400 on %q", body, e, param)
		}
	}
}

func TestUpstreamBodyForcesStreamUsageAndKeepsOtherOptions(t *testing.T) {
	r, _ := ParseChatRequest([]byte(`{"model":"group","stream":true,"stream_options":{"include_obfuscation":false},"tags":["x"],"messages":[{"role":"user","content":"x"}]}`))
	var got map[string]any
	if err := json.Unmarshal(r.UpstreamBody("backend", true), &got); err != nil {
		t.Fatal(err)
	}
	so := got["stream_options"].(map[string]any)
	if got["model"] != "backend" || got["tags"] != nil || so["include_usage"] != true || so["include_obfuscation"] != false {
		t.Fatalf("%v", got)
	}
	got = nil
	if err := json.Unmarshal(r.UpstreamBody("backend", false), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["stream_options"]; ok {
		t.Fatal("a non-streamed call must not carry stream_options")
	}
}

func TestErrorShape(t *testing.T) {
	w := httptest.NewRecorder()
	(&Error{Status: 429, Message: "m", Type: TypeBudgetExceeded, Code: CodeBudgetExceeded, RetryAfter: 7}).Write(w)
	if w.Code != 429 || w.Header().Get("Retry-After") != "7" || w.Body.String() != `{"error":{"message":"m","type":"budget_exceeded","param":null,"code":"budget_exceeded"}}` {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestUsageNormalize(t *testing.T) {
	u := Usage{PromptTokens: 1000, CompletionTokens: 50, PromptTokensDetails: &PromptTokensDetails{CachedTokens: 800}}
	if n, err := u.Normalize(); err != nil || n != (pricing.Usage{Input: 200, CacheRead: 800, Output: 50}) {
		t.Fatalf("%+v %v", n, err)
	}
	// A LiteLLM proxy in front of Anthropic counts cache writes inside prompt_tokens.
	u = Usage{PromptTokens: 1300, CompletionTokens: 5, CacheReadInputTokens: 800, CacheCreationInputTokens: 300}
	if n, err := u.Normalize(); err != nil || n != (pricing.Usage{Input: 200, CacheRead: 800, CacheCreation: 300, Output: 5}) {
		t.Fatalf("%+v %v", n, err)
	}
	if _, err := (&Usage{PromptTokens: 1, PromptTokensDetails: &PromptTokensDetails{CachedTokens: 2}}).Normalize(); err == nil {
		t.Fatal("cached > prompt must be an error")
	}
	back := FromNormalized(pricing.Usage{Input: 200, CacheRead: 800, Output: 40, Reasoning: 10})
	if back.PromptTokens != 1000 || back.CompletionTokens != 50 || back.TotalTokens != 1050 {
		t.Fatalf("%+v", back)
	}
}

func TestEstimateTokens(t *testing.T) {
	for n, want := range map[int64]int64{0: 0, 1: 1, 4: 1, 5: 2, 28: 7} {
		if got := EstimateTokens(n); got != want {
			t.Errorf("EstimateTokens(%d) = %d; want %d", n, got, want)
		}
	}
}

func TestAPIKeyReadsEveryHeaderClientsUse(t *testing.T) {
	for header, value := range map[string]string{
		"Authorization":     "Bearer sk-a",
		"X-Litellm-Api-Key": "sk-a",
		"Api-Key":           "sk-a",
		"X-Api-Key":         " sk-a ",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(header, value)
		if got := APIKey(r); got != "sk-a" {
			t.Errorf("%s: %q; want sk-a", header, got)
		}
	}
	if got := APIKey(httptest.NewRequest("GET", "/", nil)); got != "" {
		t.Errorf("no header: %q", got)
	}
}

// ParseChatRequest measures the text once; the count must be the one a
// request built by hand (never parsed) computes, tool calls included, and an
// empty text must stay 0 rather than be measured again.
func TestTextBytesMeasuredAtParseMatchesComputed(t *testing.T) {
	for body, want := range map[string]int64{
		`{"model":"m","messages":[{"role":"user","content":"héllo"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"user","content":[{"type":"text","text":"ab"},{"type":"image_url","image_url":{"url":"http://x"}}]}]}`: 6 + 1 + 7 + 2,
		`{"model":"m","messages":[{"role":"user","content":""}]}`: 0,
	} {
		r, e := ParseChatRequest([]byte(body))
		if e != nil {
			t.Fatal(e)
		}
		unparsed := &ChatRequest{Messages: r.Messages}
		if got, computed := r.TextBytes(), unparsed.TextBytes(); got != want || computed != want {
			t.Errorf("%s: measured %d, computed %d; want %d", body, got, computed, want)
		}
	}
}
