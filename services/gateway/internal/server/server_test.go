package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/services/gateway/internal/budget"
)

const mockConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      mock_response: "Hello from the demo gateway."
      input_cost_per_token: "0.000002"
    model_info:
      id: gpt-4o-primary
      output_cost_per_token: "0.00001"
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-4-5, mock_response: "hi"}
    model_info: {id: claude-demo}
router_settings:
  fallbacks: [{gpt-4o: [claude]}]
general_settings:
  master_key: sk-master
`

const hello = `{"model":"gpt-4o","user":"u1","max_tokens":64,"metadata":{"tags":["zeta","alpha"]},"messages":[{"role":"user","content":"hello world"}]}`

func TestCompletionHeadersEventAndAdmission(t *testing.T) {
	r := newRig(t, mockConfig)
	resp, body := r.post(t, userKey, hello)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var c struct {
		Choices []struct{ Message struct{ Content string } }
		Usage   struct{ PromptTokens, CompletionTokens int64 } `json:"usage"`
	}
	if err := json.Unmarshal(body, &c); err != nil || c.Choices[0].Message.Content != "Hello from the demo gateway." {
		t.Fatalf("body %s", body)
	}
	// 11 bytes of prompt -> 3 tokens; 28 bytes of answer -> 7 tokens.
	// Cost: 3 x 0.000002 + 7 x 0.00001 = 0.000076 USD, exactly.
	h := resp.Header
	for k, want := range map[string]string{
		"X-Litellm-Model-Id":      "gpt-4o-primary",
		"X-Litellm-Response-Cost": "0.000076",
		"X-Litellm-Key-Spend":     "1.5",
		"X-Litellm-Model-Group":   "gpt-4o",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	if h.Get("X-Litellm-Call-Id") == "" {
		t.Error("no call id")
	}

	a := r.budget.lastAdmit()
	if a.KeyId != "key-1" || a.ModelGroup != "gpt-4o" || a.EndUserId != "u1" || a.PromptTokens != 3 || a.MaxTokens != 64 ||
		strings.Join(a.Tags, ",") != "alpha,prod,zeta" || a.RequestId != h.Get("X-Litellm-Call-Id") {
		t.Fatalf("admit request %v", a)
	}
	if len(a.Candidates) != 2 || a.Candidates[0].DeploymentId != "gpt-4o-primary" || a.Candidates[1].DeploymentId != "claude-demo" {
		t.Fatalf("candidates %v; want the group's deployments, then its fallback's", a.Candidates)
	}

	evs := r.waitEvents(t, 1)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	id := ev.Identity
	if id.KeyId != "key-1" || id.TeamId != "team-1" || id.UserId != "user-1" || id.OrgId != "org-1" || id.EndUserId != "u1" || strings.Join(id.Tags, ",") != "alpha,prod,zeta" {
		t.Fatalf("identity %v", id)
	}
	rt := ev.Route
	if rt.ModelGroup != "gpt-4o" || rt.DeploymentId != "gpt-4o-primary" || rt.Provider != "openai" || rt.BackendModel != "openai/gpt-4o" {
		t.Fatalf("route %v", rt)
	}
	if ev.Tokens.Input != 3 || ev.Tokens.Output != 7 {
		t.Fatalf("tokens %v", ev.Tokens)
	}
	if ev.PriceOverrides["input_cost_per_token"] != "0.000002" || ev.PriceOverrides["output_cost_per_token"] != "0.00001" {
		t.Fatalf("overrides %v", ev.PriceOverrides)
	}
	if ev.ReservationId != "res-1" || ev.ReservedNanos != 42_000 || !ev.OccurredAt.AsTime().Equal(fixedNow) || ev.Streamed || ev.GatewayId != "gw-test" || ev.RequestId != h.Get("X-Litellm-Call-Id") {
		t.Fatalf("event %v", ev)
	}
	// The cost lands on the request's counters and the served deployment's,
	// not on the counters of deployments that were only candidates.
	if got := strings.Join(ev.CounterKeys, ","); got != "counter-key-1,counter-of-gpt-4o-primary" {
		t.Fatalf("counter keys %q", got)
	}
	if len(r.budget.releasedIDs()) != 0 {
		t.Fatal("a completed call's reservation is settled by the ledger, not released")
	}
}

func TestMasterKeyIsAdmittedWithEmptyKeyID(t *testing.T) {
	r := newRig(t, mockConfig)
	resp, body := r.post(t, masterKey, hello)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if a := r.budget.lastAdmit(); a.KeyId != "" {
		t.Fatalf("master key admitted as %q", a.KeyId)
	}
	if ev := r.waitEvents(t, 1)[0]; ev.Identity.KeyId != "" {
		t.Fatalf("event identity %v", ev.Identity)
	}
}

// openAIUpstream answers chat completions like OpenAI, streamed or not, and
// records the bodies it got.
func openAIUpstream(t *testing.T, usage string) (*httptest.Server, chan map[string]any) {
	t.Helper()
	bodies := make(chan map[string]any, 10)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		bodies <- b
		if b["stream"] != true {
			fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","model":"gpt-4o-2024","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":%s}`, usage)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range []string{
			`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"o"}}]}`,
			`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"k"},"finish_reason":"stop"}]}`,
		} {
			fmt.Fprintf(w, "data: %s\n\n", c)
		}
		so, _ := b["stream_options"].(map[string]any)
		if so["include_usage"] == true {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":%s}\n\n", usage)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(s.Close)
	return s, bodies
}

func upstreamConfig(url string) string {
	return fmt.Sprintf(`
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: %q, api_key: sk-up}
    model_info: {id: up}
general_settings: {master_key: sk-master}
`, url)
}

const cachedUsage = `{"prompt_tokens":1000,"completion_tokens":300,"total_tokens":1300,"prompt_tokens_details":{"cached_tokens":800},"completion_tokens_details":{"reasoning_tokens":120}}`

func TestOpenAICachedAndReasoningTokensAreNormalized(t *testing.T) {
	up, _ := openAIUpstream(t, cachedUsage)
	r := newRig(t, upstreamConfig(up.URL))
	resp, body := r.post(t, userKey, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	tk := r.waitEvents(t, 1)[0].Tokens
	if tk.Input != 200 || tk.CacheRead != 800 || tk.Output != 180 || tk.Reasoning != 120 {
		t.Fatalf("tokens %v; want input 200, cache_read 800, output 180, reasoning 120", tk)
	}
	// gpt-4o is in the catalog: the cost header comes from its catalog prices.
	if resp.Header.Get("X-Litellm-Response-Cost") == "" {
		t.Fatal("no cost header for a catalog-priced model")
	}
}

func TestStreamHidesTheInjectedUsageChunkAndBillsIt(t *testing.T) {
	up, bodies := openAIUpstream(t, cachedUsage)
	r := newRig(t, upstreamConfig(up.URL))
	resp, body := r.post(t, userKey, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	so, _ := (<-bodies)["stream_options"].(map[string]any)
	if so["include_usage"] != true {
		t.Fatal("the gateway must ask the upstream for usage")
	}
	evs := sseEvents(body)
	if len(evs) != 3 || evs[2] != "[DONE]" || strings.Contains(string(body), `"usage"`) {
		t.Fatalf("client stream %q: want two chunks and [DONE], no usage chunk it did not ask for", evs)
	}
	e := r.waitEvents(t, 1)
	if len(e) != 1 || !e[0].Streamed || e[0].Tokens.Input != 200 || e[0].Tokens.CacheRead != 800 {
		t.Fatalf("events %v", e)
	}
	if resp.Trailer.Get("X-Litellm-Response-Cost") == "" {
		t.Fatalf("cost trailer missing: %v", resp.Trailer)
	}
	if resp.Header.Get("X-Litellm-Model-Id") != "up" {
		t.Fatal("model id header missing on a stream")
	}
}

func TestStreamForwardsUsageWhenTheClientAsked(t *testing.T) {
	up, _ := openAIUpstream(t, cachedUsage)
	r := newRig(t, upstreamConfig(up.URL))
	_, body := r.post(t, userKey, `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	evs := sseEvents(body)
	if len(evs) != 4 || !strings.Contains(evs[2], `"prompt_tokens":1000`) {
		t.Fatalf("client stream %q: want the usage chunk before [DONE]", evs)
	}
}

func TestAnthropicStreamIsBilledFromItsFinalUsage(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, d := range []string{
			`{"type":"message_start","message":{"id":"m","model":"claude-sonnet-4-5","usage":{"input_tokens":40,"cache_read_input_tokens":500,"cache_creation_input_tokens":60,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":60},"output_tokens":1}}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`,
			`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}`,
			`{"type":"message_stop"}`,
		} {
			fmt.Fprintf(w, "event: x\ndata: %s\n\n", d)
		}
	}))
	defer up.Close()
	r := newRig(t, fmt.Sprintf(`
model_list:
  - {model_name: claude, litellm_params: {model: anthropic/claude-sonnet-4-5, api_base: %q}, model_info: {id: c}}
`, up.URL))
	resp, body := r.post(t, userKey, `{"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"content":"Hi"`) || strings.Contains(string(body), `"usage"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	tk := r.waitEvents(t, 1)[0].Tokens
	if tk.Input != 40 || tk.CacheRead != 500 || tk.CacheCreation != 0 || tk.CacheCreation_1H != 60 || tk.Output != 9 {
		t.Fatalf("tokens %v", tk)
	}
}

func TestCrossGroupFallbackIsBilledToTheRequestedGroup(t *testing.T) {
	r := newRig(t, `
model_list:
  - {model_name: a, litellm_params: {model: openai/x, mock_response: "litellm.InternalServerError"}, model_info: {id: a1}}
  - {model_name: a, litellm_params: {model: openai/y, mock_response: {error: {status: 503, message: down}}}, model_info: {id: a2}}
  - {model_name: b, litellm_params: {model: openai/z, mock_response: "from b"}, model_info: {id: b1}}
router_settings: {fallbacks: [{a: [b]}]}
`)
	resp, body := r.post(t, userKey, `{"model":"a","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Litellm-Model-Id") != "b1" || resp.Header.Get("X-Litellm-Attempted-Fallbacks") != "1" || resp.Header.Get("X-Litellm-Attempted-Retries") != "1" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	ev := r.waitEvents(t, 1)[0]
	if ev.Route.ModelGroup != "a" || ev.Route.DeploymentId != "b1" {
		t.Fatalf("route %v: a per-model budget is keyed by the group the client asked for", ev.Route)
	}
}

func TestAdmissionFilterRoutesAroundExcludedDeployments(t *testing.T) {
	r := newRig(t, `
model_list:
  - {model_name: g, litellm_params: {model: openai/x, mock_response: "A", weight: 1000000}, model_info: {id: A}}
  - {model_name: g, litellm_params: {model: openai/y, mock_response: "B", weight: 1}, model_info: {id: B}}
`)
	r.budget.admitFn = func(req *budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error) {
		resp := admitAll(1, req)
		resp.GetAdmitted().AllowedDeploymentIds = []string{"B"}
		return resp, nil
	}
	for i := 0; i < 5; i++ {
		resp, _ := r.post(t, userKey, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`)
		if resp.Header.Get("X-Litellm-Model-Id") != "B" {
			t.Fatalf("served by %s; admission allowed only B", resp.Header.Get("X-Litellm-Model-Id"))
		}
	}
}

func TestErrorsHaveOpenAIShape(t *testing.T) {
	resetsAt := fixedNow.Add(90 * time.Second)
	for name, tc := range map[string]struct {
		config  string
		key     string
		body    string
		setup   func(*fakeBudget)
		status  int
		typ     string
		code    string
		msgHas  string
		release bool
	}{
		"no key":        {key: "", body: hello, status: 401, code: "invalid_api_key"},
		"unknown key":   {key: "sk-nope", body: hello, status: 401, code: "invalid_api_key"},
		"blocked key":   {body: hello, setup: func(f *fakeBudget) { f.keys[hash(userKey)].Blocked = true }, status: 401, msgHas: "blocked"},
		"expired key":   {body: hello, setup: func(f *fakeBudget) { f.keys[hash(userKey)].ExpiresAt = timestamppb.New(fixedNow.Add(-time.Hour)) }, status: 401, msgHas: "expired"},
		"model denied":  {body: hello, setup: func(f *fakeBudget) { f.keys[hash(userKey)].Models = []string{"claude"} }, status: 401, code: "model_not_allowed"},
		"bad json":      {body: `{"model":`, status: 400, typ: "invalid_request_error"},
		"no messages":   {body: `{"model":"gpt-4o"}`, status: 400, msgHas: "messages"},
		"unknown model": {body: `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, status: 404, code: "model_not_found"},
		"budget exceeded": {body: hello, setup: func(f *fakeBudget) {
			f.admitFn = func(*budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error) {
				return &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Denied{Denied: &budgetv1.Denial{
					Reason: budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED,
					Budget: &budgetv1.BudgetStatus{Scope: &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_TEAM, Id: "team-1"}, LimitNanos: 5_000_000_000, SpentNanos: 4_990_000_000, ResetsAt: timestamppb.New(resetsAt)},
				}}}, nil
			}
		}, status: 429, typ: "budget_exceeded", code: "budget_exceeded", msgHas: `team "team-1": spend 4.99 USD of limit 5 USD, resets at 2026-03-01T12:01:30Z`},
		"unpriced model": {body: hello, setup: func(f *fakeBudget) {
			f.admitFn = func(*budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error) {
				return &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Denied{Denied: &budgetv1.Denial{
					Reason: budgetv1.DenialReason_DENIAL_REASON_UNPRICED_MODEL, Message: "model x has no price; set input_cost_per_token"}}}, nil
			}
		}, status: 400, code: "unpriced_model", msgHas: "input_cost_per_token"},
		"budget down": {body: hello, setup: func(f *fakeBudget) {
			f.admitFn = func(*budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error) {
				return nil, &budget.Error{Kind: budget.KindUnavailable, Op: "admit", Err: errors.New("connection refused")}
			}
		}, status: 503, code: "budget_service_unavailable", msgHas: "budget service unavailable"},
		"auth down": {body: hello, setup: func(f *fakeBudget) {
			f.authErr = &budget.Error{Kind: budget.KindUnavailable, Op: "authenticate", Err: errors.New("unimplemented")}
		}, status: 503, code: "budget_service_unavailable"},
		"all upstreams fail": {config: `
model_list:
  - {model_name: gpt-4o, litellm_params: {model: openai/x, mock_response: "litellm.InternalServerError"}}
  - {model_name: gpt-4o, litellm_params: {model: openai/y, mock_response: "litellm.ServiceUnavailableError"}}
`, body: hello, status: 502, typ: "api_error", code: "upstream_error", msgHas: "after 2 attempt(s)", release: true},
		"upstream rate limit": {config: `
model_list: [{model_name: gpt-4o, litellm_params: {model: openai/x, mock_response: "litellm.RateLimitError"}}]
`, body: hello, status: 429, typ: "rate_limit_error", code: "rate_limit_exceeded", release: true},
		"upstream timeout": {config: `
model_list: [{model_name: gpt-4o, litellm_params: {model: openai/x, mock_response: "litellm.Timeout"}}]
`, body: hello, status: 504, code: "timeout", release: true},
		"context window": {config: `
model_list:
  - {model_name: gpt-4o, litellm_params: {model: openai/x, mock_response: "litellm.ContextWindowExceededError: prompt is too long"}}
  - {model_name: gpt-4o, litellm_params: {model: openai/y, mock_response: "fine"}}
`, body: hello, status: 400, code: "context_length_exceeded", msgHas: "prompt is too long", release: true},
		"upstream bad request": {config: `
model_list: [{model_name: gpt-4o, litellm_params: {model: openai/x, mock_response: {error: {status: 400, message: "temperature must be <= 2"}}}}]
`, body: hello, status: 400, msgHas: "temperature", release: true},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := tc.config
			if cfg == "" {
				cfg = mockConfig
			}
			r := newRig(t, cfg)
			if tc.setup != nil {
				tc.setup(r.budget)
			}
			key := tc.key
			if key == "" && name != "no key" {
				key = userKey
			}
			resp, body := r.post(t, key, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
			msg, typ, code := openAIError(t, body)
			if tc.typ != "" && typ != tc.typ || tc.code != "" && code != tc.code || !strings.Contains(msg, tc.msgHas) {
				t.Fatalf("error %s", body)
			}
			if name == "budget exceeded" && resp.Header.Get("Retry-After") != "90" {
				t.Fatalf("Retry-After %q; want the seconds until the window resets", resp.Header.Get("Retry-After"))
			}
			if got := len(r.budget.releasedIDs()); tc.release && got != 1 {
				t.Fatalf("released %d reservations; a failed request releases its own", got)
			}
			if len(r.pub.events()) != 0 {
				t.Fatal("a failed request publishes no usage")
			}
		})
	}
}

func TestContextWindowErrorDoesNotFailOverInTheGroup(t *testing.T) {
	r := newRig(t, `
model_list:
  - {model_name: g, litellm_params: {model: openai/x, mock_response: "litellm.ContextWindowExceededError", weight: 1000000}, model_info: {id: small}}
  - {model_name: g, litellm_params: {model: openai/y, mock_response: "fine", weight: 1}, model_info: {id: other}}
  - {model_name: big, litellm_params: {model: openai/z, mock_response: "big answer"}, model_info: {id: big}}
router_settings: {context_window_fallbacks: [{g: [big]}]}
`)
	resp, body := r.post(t, userKey, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Litellm-Model-Id") != "big" {
		t.Fatalf("%d served by %q (%s); want the context-window fallback, not the sibling", resp.StatusCode, resp.Header.Get("X-Litellm-Model-Id"), body)
	}
}

func TestReleaseOnClientDisconnect(t *testing.T) {
	got := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		got <- struct{}{}
		<-r.Context().Done()
	}))
	defer up.Close()
	r := newRig(t, upstreamConfig(up.URL))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-got; cancel() }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+userKey)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("want the client's cancellation")
	}
	eventually(t, "the reservation to be released", func() bool { return len(r.budget.releasedIDs()) == 1 })
	if len(r.pub.events()) != 0 {
		t.Fatal("no usage for an abandoned call")
	}
}

func TestReleaseOnClientDisconnectMidStream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer up.Close()
	r := newRig(t, upstreamConfig(up.URL))
	req, _ := http.NewRequest(http.MethodPost, r.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+userKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "first") {
		t.Fatalf("%q %v", line, err)
	}
	_ = resp.Body.Close() // the client walks away mid-stream
	eventually(t, "the reservation to be released", func() bool { return len(r.budget.releasedIDs()) == 1 })
	if len(r.pub.events()) != 0 {
		t.Fatal("no usage for an abandoned stream")
	}
}

func TestModelsAndHealth(t *testing.T) {
	r := newRig(t, mockConfig)
	get := func(path, key string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, r.url+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/models", userKey); code != 200 || !strings.Contains(body, `"id":"gpt-4o"`) || !strings.Contains(body, `"id":"claude"`) {
		t.Fatalf("%d %s", code, body)
	}
	r.budget.keys[hash(userKey)].Models = []string{"claude"}
	if _, body := get("/v1/models", userKey); strings.Contains(body, "gpt-4o") {
		t.Fatalf("a key restricted to claude sees %s", body)
	}
	if code, _ := get("/v1/models", ""); code != 401 {
		t.Fatalf("models without a key: %d", code)
	}
	if code, body := get("/health/liveliness", ""); code != 200 || !strings.Contains(body, "alive") {
		t.Fatalf("%d %s", code, body)
	}
	if code, _ := get("/health/readiness", ""); code != 200 {
		t.Fatalf("readiness %d", code)
	}
}
