package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

func parse(t *testing.T, body string) *openai.ChatRequest {
	t.Helper()
	r, e := openai.ParseChatRequest([]byte(body))
	if e != nil {
		t.Fatal(e)
	}
	return r
}

// stub is an upstream that records the request and answers with fn.
func stub(t *testing.T, fn func(w http.ResponseWriter, body map[string]any)) (*httptest.Server, *http.Header, *string) {
	t.Helper()
	var hdr http.Header
	var path string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr, path = r.Header.Clone(), r.URL.String()
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		fn(w, body)
	}))
	t.Cleanup(s.Close)
	return s, &hdr, &path
}

func drain(t *testing.T, s Stream) []Chunk {
	t.Helper()
	var out []Chunk
	for {
		c, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Chunk{Data: append([]byte(nil), c.Data...), UsageOnly: c.UsageOnly})
	}
}

func TestOpenAICompleteNormalizesCachedAndReasoningTokens(t *testing.T) {
	var got map[string]any
	srv, hdr, _ := stub(t, func(w http.ResponseWriter, body map[string]any) {
		got = body
		_, _ = io.WriteString(w, `{"id":"x","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
			"usage":{"prompt_tokens":1000,"completion_tokens":300,"total_tokens":1300,"prompt_tokens_details":{"cached_tokens":800},"completion_tokens_details":{"reasoning_tokens":120}}}`)
	})
	tr := NewOpenAI(http.DefaultClient, srv.URL+"/v1", "sk-up", "gpt-4o")
	res, err := tr.Complete(context.Background(), parse(t, `{"model":"group","messages":[{"role":"user","content":"hi"}],"metadata":{"tags":["a"]},"temperature":0.2}`))
	if err != nil {
		t.Fatal(err)
	}
	want := pricing.Usage{Input: 200, CacheRead: 800, Output: 180, Reasoning: 120}
	if res.Usage != want || res.UsageEstimated {
		t.Fatalf("usage %+v; want %+v", res.Usage, want)
	}
	if got["model"] != "gpt-4o" || got["metadata"] != nil || got["temperature"] != 0.2 || got["stream"] != nil {
		t.Fatalf("upstream body %v: want backend model, gateway fields stripped, the rest kept", got)
	}
	if hdr.Get("Authorization") != "Bearer sk-up" {
		t.Fatalf("auth header %q", hdr.Get("Authorization"))
	}
	if !strings.Contains(string(res.Body), `"content":"hi"`) {
		t.Fatalf("body not passed through: %s", res.Body)
	}
}

func TestOpenAICompleteWithoutUsageIsEstimated(t *testing.T) {
	srv, _, _ := stub(t, func(w http.ResponseWriter, _ map[string]any) {
		_, _ = io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"12345678"}}]}`)
	})
	res, err := NewOpenAI(http.DefaultClient, srv.URL, "", "m").Complete(context.Background(), parse(t, `{"model":"g","messages":[{"role":"user","content":"abcdefghi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.UsageEstimated || res.Usage != (pricing.Usage{Input: 3, Output: 2}) {
		t.Fatalf("usage %+v estimated=%v; want ceil(9/4)=3 in, ceil(8/4)=2 out", res.Usage, res.UsageEstimated)
	}
}

func TestOpenAIStreamAsksForUsageAndFlagsTheUsageChunk(t *testing.T) {
	var got map[string]any
	srv, _, _ := stub(t, func(w http.ResponseWriter, body map[string]any) {
		got = body
		w.Header().Set("Content-Type", "text/event-stream")
		for _, l := range []string{
			`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`,
			`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}`,
			`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}`,
			`{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":4}}}`,
			`[DONE]`,
		} {
			_, _ = io.WriteString(w, "data: "+l+"\n\n")
		}
	})
	st, err := NewOpenAI(http.DefaultClient, srv.URL, "", "m").Stream(context.Background(), parse(t, `{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	so, _ := got["stream_options"].(map[string]any)
	if got["stream"] != true || so["include_usage"] != true {
		t.Fatalf("upstream body %v; the gateway must ask for stream usage", got)
	}
	chunks := drain(t, st)
	if len(chunks) != 4 || !chunks[3].UsageOnly || chunks[2].UsageOnly {
		t.Fatalf("chunks %d, usage-only flags wrong", len(chunks))
	}
	u, est := st.Usage()
	if est || u != (pricing.Usage{Input: 6, CacheRead: 4, Output: 2}) {
		t.Fatalf("usage %+v est=%v", u, est)
	}
}

func TestOpenAIErrorsAreClassified(t *testing.T) {
	for name, tc := range map[string]struct {
		status        int
		body          string
		contextWindow bool
		failover      bool
	}{
		"context window": {400, `{"error":{"message":"This model's maximum context length is 128000 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}`, true, false},
		"bad request":    {400, `{"error":{"message":"bad temperature","type":"invalid_request_error"}}`, false, false},
		"rate limit":     {429, `{"error":{"message":"slow down","type":"requests"}}`, false, true},
		"server error":   {500, `oops`, false, true},
		"overloaded":     {529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, false, true},
		"bad key":        {401, `{"error":{"message":"bad key"}}`, false, true},
	} {
		t.Run(name, func(t *testing.T) {
			srv, _, _ := stub(t, func(w http.ResponseWriter, _ map[string]any) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := NewOpenAI(http.DefaultClient, srv.URL, "", "m").Complete(context.Background(), parse(t, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`))
			var ue *Error
			if !errors.As(err, &ue) || ue.Status != tc.status || ue.ContextWindow != tc.contextWindow || ue.Failover() != tc.failover {
				t.Fatalf("err %#v", err)
			}
		})
	}
}

func TestConnectionFailureFailsOver(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := NewOpenAI(http.DefaultClient, url, "", "m").Complete(context.Background(), parse(t, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`))
	var ue *Error
	if !errors.As(err, &ue) || ue.Status != 0 || !ue.Failover() {
		t.Fatalf("err %#v; want a connection error that fails over", err)
	}
}

func TestCancelledCallerIsNotWrapped(t *testing.T) {
	srv, _, _ := stub(t, func(http.ResponseWriter, map[string]any) {})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewOpenAI(http.DefaultClient, srv.URL, "", "m").Complete(ctx, parse(t, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`))
	var ue *Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &ue) {
		t.Fatalf("err %#v; want the bare cancellation", err)
	}
}

func TestAzureURLAndKey(t *testing.T) {
	srv, hdr, path := stub(t, func(w http.ResponseWriter, _ map[string]any) {
		_, _ = io.WriteString(w, `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	})
	_, err := NewAzure(http.DefaultClient, srv.URL, "az-key", "", "my-deploy").Complete(context.Background(), parse(t, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if *path != "/openai/deployments/my-deploy/chat/completions?api-version="+DefaultAzureAPIVersion || hdr.Get("Api-Key") != "az-key" {
		t.Fatalf("path %q api-key %q", *path, hdr.Get("Api-Key"))
	}
}

const anthropicRequest = `{"model":"claude","max_tokens":50,"stop":"END","user":"u1","messages":[
	{"role":"system","content":"be brief"},
	{"role":"developer","content":[{"type":"text","text":"and kind","cache_control":{"type":"ephemeral"}}]},
	{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
	{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},
	{"role":"tool","tool_call_id":"t1","content":"42"},
	{"role":"user","content":"thanks"}],
	"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"}`

func TestAnthropicTranslatesRequestAndResponse(t *testing.T) {
	var got map[string]any
	srv, hdr, path := stub(t, func(w http.ResponseWriter, body map[string]any) {
		got = body
		_, _ = io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_reason":"tool_use",
			"content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"t2","name":"f","input":{"x":2}}],
			"usage":{"input_tokens":100,"output_tokens":20,"cache_read_input_tokens":800,"cache_creation_input_tokens":300,
			"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":100}}}`)
	})
	res, err := NewAnthropic(http.DefaultClient, srv.URL, "ak", "claude-sonnet-4-5").Complete(context.Background(), parse(t, anthropicRequest))
	if err != nil {
		t.Fatal(err)
	}
	if *path != "/v1/messages" || hdr.Get("X-Api-Key") != "ak" || hdr.Get("Anthropic-Version") == "" {
		t.Fatalf("path %q headers %v", *path, *hdr)
	}
	sys, _ := json.Marshal(got["system"])
	if string(sys) != `[{"text":"be brief","type":"text"},{"cache_control":{"type":"ephemeral"},"text":"and kind","type":"text"}]` {
		t.Fatalf("system %s", sys)
	}
	msgs, _ := json.Marshal(got["messages"])
	for _, want := range []string{
		`{"content":[{"text":"look","type":"text"},{"source":{"data":"AAAA","media_type":"image/png","type":"base64"},"type":"image"}],"role":"user"}`,
		`{"content":[{"id":"t1","input":{"x":1},"name":"f","type":"tool_use"}],"role":"assistant"}`,
		`{"content":[{"content":"42","tool_use_id":"t1","type":"tool_result"},{"text":"thanks","type":"text"}],"role":"user"}`,
	} {
		if !strings.Contains(string(msgs), want) {
			t.Fatalf("messages %s\nlack %s", msgs, want)
		}
	}
	if got["max_tokens"] != 50.0 || got["model"] != "claude-sonnet-4-5" {
		t.Fatalf("body %v", got)
	}
	if tc, _ := json.Marshal(got["tool_choice"]); string(tc) != `{"type":"any"}` {
		t.Fatalf("tool_choice %s", tc)
	}
	want := pricing.Usage{Input: 100, CacheRead: 800, CacheCreation: 200, CacheCreation1h: 100, Output: 20}
	if res.Usage != want {
		t.Fatalf("usage %+v; want %+v", res.Usage, want)
	}
	var c openai.Completion
	if err := json.Unmarshal(res.Body, &c); err != nil {
		t.Fatal(err)
	}
	if *c.Choices[0].Message.Content != "ok" || c.Choices[0].FinishReason != "tool_calls" || c.Choices[0].Message.ToolCalls[0].Function.Arguments != `{"x":2}` {
		t.Fatalf("completion %s", res.Body)
	}
	if c.Usage.PromptTokens != 1200 || c.Usage.PromptTokensDetails.CachedTokens != 800 || c.Usage.CompletionTokens != 20 {
		t.Fatalf("client usage %+v", c.Usage)
	}
}

func TestAnthropicStreamTranslatesEventsAndBillsFinalUsage(t *testing.T) {
	srv, _, _ := stub(t, func(w http.ResponseWriter, body map[string]any) {
		if body["stream"] != true {
			t.Errorf("stream not requested: %v", body)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{
			`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":50,"cache_read_input_tokens":1000,"cache_creation_input_tokens":0,"output_tokens":1}}}`,
			`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
			`event: ping` + "\n" + `data: {"type":"ping"}`,
			`event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
			`event: content_block_stop` + "\n" + `data: {"type":"content_block_stop","index":0}`,
			`event: message_delta` + "\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}`,
			`event: message_stop` + "\n" + `data: {"type":"message_stop"}`,
		} {
			_, _ = io.WriteString(w, ev+"\n\n")
		}
	})
	st, err := NewAnthropic(http.DefaultClient, srv.URL+"/v1", "", "claude-sonnet-4-5").Stream(context.Background(), parse(t, `{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	chunks := drain(t, st)
	if len(chunks) != 4 {
		t.Fatalf("%d chunks; want role, content, finish, usage", len(chunks))
	}
	if !strings.Contains(string(chunks[1].Data), `"content":"Hello"`) || !strings.Contains(string(chunks[2].Data), `"finish_reason":"stop"`) || !chunks[3].UsageOnly {
		t.Fatalf("chunks: %s | %s | %s", chunks[1].Data, chunks[2].Data, chunks[3].Data)
	}
	u, est := st.Usage()
	if est || u != (pricing.Usage{Input: 50, CacheRead: 1000, Output: 15}) {
		t.Fatalf("usage %+v est=%v", u, est)
	}
	if !strings.Contains(string(chunks[3].Data), `"prompt_tokens":1050`) {
		t.Fatalf("usage chunk %s", chunks[3].Data)
	}
}

func TestAnthropicStreamErrorEvent(t *testing.T) {
	srv, _, _ := stub(t, func(w http.ResponseWriter, _ map[string]any) {
		_, _ = io.WriteString(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")
	})
	st, err := NewAnthropic(http.DefaultClient, srv.URL, "", "m").Stream(context.Background(), parse(t, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Next()
	var ue *Error
	if !errors.As(err, &ue) || ue.Status != 529 {
		t.Fatalf("err %v", err)
	}
}

func TestAnthropicContextWindowError(t *testing.T) {
	srv, _, _ := stub(t, func(w http.ResponseWriter, _ map[string]any) {
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`)
	})
	_, err := NewAnthropic(http.DefaultClient, srv.URL, "", "m").Complete(context.Background(), parse(t, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`))
	var ue *Error
	if !errors.As(err, &ue) || !ue.ContextWindow || ue.Failover() {
		t.Fatalf("err %#v", err)
	}
}

func TestMockUsageIsDeterministic(t *testing.T) {
	m := &Mock{Text: "Hello from the demo gateway.", Model: "gpt-4o"}                                                       // 28 bytes
	req := parse(t, `{"model":"g","messages":[{"role":"system","content":"sys"},{"role":"user","content":"hello world"}]}`) // 14 bytes
	res, err := m.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage != (pricing.Usage{Input: 4, Output: 7}) {
		t.Fatalf("usage %+v; want ceil(14/4)=4 and ceil(28/4)=7", res.Usage)
	}
	st, err := m.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	chunks := drain(t, st)
	if u, _ := st.Usage(); u != res.Usage || !chunks[len(chunks)-1].UsageOnly {
		t.Fatalf("stream usage %+v", u)
	}
	e, _ := MockError("RateLimitError", "")
	_, err = (&Mock{Err: e}).Complete(context.Background(), req)
	var ue *Error
	if !errors.As(err, &ue) || ue.Status != 429 || !ue.Failover() {
		t.Fatalf("err %v", err)
	}
}

func TestSSEReaderJoinsMultilineData(t *testing.T) {
	r := newSSEReader(strings.NewReader(": comment\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\ndata:c\n"))
	ev, data, err := r.Next()
	if err != nil || string(ev) != "x" || string(data) != "a\nb" {
		t.Fatalf("%q %q %v", ev, data, err)
	}
	_, data, err = r.Next()
	if err != nil || string(data) != "c" {
		t.Fatalf("%q %v", data, err)
	}
	if _, _, err = r.Next(); err != io.EOF {
		t.Fatal(err)
	}
}

// Usage is read without decoding the choices, but the body must still be
// valid JSON: anything else is the upstream's failure (502), never billed as
// an estimate.
func TestOpenAICompleteRejectsInvalidJSON(t *testing.T) {
	srv, _, _ := stub(t, func(w http.ResponseWriter, _ map[string]any) {
		_, _ = io.WriteString(w, `{"choices":[],"usage":{"prompt_tokens":1`)
	})
	_, err := NewOpenAI(http.DefaultClient, srv.URL, "", "m").Complete(context.Background(), parse(t, `{"model":"g","messages":[{"role":"user","content":"x"}]}`))
	var ue *Error
	if !errors.As(err, &ue) || ue.Status != http.StatusBadGateway {
		t.Fatalf("err %v; want a 502 *Error", err)
	}
}
