package admission_test

import (
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/scope"
)

// Test001ModelMaxBudgetIsEnforced is reference 001 (LiteLLM PR 25549):
// model_max_budget tracked spend under the deployment's model name
// ("vertex_ai/claude-opus-4-6@default") and enforced it under the model
// group ("claude-opus-4-6"), so it never denied. Here the key×model-group
// budget's counter is named from the model group alone, admission returns
// it, the cost lands on it (Apply onto the returned keys, as the ledger
// does), and the budget denies once spend passes the limit.
func Test001ModelMaxBudgetIsEnforced(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	createKey(t, in.client, "k-001", "")
	setBudget(t, in.client, &budgetv1.BudgetSpec{
		Scope:    scopeOf(eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, "k-001", "claude-opus-4-6"),
		LimitUsd: "1.00", Duration: "1d",
	})
	// Estimate, vertex_ai/claude-opus-4-6 (the catalog entry "@default"
	// resolves to): input side max(input 5e-6, cache read 5e-7, cache
	// write 6.25e-6, 1h cache write 1e-5) = 10,000 nanos/token; output
	// 2.5e-5 = 25,000 nanos/token. 1,000 + 1,000 tokens: 10,000,000 +
	// 25,000,000 = 35,000,000 nanos ($0.035).
	const est = 1_000*10_000 + 1_000*25_000
	req := func(id string) *budgetv1.AdmitRequest {
		return &budgetv1.AdmitRequest{RequestId: id, KeyId: "k-001", ModelGroup: "claude-opus-4-6",
			Candidates:   []*budgetv1.Candidate{{DeploymentId: "vertex-east", Provider: "vertex_ai", BackendModel: "vertex_ai/claude-opus-4-6@default"}},
			PromptTokens: 1_000, MaxTokens: 1_000}
	}
	a := admitted(t, admit(t, in.client, req("r1")))
	if a.ReservedNanos != est || len(a.CounterKeys) != 1 {
		t.Fatalf("admission: %v", a)
	}
	s, _, _, err := scope.ParseCounterKey(a.CounterKeys[0])
	if err != nil || s != (scope.Scope{Kind: scope.KindKeyModel, ID: "k-001", ModelGroup: "claude-opus-4-6"}) {
		t.Fatalf("counter %s is scope %v (%v); want key_model k-001 claude-opus-4-6", a.CounterKeys[0], s, err)
	}
	if strings.Contains(a.CounterKeys[0], "vertex") || strings.Contains(a.CounterKeys[0], "@default") {
		t.Fatalf("counter key built from the backend model: %s", a.CounterKeys[0])
	}
	e.settle(a, "vertex-east", 600_000_000) // a $0.60 response
	a = admitted(t, admit(t, in.client, req("r2")))
	e.settle(a, "vertex-east", 390_000_000) // $0.39: $0.99 spent
	e.wantState(a.CounterKeys[0], 990_000_000, 0)
	// 990,000,000 + 35,000,000 > 1,000,000,000.
	d := denied(t, admit(t, in.client, req("r3")), budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
	if d.Budget.SpentNanos != 990_000_000 || d.Budget.LimitNanos != usd || d.Budget.Scope.Kind != eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL ||
		d.Budget.Scope.ModelGroup != "claude-opus-4-6" || !strings.Contains(d.Message, `model group "claude-opus-4-6"`) {
		t.Fatalf("denial: %v", d)
	}
	// /key/info shows the spend admission enforces (LiteLLM's showed {}).
	k := harness.OK[budgetv1.GetKeyResponse](t, "get key")(in.client.GetKey(harness.Context(t), connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: "k-001"})))
	if len(k.Budgets) != 1 || k.Budgets[0].SpentNanos != 990_000_000 || k.Budgets[0].RemainingNanos != 10_000_000 {
		t.Fatalf("key info: %v", k.Budgets)
	}
	// Another model group on the same key is not limited by it.
	other := req("r4")
	other.ModelGroup = "gpt-4o"
	other.Candidates = []*budgetv1.Candidate{gpt4o("d1")}
	if a := admitted(t, admit(t, in.client, other)); len(a.CounterKeys) != 0 {
		t.Fatalf("gpt-4o charged %v", a.CounterKeys)
	}
}

// Test002UnknownPriceIsNotFree is reference 002 (LiteLLM issue 30198):
// an unknown price became a zero that switched every budget check off.
// Here a candidate with no price anywhere is denied under any budget with a
// message saying how to price it; an explicit "0" price, or the operator's
// unpriced opt-in, admits it; with no budget at all it is admitted.
func Test002UnknownPriceIsNotFree(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	createKey(t, in.client, "k-002", "", &budgetv1.BudgetSpec{LimitUsd: "5", Duration: "1d"})
	createKey(t, in.client, "k-002-team", "team-002")
	setBudget(t, in.client, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "team-002", ""), LimitUsd: "5"})
	createKey(t, in.client, "k-002-free", "")
	unpriced := func(id, key string) *budgetv1.AdmitRequest {
		return &budgetv1.AdmitRequest{RequestId: id, KeyId: key, ModelGroup: "house-model",
			Candidates:   []*budgetv1.Candidate{{DeploymentId: "house-1", Provider: "openai", BackendModel: "my-house-model-7b"}},
			PromptTokens: 1_000, MaxTokens: 1_000}
	}
	for _, key := range []string{"k-002", "k-002-team"} {
		d := denied(t, admit(t, in.client, unpriced("u-"+key, key)), budgetv1.DenialReason_DENIAL_REASON_UNPRICED_MODEL)
		for _, want := range []string{"house-model", "my-house-model-7b", "unknown is not free", "input_cost_per_token", "output_cost_per_token", "unpriced: allow"} {
			if !strings.Contains(d.Message, want) {
				t.Fatalf("%s: message does not mention %q: %s", key, want, d.Message)
			}
		}
	}
	// Explicit zero prices: free, so admitted with nothing reserved.
	r := unpriced("zero", "k-002")
	r.Candidates[0].PriceOverrides = map[string]string{"input_cost_per_token": "0", "output_cost_per_token": "0"}
	a := admitted(t, admit(t, in.client, r))
	if a.ReservedNanos != 0 || a.ReservationId != "" || len(a.CounterKeys) != 1 || a.Budgets[0].LimitNanos != 5*usd {
		t.Fatalf("zero-priced: %v", a)
	}
	e.wantState(a.CounterKeys[0], 0, 0)
	// A partial override does not make it priced: output is still unknown.
	r = unpriced("half", "k-002")
	r.Candidates[0].PriceOverrides = map[string]string{"input_cost_per_token": "0"}
	if d := denied(t, admit(t, in.client, r), budgetv1.DenialReason_DENIAL_REASON_UNPRICED_MODEL); !strings.Contains(d.Message, "output") {
		t.Fatalf("half-priced: %s", d.Message)
	}
	// The operator's opt-in: admitted, its unknown parts estimated at nothing.
	r = unpriced("optin", "k-002")
	r.Candidates[0].UnpricedAllowed = true
	a = admitted(t, admit(t, in.client, r))
	if a.ReservedNanos != 0 || len(a.AllowedDeploymentIds) != 1 {
		t.Fatalf("opted in: %v", a)
	}
	// No budget anywhere: nothing to enforce, admitted.
	a = admitted(t, admit(t, in.client, unpriced("free", "k-002-free")))
	if len(a.CounterKeys) != 0 || a.ReservationId != "" {
		t.Fatalf("unbudgeted: %v", a)
	}
	// Unbudgeted itself, beside a candidate whose deployment has a budget:
	// the other's budget does not make this one's cost matter.
	setBudget(t, in.client, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_DEPLOYMENT, "d1", ""), LimitUsd: "1", Duration: "1d"})
	r = unpriced("free-beside", "k-002-free")
	r.Candidates = append(r.Candidates, gpt4o("d1"))
	a = admitted(t, admit(t, in.client, r))
	if fmt.Sprint(a.AllowedDeploymentIds) != "[house-1 d1]" || len(a.CounterKeys) != 0 || len(a.CandidateCounters[1].CounterKeys) != 1 {
		t.Fatalf("unbudgeted beside budgeted: %v", a)
	}
	// A priced candidate beside an unpriced one under a budget: only the
	// priced one is allowed, and its estimate reserved.
	r = unpriced("mixed", "k-002")
	r.Candidates = append(r.Candidates, gpt4o("d1"))
	a = admitted(t, admit(t, in.client, r))
	if len(a.AllowedDeploymentIds) != 1 || a.AllowedDeploymentIds[0] != "d1" || a.ReservedNanos != est1k1k {
		t.Fatalf("mixed: %v", a)
	}
}

// TestProviderAndDeploymentBudgetsFilterCandidates is reference 004: a
// provider or deployment budget removes the deployments it covers from the
// candidates; when none is left the request is denied NO_CANDIDATE naming
// the budget.
func TestProviderAndDeploymentBudgetsFilterCandidates(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	createKey(t, in.client, "k-004", "", &budgetv1.BudgetSpec{LimitUsd: "100", Duration: "1d"})
	setBudget(t, in.client, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_DEPLOYMENT, "oai-1", ""), LimitUsd: "0.5", Duration: "1d"})
	setBudget(t, in.client, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_PROVIDER, "azure", ""), LimitUsd: "0.3", Duration: "1d"})
	req := func(id string) *budgetv1.AdmitRequest {
		return &budgetv1.AdmitRequest{RequestId: id, KeyId: "k-004", ModelGroup: "gpt-4o", PromptTokens: 1_000, MaxTokens: 1_000,
			Candidates: []*budgetv1.Candidate{
				gpt4o("oai-1"),
				{DeploymentId: "az-1", Provider: "azure", BackendModel: "azure/gpt-4o"},
			}}
	}
	a := admitted(t, admit(t, in.client, req("f1")))
	if fmt.Sprint(a.AllowedDeploymentIds) != "[oai-1 az-1]" || len(a.CandidateCounters) != 2 ||
		len(a.CandidateCounters[0].CounterKeys) != 1 || len(a.CandidateCounters[1].CounterKeys) != 1 {
		t.Fatalf("both allowed: %v", a)
	}
	dep, prov := a.CandidateCounters[0].CounterKeys[0], a.CandidateCounters[1].CounterKeys[0]
	// oai-1 served it at $0.49: 490,000,000 + 12,500,000 > 500,000,000.
	e.settle(a, "oai-1", 490_000_000)
	e.wantState(dep, 490_000_000, 0)
	a = admitted(t, admit(t, in.client, req("f2")))
	if fmt.Sprint(a.AllowedDeploymentIds) != "[az-1]" || len(a.CandidateCounters) != 1 {
		t.Fatalf("oai-1 excluded: %v", a)
	}
	// az-1 served it at $0.29: azure is then excluded too.
	e.settle(a, "az-1", 290_000_000)
	e.wantState(prov, 290_000_000, 0)
	d := denied(t, admit(t, in.client, req("f3")), budgetv1.DenialReason_DENIAL_REASON_NO_CANDIDATE)
	if d.Budget.Scope.Kind != eventsv1.ScopeKind_SCOPE_KIND_DEPLOYMENT || d.Budget.SpentNanos != 490_000_000 || d.Budget.LimitNanos != 500_000_000 {
		t.Fatalf("denial: %v", d)
	}
	// Nothing was reserved for the denied request, on the key either.
	// (Once the lease f2 came from has closed and given its rest back.)
	harness.Eventually(t, 5*leaseMaxAge, "key info", func() (bool, string) {
		k := harness.OK[budgetv1.GetKeyResponse](t, "get key")(in.client.GetKey(harness.Context(t), connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: "k-004"})))
		return k.Budgets[0].ReservedNanos == 0 && k.Budgets[0].SpentNanos == 780_000_000, k.Budgets[0].String()
	})
}

// TestRequestsRefused: every malformed AdmitRequest is InvalidArgument; an
// unknown key NotFound; a blocked key (or one whose team is blocked)
// PermissionDenied; a key with a models allow-list calling another group
// PermissionDenied. None of them reserves anything.
func TestRequestsRefused(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	createKey(t, in.client, "k-ok", "team-ok", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
	good := func() *budgetv1.AdmitRequest { return admitReq("r", "k-ok", 10, 10) }
	long := strings.Repeat("x", 257)
	for name, mutate := range map[string]func(*budgetv1.AdmitRequest){
		"no request id":            func(m *budgetv1.AdmitRequest) { m.RequestId = "" },
		"request id too long":      func(m *budgetv1.AdmitRequest) { m.RequestId = long },
		"no model group":           func(m *budgetv1.AdmitRequest) { m.ModelGroup = "" },
		"model group too long":     func(m *budgetv1.AdmitRequest) { m.ModelGroup = long },
		"model group padded":       func(m *budgetv1.AdmitRequest) { m.ModelGroup = "gpt-4o " },
		"model group control char": func(m *budgetv1.AdmitRequest) { m.ModelGroup = "gpt\n4o" },
		"key id control char":      func(m *budgetv1.AdmitRequest) { m.KeyId = "k\tok" },
		"no candidates":            func(m *budgetv1.AdmitRequest) { m.Candidates = nil },
		"negative prompt":          func(m *budgetv1.AdmitRequest) { m.PromptTokens = -1 },
		"negative max tokens":      func(m *budgetv1.AdmitRequest) { m.MaxTokens = -1 },
		"candidate without id":     func(m *budgetv1.AdmitRequest) { m.Candidates[0].DeploymentId = "" },
		"candidate without provider": func(m *budgetv1.AdmitRequest) {
			m.Candidates[0].Provider = ""
		},
		"candidate without model": func(m *budgetv1.AdmitRequest) { m.Candidates[0].BackendModel = "" },
		"deployment id too long":  func(m *budgetv1.AdmitRequest) { m.Candidates[0].DeploymentId = long },
		"provider padded":         func(m *budgetv1.AdmitRequest) { m.Candidates[0].Provider = " openai" },
		"empty tag":               func(m *budgetv1.AdmitRequest) { m.Tags = []string{""} },
		"tag too long":            func(m *budgetv1.AdmitRequest) { m.Tags = []string{long} },
		"end user padded":         func(m *budgetv1.AdmitRequest) { m.EndUserId = "eu " },
		"bad price override": func(m *budgetv1.AdmitRequest) {
			m.Candidates[0].PriceOverrides = map[string]string{"input_cost_per_token": "cheap"}
		},
		"estimate overflows int64": func(m *budgetv1.AdmitRequest) { m.PromptTokens = 1 << 62 },
		"second candidate incomplete": func(m *budgetv1.AdmitRequest) {
			m.Candidates = append(m.Candidates, &budgetv1.Candidate{DeploymentId: "x"})
		},
	} {
		m := good()
		mutate(m)
		_, err := in.client.Admit(harness.Context(t), connect.NewRequest(m))
		harness.WantCode(t, name, err, connect.CodeInvalidArgument)
	}

	_, err := in.client.Admit(harness.Context(t), connect.NewRequest(admitReq("r", "k-nobody", 10, 10)))
	harness.WantCode(t, "unknown key", err, connect.CodeNotFound)

	createKey(t, in.client, "k-models", "")
	harness.OK[budgetv1.UpdateKeyResponse](t, "allow-list")(in.client.UpdateKey(harness.Context(t), connect.NewRequest(&budgetv1.UpdateKeyRequest{
		Key: &budgetv1.Key{KeyId: "k-models", Models: []string{"claude-opus-4-6"}}, UpdateFields: []string{"models"}})))
	_, err = in.client.Admit(harness.Context(t), connect.NewRequest(admitReq("r", "k-models", 10, 10)))
	harness.WantCode(t, "model outside the allow-list", err, connect.CodePermissionDenied)
	allowed := admitReq("r-models", "k-models", 10, 10)
	allowed.ModelGroup = "claude-opus-4-6"
	admitted(t, admit(t, in.client, allowed))

	createKey(t, in.client, "k-blocked", "")
	harness.OK[budgetv1.UpdateKeyResponse](t, "block")(in.client.UpdateKey(harness.Context(t), connect.NewRequest(&budgetv1.UpdateKeyRequest{
		Key: &budgetv1.Key{KeyId: "k-blocked", Blocked: true}, UpdateFields: []string{"blocked"}})))
	_, err = in.client.Admit(harness.Context(t), connect.NewRequest(admitReq("r", "k-blocked", 10, 10)))
	harness.WantCode(t, "blocked key", err, connect.CodePermissionDenied)

	// Nothing above reserved anything.
	keys, err := e.rdb.Keys(harness.Context(t), "sl:c:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, ":x") || strings.HasSuffix(k, ":m") {
			continue
		}
		if s := e.state(k); s.Reserved != 0 {
			t.Fatalf("%s holds %+v", k, s)
		}
	}
	harness.OK[budgetv1.UpdatePrincipalResponse](t, "block team")(in.client.UpdatePrincipal(harness.Context(t), connect.NewRequest(&budgetv1.UpdatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM, Id: "team-ok", Blocked: true}, UpdateFields: []string{"blocked"}})))
	// This instance made the change, so it sees it at once.
	_, err = in.client.Admit(harness.Context(t), connect.NewRequest(good()))
	harness.WantCode(t, "key of a blocked team", err, connect.CodePermissionDenied)

}
