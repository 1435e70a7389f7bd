package budget_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
)

// limitOn reads the limits on s through in's cache, in dollars.
func (in *instance) limitOn(t *testing.T, s scope.Scope) string {
	t.Helper()
	bs, err := in.svc.Cache.BudgetsFor(harness.Context(t), []scope.Scope{s})
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, b := range bs {
		out += b.Limit.String()
	}
	if out == "" {
		return "none"
	}
	return out
}

// proveCached shows that in answers for s from its cache: a change made
// behind the service's back (no NOTIFY) is not seen. It retries because a
// notification of an earlier write may still be on its way to in and drop
// the entry once more; notifications are finite, so this settles quickly.
// It returns the cached limit.
func proveCached(t *testing.T, in *instance, pool *pgxpool.Pool, s scope.Scope) string {
	t.Helper()
	var cached string
	harness.Eventually(t, 5*time.Second, "cached", func() (bool, string) {
		before := in.limitOn(t, s)
		if _, err := pool.Exec(harness.Context(t), `UPDATE budgets SET limit_nanos = limit_nanos + 1
			WHERE scope_kind = $1 AND scope_id = $2 AND model_group = $3`, s.Kind.String(), s.ID, s.ModelGroup); err != nil {
			t.Fatal(err)
		}
		cached = in.limitOn(t, s)
		return cached == before && cached != "none", fmt.Sprintf("read %s, then %s", before, cached)
	})
	return cached
}

// TestRaisedLimitReachesEveryInstance: instance B has a budget cached; a
// limit raised through instance A is what B answers within the poll bound.
// Max age is an hour, so only the notification can explain it.
func TestRaisedLimitReachesEveryInstance(t *testing.T) {
	t.Parallel()
	url, pool := newDB(t)
	a, b := newInstance(t, url), newInstance(t, url)
	a.createTeam(t, "t1")
	team := scope.Scope{Kind: scope.KindTeam, ID: "t1"}
	spec := &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "t1", ""), LimitUsd: "10", Duration: "1d"}
	a.setBudget(t, spec)
	harness.Eventually(t, 5*time.Second, "B sees the new budget", func() (bool, string) {
		got := b.limitOn(t, team)
		return got == "10", got
	})

	proveCached(t, b, pool, team)

	spec.LimitUsd = "25"
	a.setBudget(t, spec)
	harness.Eventually(t, 5*time.Second, "B sees the raised limit", func() (bool, string) {
		got := b.limitOn(t, team)
		return got == "25", got
	})
	// A reads its own write at once, without waiting for its notification.
	spec.LimitUsd = "30"
	a.setBudget(t, spec)
	if got := a.limitOn(t, team); got != "30" {
		t.Fatalf("A read %s right after its own write; want 30", got)
	}

	// Deleting the team's budget: B stops seeing it.
	list := harness.OK[budgetv1.ListBudgetsResponse](t, "list")(a.client.ListBudgets(harness.Context(t), req(&budgetv1.ListBudgetsRequest{Scope: spec.Scope})))
	harness.OK[budgetv1.DeleteBudgetResponse](t, "delete")(a.client.DeleteBudget(harness.Context(t), req(&budgetv1.DeleteBudgetRequest{BudgetId: list.Budgets[0].Spec.BudgetId})))
	harness.Eventually(t, 5*time.Second, "B drops the deleted budget", func() (bool, string) {
		got := b.limitOn(t, team)
		return got == "none", got
	})
}

// TestKeyChangesReachEveryInstance: Authenticate on B follows a key blocked,
// a team blocked, and a key deleted through A.
func TestKeyChangesReachEveryInstance(t *testing.T) {
	t.Parallel()
	url, pool := newDB(t)
	a, b := newInstance(t, url), newInstance(t, url)
	a.createTeam(t, "t1")
	k := harness.OK[budgetv1.CreateKeyResponse](t, "create key")(a.client.CreateKey(harness.Context(t), req(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{TeamId: "t1"}})))
	sum := sha256.Sum256([]byte(k.ClearKey))
	hash := hex.EncodeToString(sum[:])
	authB := func() error {
		_, err := b.client.Authenticate(harness.Context(t), req(&budgetv1.AuthenticateRequest{KeyHash: hash}))
		return err
	}
	if err := authB(); err != nil {
		t.Fatalf("B authenticates a key A created: %v", err)
	}
	// B answers from its cache: blocking the key behind the service's back
	// (no NOTIFY) is not seen. Retried as in proveCached.
	setBlocked := func(v bool) {
		if _, err := pool.Exec(harness.Context(t), `UPDATE virtual_keys SET blocked = $1`, v); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 5*time.Second, "B's key cached", func() (bool, string) {
		setBlocked(false)
		if err := authB(); err != nil {
			return false, err.Error()
		}
		setBlocked(true)
		err := authB()
		return err == nil, fmt.Sprint(err)
	})
	setBlocked(false)
	authIs := func(what string, want connect.Code) {
		t.Helper()
		harness.Eventually(t, 5*time.Second, what, func() (bool, string) {
			err := authB()
			return err != nil && connect.CodeOf(err) == want, fmt.Sprint(err)
		})
	}

	harness.OK[budgetv1.UpdateKeyResponse](t, "block key")(a.client.UpdateKey(harness.Context(t), req(&budgetv1.UpdateKeyRequest{
		Key: &budgetv1.Key{KeyId: k.Key.KeyId, Blocked: true}, UpdateFields: []string{"blocked"}})))
	authIs("B refuses the blocked key", connect.CodePermissionDenied)
	harness.OK[budgetv1.UpdateKeyResponse](t, "unblock key")(a.client.UpdateKey(harness.Context(t), req(&budgetv1.UpdateKeyRequest{
		Key: &budgetv1.Key{KeyId: k.Key.KeyId}, UpdateFields: []string{"blocked"}})))
	harness.Eventually(t, 5*time.Second, "B accepts the unblocked key", func() (bool, string) {
		err := authB()
		return err == nil, fmt.Sprint(err)
	})

	harness.OK[budgetv1.UpdatePrincipalResponse](t, "block team")(a.client.UpdatePrincipal(harness.Context(t), req(&budgetv1.UpdatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: teamKind, Id: "t1", Blocked: true}, UpdateFields: []string{"blocked"}})))
	authIs("B refuses a key of the blocked team", connect.CodePermissionDenied)

	harness.OK[budgetv1.DeleteKeyResponse](t, "delete key")(a.client.DeleteKey(harness.Context(t), req(&budgetv1.DeleteKeyRequest{KeyId: k.Key.KeyId})))
	authIs("B refuses the deleted key", connect.CodeUnauthenticated)
}

// TestLostListenerDropsEverything: when the LISTEN connection dies, changes
// made meanwhile were never heard; the instance must not keep serving what it
// cached before. The change here announces nothing, so only the drop on
// disconnect and reconnect can make it visible.
func TestLostListenerDropsEverything(t *testing.T) {
	t.Parallel()
	url, pool := newDB(t)
	b := newInstance(t, url)
	prov := scope.Scope{Kind: scope.KindProvider, ID: "openai"}
	b.setBudget(t, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_PROVIDER, "openai", ""), LimitUsd: "10"})
	cached := proveCached(t, b, pool, prov)
	if _, err := pool.Exec(harness.Context(t), `UPDATE budgets SET limit_nanos = $1`, int64(42*money.PerDollar)); err != nil {
		t.Fatal(err)
	}
	if got := b.limitOn(t, prov); got != cached {
		t.Fatalf("B read %s; want the cached %s", got, cached)
	}
	if _, err := pool.Exec(harness.Context(t), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
		budgetsvc.ListenerAppName); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "B re-reads after losing its listener", func() (bool, string) {
		got := b.limitOn(t, prov)
		return got == "42", got
	})
	harness.Eventually(t, 10*time.Second, "B listens again", func() (bool, string) { return b.svc.Cache.Listening(), "not listening" })
}
