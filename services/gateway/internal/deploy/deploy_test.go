package deploy

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func build(t *testing.T, y string) (*Set, []string) {
	t.Helper()
	cfg, err := config.Parse([]byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, w, err := Build(cfg, cat, http.DefaultClient, env(map[string]string{"OPENAI_API_KEY": "sk-env"}))
	if err != nil {
		t.Fatal(err)
	}
	return s, w
}

func TestBuildDeployments(t *testing.T) {
	s, warnings := build(t, `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, weight: 3, input_cost_per_token: "0.000002"}
    model_info: {id: primary, output_cost_per_token: 1e-05, unpriced: allow}
  - model_name: gpt-4o
    litellm_params: {model: hosted_vllm/meta/llama, api_base: "http://vllm:8000/v1", timeout: 2.5}
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-4-5}
  - model_name: vertex
    litellm_params: {model: vertex_ai/gemini-2.5-pro}
router_settings:
  model_group_alias: {gpt4: gpt-4o}
`)
	if len(s.Deployments) != 4 || len(s.Groups["gpt-4o"]) != 2 {
		t.Fatalf("deployments %d groups %v", len(s.Deployments), s.Groups)
	}
	p := s.Deployments[0]
	if p.ID() != "primary" || p.Provider != "openai" || p.BackendModel != "openai/gpt-4o" || !p.UnpricedAllowed {
		t.Fatalf("primary %+v", p)
	}
	if p.PriceOverrides["input_cost_per_token"] != "0.000002" || p.PriceOverrides["output_cost_per_token"] != "1e-05" || len(p.PriceOverrides) != 2 {
		t.Fatalf("overrides %v; want both fields, from litellm_params and model_info, as written", p.PriceOverrides)
	}
	if p.Candidate.DeploymentId != "primary" || p.Candidate.PriceOverrides["output_cost_per_token"] != "1e-05" {
		t.Fatalf("candidate %v", p.Candidate)
	}
	if o, ok := p.Transport.(*upstream.OpenAI); !ok || o.URL() != upstream.DefaultOpenAIBase+"/chat/completions" {
		t.Fatalf("openai transport %T", p.Transport)
	}
	v := s.Deployments[1]
	if !strings.HasPrefix(v.ID(), "dep-") || v.Provider != "hosted_vllm" || v.Timeout != 2500*time.Millisecond || v.APIBase != "http://vllm:8000/v1/chat/completions" {
		t.Fatalf("vllm %+v", v)
	}
	if _, ok := s.Deployments[2].Transport.(*upstream.Anthropic); !ok {
		t.Fatalf("anthropic transport %T", s.Deployments[2].Transport)
	}
	if _, ok := s.Deployments[3].Transport.(*upstream.Unsupported); !ok || len(warnings) != 1 || !strings.Contains(warnings[0], "vertex_ai") {
		t.Fatalf("vertex without api_base: %T, warnings %v", s.Deployments[3].Transport, warnings)
	}
	if g, ok := s.Lookup("gpt4"); !ok || g != "gpt-4o" {
		t.Fatal("alias not resolved")
	}
}

func TestGeneratedIDsAreStableAndDistinct(t *testing.T) {
	y := `
model_list:
  - {model_name: g, litellm_params: {model: openai/x, api_key: k1}}
  - {model_name: g, litellm_params: {model: openai/x, api_key: k2}}
  - {model_name: g, litellm_params: {model: openai/y}}
`
	a, _ := build(t, y)
	b, _ := build(t, strings.ReplaceAll(y, "k1", "rotated"))
	for i := range a.Deployments {
		if a.Deployments[i].ID() != b.Deployments[i].ID() {
			t.Fatalf("id %d changed across a key rotation: %s vs %s", i, a.Deployments[i].ID(), b.Deployments[i].ID())
		}
	}
	if a.Deployments[1].ID() != a.Deployments[0].ID()+"-2" || a.Deployments[2].ID() == a.Deployments[0].ID() {
		t.Fatalf("ids %s %s %s", a.Deployments[0].ID(), a.Deployments[1].ID(), a.Deployments[2].ID())
	}
}

func TestBuildRejects(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"duplicate id":      {"model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: {id: d}}, {model_name: b, litellm_params: {model: openai/y}, model_info: {id: d}}]", `"d" is already the id`},
		"conflicting price": {"model_list: [{model_name: a, litellm_params: {model: openai/x, input_cost_per_token: 1}, model_info: {input_cost_per_token: 2}}]", "disagree"},
		"bad price":         {"model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: {input_cost_per_token: -1}}]", "input_cost_per_token"},
		"bad mock":          {"model_list: [{model_name: a, litellm_params: {model: openai/x, mock_response: litellm.NopeError}}]", "unknown LiteLLM exception"},
		"bad mock status":   {"model_list: [{model_name: a, litellm_params: {model: openai/x, mock_response: {error: {status: 200}}}}]", "want 400-599"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tc.yaml), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Build(cfg, nil, http.DefaultClient, env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v; want %q", err, tc.want)
			}
		})
	}
}

func TestParseMockForms(t *testing.T) {
	for src, want := range map[string]struct {
		text   string
		status int
		cw     bool
		msg    string
	}{
		`"Hello!"`:                 {text: "Hello!"},
		`"litellm.RateLimitError"`: {status: 429, msg: "mock_response: litellm.RateLimitError"},
		`"litellm.ContextWindowExceededError: too long"`: {status: 400, cw: true, msg: "too long"},
		`{error: boom}`: {status: 500, msg: "boom"},
		`{error: {status: 429, message: slow down}}`:                 {status: 429, msg: "slow down"},
		`{error: {status_code: 400, code: context_length_exceeded}}`: {status: 400, cw: true},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte("v: "+src), &n); err != nil {
			t.Fatal(err)
		}
		m, err := ParseMock(n.Content[0].Content[1])
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if want.status == 0 {
			if m.Err != nil || m.Text != want.text {
				t.Fatalf("%s: %+v", src, m)
			}
			continue
		}
		if m.Err == nil || m.Err.Status != want.status || m.Err.ContextWindow != want.cw || (want.msg != "" && m.Err.Message != want.msg) {
			t.Fatalf("%s: %+v", src, m.Err)
		}
	}
}

func TestRouterSettingsDefaultsAndFallbacks(t *testing.T) {
	cfg, err := config.Parse([]byte(`
model_list:
  - {model_name: a, litellm_params: {model: openai/x}}
  - {model_name: b, litellm_params: {model: openai/y}}
router_settings:
  routing_strategy: latency-based-routing
  cooldown_time: 30
  fallbacks: [{a: [b, missing]}]
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := Build(cfg, nil, http.DefaultClient, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	rs, warnings, err := RouterSettings(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if !rs.WeightedFailover || rs.AllowedFails != 3 || rs.CooldownTime != 30*time.Second || rs.NumRetries != 0 {
		t.Fatalf("settings %+v", rs)
	}
	if len(rs.Fallbacks["a"]) != 1 || rs.Fallbacks["a"][0] != "b" || len(warnings) != 2 {
		t.Fatalf("fallbacks %v warnings %v", rs.Fallbacks, warnings)
	}
	cfg.RouterSettings.EnableWeightedFailover = new(bool)
	if rs, _, _ = RouterSettings(cfg, s); rs.WeightedFailover {
		t.Fatal("an explicit enable_weighted_failover: false must turn failover off")
	}
}

func entry(t *testing.T, y string) config.Deployment {
	t.Helper()
	cd, _, err := config.ParseDeployment([]byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	return cd
}

func TestSameEntryIgnoresOrderStyleAndEmptyValues(t *testing.T) {
	a := entry(t, `{"model_name": "m", "litellm_params": {"model": "openai/x", "input_cost_per_token": 0.000003, "weight": 2}}`)
	for _, same := range []string{
		"model_name: m\nlitellm_params: {weight: 2, model: openai/x, input_cost_per_token: '0.000003', api_base: null}\nmodel_info: {}",
		`{"litellm_params": {"model": "openai/x", "weight": 2, "input_cost_per_token": "0.000003", "tags": []}, "model_name": "m"}`,
	} {
		if !SameEntry(a, entry(t, same)) {
			t.Errorf("different: %s", same)
		}
	}
	for _, diff := range []string{
		`{"model_name": "m", "litellm_params": {"model": "openai/x", "input_cost_per_token": 0.000004, "weight": 2}}`,
		`{"model_name": "m", "litellm_params": {"model": "openai/x", "input_cost_per_token": 0.000003}}`,
		`{"model_name": "m", "litellm_params": {"model": "openai/x", "input_cost_per_token": 0.000003, "weight": 2, "output_cost_per_token": 0}}`,
	} {
		if SameEntry(a, entry(t, diff)) {
			t.Errorf("same: %s", diff)
		}
	}
}

func TestResolveAndWith(t *testing.T) {
	s, _ := build(t, `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
    model_info: {id: primary}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "http://b"}
router_settings:
  model_group_alias: {gpt4: gpt-4o}
`)
	// The config's second entry, registered again: a no-op.
	id, existing, err := s.Resolve(entry(t, `{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_base": "http://b"}}`))
	if err != nil || existing != s.Deployments[1] || id != s.Deployments[1].ID() {
		t.Fatalf("resolve %q %v %v", id, existing, err)
	}
	// Same backend, different entry: the next generated id.
	id, existing, err = s.Resolve(entry(t, `{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_base": "http://b", "weight": 9}}`))
	if err != nil || existing != nil || id != s.Deployments[1].ID()+"-2" {
		t.Fatalf("resolve %q %v %v", id, existing, err)
	}
	var ce *ConflictError
	if _, _, err := s.Resolve(entry(t, `{"model_name": "x", "litellm_params": {"model": "openai/x"}, "model_info": {"id": "primary"}}`)); !errors.As(err, &ce) {
		t.Fatalf("explicit id taken: %v", err)
	}

	b := NewBuilder(&config.Config{}, nil, http.DefaultClient, env(nil))
	d, _, err := b.Deployment("model", len(s.Deployments), "new", entry(t, `{"model_name": "claude", "litellm_params": {"model": "anthropic/claude"}}`))
	if err != nil {
		t.Fatal(err)
	}
	n := s.With(d)
	if len(s.Deployments) != 2 || len(n.Deployments) != 3 || n.Deployments[0] != s.Deployments[0] || len(n.Groups["claude"]) != 1 {
		t.Fatalf("with: old %d new %d groups %v", len(s.Deployments), len(n.Deployments), n.Groups)
	}
	if g, ok := n.Lookup("gpt4"); !ok || g != "gpt-4o" || !slices.Contains(n.GroupNames, "gpt4") || !slices.Contains(n.GroupNames, "claude") {
		t.Fatalf("aliases and names %v", n.GroupNames)
	}
	// Replacing keeps the index and the group's order.
	r, _, err := b.Deployment("model", 0, "primary", entry(t, `{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "weight": 3}}`))
	if err != nil {
		t.Fatal(err)
	}
	n2 := n.With(r)
	if len(n2.Deployments) != 3 || n2.Groups["gpt-4o"][0] != r || n.Groups["gpt-4o"][0] == r {
		t.Fatalf("replace: %v", n2.Groups["gpt-4o"])
	}
}
