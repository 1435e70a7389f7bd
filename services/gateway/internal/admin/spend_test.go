package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

func entry(i int, key string, nanos int64) *ledgerv1.Entry {
	at := fixedNow.Add(-time.Duration(i) * time.Minute)
	return &ledgerv1.Entry{
		EventId: fmt.Sprintf("ev-%d", i), RecordedAt: timestamppb.New(at.Add(time.Second)),
		Cost: &eventsv1.CostComputed{
			TotalNanos: nanos, Status: eventsv1.PricingStatus_PRICING_STATUS_PRICED, CatalogVersion: "cat-1", ResolvedEntry: "gpt-4o",
			Components: []*eventsv1.CostComponent{{Name: "input", Tokens: 10, UnitPrice: "0.0000025", Source: eventsv1.PriceSource_PRICE_SOURCE_CATALOG, CostNanos: 25_000}},
			Usage: &eventsv1.UsageRecorded{
				EventId: fmt.Sprintf("ev-%d", i), RequestId: fmt.Sprintf("req-%d", i),
				Identity:   &eventsv1.Identity{KeyId: key, TeamId: "t-1", UserId: "u-1", EndUserId: "cust", Tags: []string{"prod"}},
				Route:      &eventsv1.Route{ModelGroup: "gpt-4o", DeploymentId: "gpt-4o-primary", Provider: "openai", BackendModel: "openai/gpt-4o"},
				Tokens:     &eventsv1.TokenCounts{Input: 10, CacheRead: 5, Output: 7, Reasoning: 3},
				OccurredAt: timestamppb.New(at), CompletedAt: timestamppb.New(at.Add(2 * time.Second)),
			},
		},
	}
}

func TestSpendLogsRowsFromTheLedger(t *testing.T) {
	r := newRig(t, nil)
	for i := range 5 {
		r.ledger.entries = append(r.ledger.entries, entry(i, "key-user", int64(i)*1_000_000_001))
	}
	r.ledger.entries = append(r.ledger.entries, entry(9, "key-other", 1))
	body := r.ok("GET", "/spend/logs?api_key="+userKey+"&start_date=2026-02-01&end_date=2026-03-01", masterKey, "")
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows", len(rows))
	}
	row := rows[1]
	if row["request_id"] != "req-1" || row["api_key"] != "key-user" || num(row, "spend") != "1.000000001" ||
		num(row, "prompt_tokens") != "15" || num(row, "completion_tokens") != "10" || num(row, "total_tokens") != "25" ||
		row["model_group"] != "gpt-4o" || row["model_id"] != "gpt-4o-primary" || row["model"] != "openai/gpt-4o" ||
		row["user"] != "u-1" || row["end_user"] != "cust" || row["team_id"] != "t-1" || row["startTime"] != "2026-03-01T11:59:00Z" ||
		at(row, "metadata.event_id") != "ev-1" || at(row, "metadata.pricing_status") != "priced" {
		t.Fatalf("row %v", row)
	}
	rng := r.ledger.pages[0].GetRange()
	if !rng.GetStart().AsTime().Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) || !rng.GetEnd().AsTime().Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("range %v; a date-only end_date includes its day", rng)
	}

	// limit pages through the ledger; request_id keeps one request.
	r.ledger.pages = nil
	body = r.ok("GET", "/spend/logs?api_key=key-user&limit=3", masterKey, "")
	if n := strings.Count(body, `"request_id"`); n != 3 {
		t.Fatalf("%d rows with limit=3", n)
	}
	body = r.ok("GET", "/spend/logs?api_key=key-user&request_id=req-4", masterKey, "")
	if n := strings.Count(body, `"request_id"`); n != 1 || !strings.Contains(body, `"spend":4.000000004`) {
		t.Fatalf("request_id filter: %s", body)
	}
	for _, q := range []string{"", "?api_key=key-user&start_date=yesterday", "?api_key=key-user&limit=0"} {
		if st, _ := r.do("GET", "/spend/logs"+q, masterKey, ""); st != http.StatusBadRequest {
			t.Errorf("%q: %d", q, st)
		}
	}
}

func TestProviderBudgetsAndConfigSync(t *testing.T) {
	cfg, err := config.Parse([]byte(`
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, mock_response: "hi", max_budget: 3, budget_duration: 1d}
    model_info: {id: gpt-4o-primary}
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-4-5, mock_response: "hi"}
router_settings:
  provider_budget_config:
    openai: {budget_limit: 100, time_period: 1d}
    anthropic: {max_budget: "0.5", budget_duration: 7d}
litellm_settings:
  tag_budget_config:
    prod: {max_budget: 10, budget_duration: 1mo}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	set, _, err := deploy.Build(cfg, nil, upstream.NewHTTPClient(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	budgets, err := ConfigBudgets(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range budgets {
		got = append(got, fmt.Sprintf("%v/%s %s %s", b.Scope.GetKind(), b.Scope.GetId(), b.Limit, b.Duration))
	}
	want := "SCOPE_KIND_PROVIDER/anthropic 0.5 7d,SCOPE_KIND_PROVIDER/openai 100 1d,SCOPE_KIND_TAG/prod 10 1mo,SCOPE_KIND_DEPLOYMENT/gpt-4o-primary 3 1d"
	if strings.Join(got, ",") != want {
		t.Fatalf("config budgets\n%s\nwant\n%s", strings.Join(got, ","), want)
	}

	r := newRig(t, func(c *Config) { c.Providers = ProviderBudgets(budgets) })
	// Before the sync, /provider/budgets shows the config, not synced.
	m := decode(t, r.ok("GET", "/provider/budgets", masterKey, ""))
	if at(m, "providers.openai.synced") != false || num(m, "providers.openai.budget_limit") != "100" || at(m, "providers.openai.spend") != nil {
		t.Fatalf("before sync %v", m)
	}

	s := NewSyncer(r.h, budgets)
	if s.Ready(context.Background()) == nil {
		t.Fatal("ready before the config budgets are in force")
	}
	r.budget.fail["SetBudget"] = fmt.Errorf("budget service down")
	if err := s.Sync(context.Background()); err == nil || !strings.Contains(s.Ready(context.Background()).Error(), "budget service down") {
		t.Fatalf("sync %v; ready %v", err, s.Ready(context.Background()))
	}
	delete(r.budget.fail, "SetBudget")
	if err := s.Sync(context.Background()); err != nil || s.Ready(context.Background()) != nil {
		t.Fatalf("sync %v", err)
	}
	// Syncing again (another instance, a restart) adds nothing.
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(r.budget.budgets); n != 4 {
		t.Fatalf("%d budgets after two syncs; want 4", n)
	}
	// A changed time_period moves the provider's budget; it does not add one.
	moved := []ConfigBudget{{Path: "p", Scope: scopeOf(kindProvider, "openai", ""), Limit: money.Nanos(100 * money.PerDollar), Duration: "7d"}}
	if err := NewSyncer(r.h, moved).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := r.budget.budgetsOn(kindProvider, "openai"); len(b) != 1 || b[0].GetSpec().GetDuration() != "7d" {
		t.Fatalf("provider budgets %v", b)
	}

	r.ledger.spend["SCOPE_KIND_PROVIDER/anthropic"] = 250_000_000
	m = decode(t, r.ok("GET", "/provider/budgets", masterKey, ""))
	if at(m, "providers.anthropic.synced") != true || num(m, "providers.anthropic.budget_limit") != "0.5" ||
		num(m, "providers.anthropic.spend") != "0.25" || at(m, "providers.anthropic.time_period") != "7d" ||
		at(m, "providers.anthropic.budget_reset_at") != "2026-03-08T11:00:00Z" {
		t.Fatalf("provider budgets %v", m)
	}
}

func TestConfigBudgetsRefuseWhatTheBudgetServiceWould(t *testing.T) {
	for name, y := range map[string]string{
		"sub-nano":       `router_settings: {provider_budget_config: {openai: {budget_limit: 0.0000000001, time_period: 1d}}}`,
		"no limit":       `router_settings: {provider_budget_config: {openai: {time_period: 1d}}}`,
		"bad duration":   `litellm_settings: {tag_budget_config: {prod: {max_budget: 1, budget_duration: 1 day}}}`,
		"disagree":       `router_settings: {provider_budget_config: {openai: {budget_limit: 1, max_budget: 2}}}`,
		"duration alone": `model_list: [{model_name: a, litellm_params: {model: openai/a, budget_duration: 1d}}]`,
	} {
		if !strings.Contains(y, "model_list") {
			y = "model_list: [{model_name: a, litellm_params: {model: openai/a}}]\n" + y
		}
		cfg, err := config.Parse([]byte(y), func(string) string { return "" })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		set, _, err := deploy.Build(cfg, nil, upstream.NewHTTPClient(), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ConfigBudgets(cfg, set); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
