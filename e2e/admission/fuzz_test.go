package admission_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/scope"
)

// FuzzAdmit feeds random AdmitRequests to Admit (in-process, so past
// Connect's own UTF-8 checks) against real Redis and Postgres, with budgets
// on every request scope and on a provider and a deployment. Per request:
//
//   - no panic, and every error is InvalidArgument, NotFound or
//     PermissionDenied (the stores are up: Unavailable or Internal would
//     mean an input reached a store that validation should have refused);
//   - a request denied or refused holds no reservation on any counter;
//   - on every counter, reserved = held = the sum of the estimates of the
//     admitted requests that named it (and provider and deployment
//     counters, which only filter, hold nothing), and never past its limit.
//
// `go test` runs the seed corpus; fuzz with
//
//	go test -run '^$' -fuzz FuzzAdmit -parallel 1 ./e2e/admission/
//
// (each fuzz worker starts its own stores).
func FuzzAdmit(f *testing.F) {
	for _, s := range []struct {
		id, group, dep, prov, model string
		key                         uint8
		prompt, max                 int64
		tag, endUser, overrides     string
		flags                       uint8
	}{
		{"plain", "gpt-4o", "d1", "openai", "gpt-4o", 1, 1_000, 500, "", "", "", 0},
		{"team", "gpt-4o", "d2", "openai", "gpt-4o", 2, 20_000, 4_000, "t-x", "fz-eu", "", 8},
		{"nokey", "gpt-4o", "d1", "openai", "gpt-4o-mini", 0, 10, 10, "", "fz-eu", "", 8},
		{"unpriced", "house", "h1", "openai", "my-house-model", 1, 100, 100, "", "", "", 0},
		{"zero", "house", "h1", "openai", "my-house-model", 1, 100, 100, "", "", "input_cost_per_token=0,output_cost_per_token=0", 0},
		{"optin", "house", "h1", "openai", "my-house-model", 1, 100, 100, "", "", "", 4},
		{"two", "gpt-4o", "az", "azure", "azure/gpt-4o", 1, 5_000, 5_000, "fz-tag", "", "", 2 | 8},
		{"nomax", "gpt-4o", "d1", "openai", "gpt-4o", 1, 1_000, 0, "", "", "", 0},
		{"huge", "gpt-4o", "d1", "openai", "gpt-4o", 1, 1 << 62, 1 << 62, "", "", "", 0},
		{"neg", "gpt-4o", "d1", "openai", "gpt-4o", 1, -1, 5, "", "", "", 0},
		{"blocked", "gpt-4o", "d1", "openai", "gpt-4o", 3, 1, 1, "", "", "", 0},
		{"models", "claude-opus-4-6", "d1", "openai", "gpt-4o", 4, 1, 1, "", "", "", 0},
		{"unknown", "gpt-4o", "d1", "openai", "gpt-4o", 5, 1, 1, "nobody", "", "", 0},
		{"nul", "gpt\x00-4o", "d\x001", "open\xffai", "gpt-4o", 1, 1, 1, "a\x00b", "e\u200bu", "", 0},
		{"", "gpt-4o", "d1", "openai", "gpt-4o", 1, 1, 1, " t", "eu ", "input_cost_per_token=abc", 1},
		{strings.Repeat("r", 300), "gpt-4o", strings.Repeat("d", 300), "openai", "gpt-4o", 1, 1, 1, "", "", "", 0},
		{"vertex", "claude-opus-4-6", "v1", "vertex_ai", "vertex_ai/claude-opus-4-6@default", 1, 2_000, 1_000, "", "", "", 0},
	} {
		f.Add(s.id, s.key, s.group, s.dep, s.prov, s.model, s.prompt, s.max, s.tag, s.endUser, s.overrides, s.flags)
	}

	e := newEnv(f)
	// Leases off: every reservation is then the request's own, so after
	// each call the counters hold exactly the admitted estimates
	// (lease_test.go covers leases).
	in := e.newInstance(noLeases)
	h := in.svc.Handler // in-process: no HTTP, no Connect validation
	createKey(f, h, "fz-key", "", &budgetv1.BudgetSpec{LimitUsd: "3", Duration: "1d"})
	createKey(f, h, "fz-key2", "fz-team")
	createKey(f, h, "fz-blocked", "", &budgetv1.BudgetSpec{LimitUsd: "1"})
	createKey(f, h, "fz-models", "")
	limits := map[scope.Scope]int64{
		{Kind: scope.KindKey, ID: "fz-key"}:                            3 * usd,
		{Kind: scope.KindKeyModel, ID: "fz-key", ModelGroup: "gpt-4o"}: 2 * usd,
		{Kind: scope.KindTeam, ID: "fz-team"}:                          5 * usd,
		{Kind: scope.KindTag, ID: "fz-tag"}:                            4 * usd,
		{Kind: scope.KindEndUser, ID: "fz-eu"}:                         usd,
		{Kind: scope.KindProvider, ID: "openai"}:                       10 * usd,
		{Kind: scope.KindDeployment, ID: "d1"}:                         3 * usd,
		{Kind: scope.KindKey, ID: "fz-blocked"}:                        usd,
	}
	kinds := map[scope.Kind]eventsv1.ScopeKind{
		scope.KindKeyModel: eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, scope.KindTeam: eventsv1.ScopeKind_SCOPE_KIND_TEAM,
		scope.KindTag: eventsv1.ScopeKind_SCOPE_KIND_TAG, scope.KindEndUser: eventsv1.ScopeKind_SCOPE_KIND_END_USER,
		scope.KindProvider: eventsv1.ScopeKind_SCOPE_KIND_PROVIDER, scope.KindDeployment: eventsv1.ScopeKind_SCOPE_KIND_DEPLOYMENT,
	}
	for s, limit := range limits {
		if k, ok := kinds[s.Kind]; ok {
			setBudget(f, h, &budgetv1.BudgetSpec{Scope: scopeOf(k, s.ID, s.ModelGroup), LimitUsd: money(limit), Duration: "1d"})
		}
	}
	harness.OK[budgetv1.UpdateKeyResponse](f, "block")(h.UpdateKey(context.Background(), connect.NewRequest(&budgetv1.UpdateKeyRequest{
		Key: &budgetv1.Key{KeyId: "fz-blocked", Blocked: true}, UpdateFields: []string{"blocked"}})))
	harness.OK[budgetv1.UpdateKeyResponse](f, "allow-list")(h.UpdateKey(context.Background(), connect.NewRequest(&budgetv1.UpdateKeyRequest{
		Key: &budgetv1.Key{KeyId: "fz-models", Models: []string{"gpt-4o"}}, UpdateFields: []string{"models"}})))

	var mu sync.Mutex
	expected := map[string]int64{} // counter key -> Σ admitted estimates
	n := 0
	keyIDs := []string{"", "fz-key", "fz-key2", "fz-blocked", "fz-models"}

	f.Fuzz(func(t *testing.T, id string, key uint8, group, dep, prov, model string, prompt, maxTokens int64, tag, endUser, overrides string, flags uint8) {
		mu.Lock()
		defer mu.Unlock()
		e := e.withT(t)
		n++
		m := &budgetv1.AdmitRequest{ModelGroup: group, PromptTokens: prompt, MaxTokens: maxTokens, EndUserId: endUser}
		if id != "" {
			m.RequestId = fmt.Sprintf("%s#%d", id, n) // unique: the checks below are per request
		}
		if int(key)%6 < len(keyIDs) {
			m.KeyId = keyIDs[int(key)%6]
		} else {
			m.KeyId = "fz-" + tag
		}
		c := &budgetv1.Candidate{DeploymentId: dep, Provider: prov, BackendModel: model, UnpricedAllowed: flags&4 != 0}
		if overrides != "" {
			c.PriceOverrides = map[string]string{}
			for _, kv := range strings.Split(overrides, ",") {
				k, v, _ := strings.Cut(kv, "=")
				c.PriceOverrides[k] = v
			}
		}
		m.Candidates = []*budgetv1.Candidate{c}
		if flags&2 != 0 {
			m.Candidates = append(m.Candidates, gpt4o("d1"))
		}
		if tag != "" {
			m.Tags = append(m.Tags, tag)
		}
		if flags&8 != 0 {
			m.Tags = append(m.Tags, "fz-tag")
		}

		res, err := h.Admit(context.Background(), connect.NewRequest(m))
		admittedWith := int64(-1)
		switch {
		case err != nil:
			switch connect.CodeOf(err) {
			case connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodePermissionDenied:
			default:
				t.Fatalf("admit %q: %v (%v)", m.RequestId, connect.CodeOf(err), err)
			}
		case res.Msg.GetAdmitted() != nil:
			a := res.Msg.GetAdmitted()
			if a.ReservedNanos < 0 || len(a.AllowedDeploymentIds) == 0 || len(a.AllowedDeploymentIds) != len(a.CandidateCounters) {
				t.Fatalf("admission %v", a)
			}
			if a.ReservationId != "" {
				if a.ReservationId != m.RequestId || a.ReservedNanos == 0 || len(a.CounterKeys) == 0 {
					t.Fatalf("reservation %v for %q", a, m.RequestId)
				}
				admittedWith = a.ReservedNanos
				for _, k := range a.CounterKeys {
					expected[k] += a.ReservedNanos
				}
			} else if a.ReservedNanos != 0 && len(a.CounterKeys) > 0 {
				t.Fatalf("%d reserved on %v without a reservation id", a.ReservedNanos, a.CounterKeys)
			}
		default:
			if res.Msg.GetDenied().GetReason() == budgetv1.DenialReason_DENIAL_REASON_UNSPECIFIED {
				t.Fatalf("denial without a reason: %v", res.Msg.GetDenied())
			}
		}

		var counters []string
		if err := e.store.ScanCounters(context.Background(), func(k string) error { counters = append(counters, k); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, k := range counters {
			st := e.state(k)
			if st.Reserved != expected[k] || st.Held != expected[k] || st.Live != expected[k] {
				t.Fatalf("%s: %+v; want reserved %d (the admitted estimates)", k, st, expected[k])
			}
			s, _, _, err := scope.ParseCounterKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if limit, ok := limits[s]; !ok || st.Spent+st.Reserved > limit {
				t.Fatalf("%s: %+v past limit %d (budgeted %v)", k, st, limit, ok)
			}
			if admittedWith < 0 && m.RequestId != "" {
				held, err := e.rdb.HExists(context.Background(), k, "r:"+m.RequestId).Result()
				if err != nil || held {
					t.Fatalf("%s holds a reservation for %q, which was not admitted (%v)", k, m.RequestId, err)
				}
			}
		}
		for k, want := range expected {
			if want != 0 && !slices.Contains(counters, k) {
				t.Fatalf("counter %s, holding %d, is gone", k, want)
			}
		}
	})
}

// money renders nanos as an exact decimal dollar string.
func money(n int64) string { return fmt.Sprintf("%d.%09d", n/usd, n%usd) }
