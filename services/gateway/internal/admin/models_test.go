package admin

import (
	"io"
	"log/slog"
	"maps"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/router"
	"github.com/spendledger/spendledger/services/gateway/internal/server"
	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

const baseConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, mock_response: "hi", input_cost_per_token: "0.0000025"}
    model_info: {id: gpt-4o-primary}
general_settings:
  master_key: sk-master-key-for-tests
`

func newLive(t *testing.T) *server.Live {
	t.Helper()
	env := func(string) string { return "" }
	cfg, err := config.Parse([]byte(baseConfig), env)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	set, _, err := deploy.Build(cfg, cat, upstream.NewHTTPClient(), env)
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := deploy.RouterSettings(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Config{Set: set, Router: router.New(set.RouterDeployments(), rs), Metrics: server.NewMetrics(prometheus.NewRegistry()),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MasterKey: masterKey})
	return server.NewLive(s, deploy.NewBuilder(cfg, cat, upstream.NewHTTPClient(), env))
}

const claudeEntry = `{"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "mock_response": "hello",
	"input_cost_per_token": 0.000003, "max_budget": "50", "budget_duration": "1d", "api_key": "sk-ant-secret"}}`

// TestModelNewTwiceIsANoOp is LiteLLM's bug 002 as a test: registering the
// same deployment again changes nothing — not its prices (no synthesized
// zeros for the fields it leaves to the catalog), not the deployment serving.
func TestModelNewTwiceIsANoOp(t *testing.T) {
	live := newLive(t)
	r := newRig(t, func(c *Config) { c.Models = live })
	m := decode(t, r.ok("POST", "/model/new", masterKey, claudeEntry))
	id, _ := m["model_id"].(string)
	if id == "" || m["created"] != true || m["changed"] != true || m["model_name"] != "claude" {
		t.Fatalf("first registration %v", m)
	}
	if at(m, "litellm_params.api_key") != "<redacted>" || num(m, "litellm_params.input_cost_per_token") != "0.000003" || at(m, "model_info.id") != id {
		t.Fatalf("answer shape %v", m)
	}
	first := live.Current()
	d := first.Set.ByID(id)
	if d == nil || !first.Router.HasGroup("claude") {
		t.Fatal("the new deployment does not serve")
	}
	wantPrices := map[string]string{"input_cost_per_token": "0.000003"}
	if !maps.Equal(d.PriceOverrides, wantPrices) || !maps.Equal(d.Candidate.PriceOverrides, wantPrices) {
		t.Fatalf("prices %v / %v; want only what the entry set", d.PriceOverrides, d.Candidate.PriceOverrides)
	}
	dep := r.budget.budgetsOn(kindDeployment, id)
	if len(dep) != 1 || dep[0].GetLimitNanos() != 50_000_000_000 || dep[0].GetSpec().GetDuration() != "1d" {
		t.Fatalf("deployment budget %v", dep)
	}
	sets := r.budget.count("SetBudget")

	m = decode(t, r.ok("POST", "/model/new", masterKey, claudeEntry))
	if m["model_id"] != id || m["changed"] != false || m["created"] != false {
		t.Fatalf("second registration %v", m)
	}
	if live.Current() != first || first.Set.ByID(id) != d {
		t.Fatal("registering the same entry again rebuilt the deployments")
	}
	if !maps.Equal(d.Candidate.PriceOverrides, wantPrices) {
		t.Fatalf("prices after re-registration %v", d.Candidate.PriceOverrides)
	}
	if r.budget.count("SetBudget") != sets {
		t.Fatal("a no-op registration wrote a budget")
	}

	// The same entry in another key order and number style is still the same.
	same := `{"litellm_params": {"budget_duration": "1d", "max_budget": 50, "api_key": "sk-ant-secret", "input_cost_per_token": "0.000003",
		"mock_response": "hello", "model": "anthropic/claude-sonnet-4-5"}, "model_name": "claude", "model_info": {}}`
	if m = decode(t, r.ok("POST", "/model/new", masterKey, same)); m["changed"] != false {
		t.Fatalf("reordered entry %v", m)
	}
	// A different entry for the same backend is a second deployment.
	other := `{"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "mock_response": "other"}}`
	m = decode(t, r.ok("POST", "/model/new", masterKey, other))
	if m["model_id"] == id || m["created"] != true || len(live.Current().Set.Groups["claude"]) != 2 {
		t.Fatalf("second deployment %v", m)
	}
}

func TestModelNewExplicitIDConflict(t *testing.T) {
	live := newLive(t)
	r := newRig(t, func(c *Config) { c.Models = live })
	st, b := r.do("POST", "/model/new", masterKey, `{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o-mini", "mock_response": "x"},
		"model_info": {"id": "gpt-4o-primary"}}`)
	if _, code := errType(t, b); st != http.StatusConflict || code != "already_exists" {
		t.Fatalf("%d %s", st, b)
	}
	for _, body := range []string{`{"model_name": "x"}`, `[1]`, `{"model_name": "x", "litellm_params": {"model": "openai/x", "max_budget": "1e-12"}}`} {
		if st, b := r.do("POST", "/model/new", masterKey, body); st != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, st, b)
		}
	}
	if len(live.Current().Set.Deployments) != 1 {
		t.Fatal("a refused entry was registered")
	}
}

func TestModelUpdateMergesWithoutSynthesizingPrices(t *testing.T) {
	live := newLive(t)
	r := newRig(t, func(c *Config) { c.Models = live })
	before := live.Current().Set.ByID("gpt-4o-primary")
	m := decode(t, r.ok("POST", "/model/update", masterKey, `{"model_info": {"id": "gpt-4o-primary"}, "litellm_params": {"weight": 5, "output_cost_per_token": null}}`))
	if m["changed"] != true || m["created"] != false || num(m, "litellm_params.weight") != "5" {
		t.Fatalf("answer %v", m)
	}
	d := live.Current().Set.ByID("gpt-4o-primary")
	if d == before || d.R.Weight == nil || *d.R.Weight != 5 || d.R.Index != before.R.Index {
		t.Fatalf("deployment %+v", d.R)
	}
	want := map[string]string{"input_cost_per_token": "0.0000025"}
	if !maps.Equal(d.PriceOverrides, want) {
		t.Fatalf("prices %v; an update must keep what was set and leave the rest unset", d.PriceOverrides)
	}
	if before.R.Weight != nil {
		t.Fatal("the update changed the old deployment in place")
	}
	// The same update again changes nothing.
	m = decode(t, r.ok("POST", "/model/update", masterKey, `{"model_id": "gpt-4o-primary", "litellm_params": {"weight": 5}}`))
	if m["changed"] != false || live.Current().Set.ByID("gpt-4o-primary") != d {
		t.Fatalf("repeat update %v", m)
	}
	if st, _ := r.do("POST", "/model/update", masterKey, `{"model_info": {"id": "nope"}}`); st != http.StatusNotFound {
		t.Fatalf("unknown id: %d", st)
	}
	if st, _ := r.do("POST", "/model/update", masterKey, `{"litellm_params": {"weight": 1}}`); st != http.StatusBadRequest {
		t.Fatalf("no id: %d", st)
	}
}

func TestModelEndpointsDisabledWithoutRegistry(t *testing.T) {
	r := newRig(t, nil)
	if st, _ := r.do("POST", "/model/new", masterKey, claudeEntry); st != http.StatusNotImplemented {
		t.Fatalf("%d", st)
	}
}

// TestModelInfoShowsEntriesAndResolvedPrices: config and runtime deployments,
// the price the entry set kept as written, the catalog's filled in exactly,
// a literal api_key redacted, and a price nobody set left absent.
func TestModelInfoShowsEntriesAndResolvedPrices(t *testing.T) {
	live := newLive(t)
	r := newRig(t, func(c *Config) { c.Models = live })
	r.ok("POST", "/model/new", masterKey, claudeEntry)
	r.ok("POST", "/model/new", masterKey, `{"model_name": "house", "litellm_params": {"model": "openai/house-model-v0", "mock_response": "x"},
		"model_info": {"id": "house-1"}}`)

	m := decode(t, r.ok("GET", "/model/info", masterKey, ""))
	data, _ := m["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("%d deployments; want 3: %v", len(data), m)
	}
	gpt := data[0].(map[string]any)
	if gpt["model_name"] != "gpt-4o" || at(gpt, "model_info.id") != "gpt-4o-primary" || at(gpt, "model_info.key") != "gpt-4o" ||
		at(gpt, "litellm_params.input_cost_per_token") != "0.0000025" || num(gpt, "model_info.input_cost_per_token") != "0.0000025" ||
		num(gpt, "model_info.output_cost_per_token") != "0.00001" {
		t.Fatalf("gpt-4o: %v", gpt)
	}
	claude := data[1].(map[string]any)
	if at(claude, "litellm_params.api_key") != "<redacted>" || at(claude, "model_info.key") == nil {
		t.Fatalf("claude: %v", claude)
	}
	house := data[2].(map[string]any)
	if _, ok := at(house, "model_info").(map[string]any)["input_cost_per_token"]; ok {
		t.Fatalf("an unpriced model shows a price: %v", house)
	}

	one := decode(t, r.ok("GET", "/v1/model/info?litellm_model_id=house-1", masterKey, ""))
	if d, _ := one["data"].([]any); len(d) != 1 || at(d[0].(map[string]any), "model_name") != "house" {
		t.Fatalf("by id: %v", one)
	}
	if st, _ := r.do("GET", "/model/info?litellm_model_id=nope", masterKey, ""); st != http.StatusNotFound {
		t.Fatalf("unknown id: %d", st)
	}
}
