package api

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/services/budget/internal/store"
	"github.com/spendledger/spendledger/services/budget/internal/store/memstore"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

type fixture struct {
	h   *Handler
	st  *memstore.Store
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{st: memstore.New(), now: t0}
	f.st.Now = func() time.Time { return f.now }
	f.h = New(Config{Store: f.st, Now: func() time.Time { return f.now }})
	return f
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// code is the Connect code of err (CodeOf gives Unknown for nil; say "ok").
func code(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

func wantCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Fatalf("%s: got %s (%v); want %s", what, code(err), err, want)
	}
}

func must[T any](t *testing.T) func(*connect.Response[T], error) *T {
	return func(r *connect.Response[T], err error) *T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return r.Msg
	}
}

func (f *fixture) createTeam(t *testing.T, id string) {
	t.Helper()
	must[budgetv1.CreatePrincipalResponse](t)(f.h.CreatePrincipal(ctx(t), connect.NewRequest(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM, Id: id}})))
}

func (f *fixture) createKey(t *testing.T, k *budgetv1.Key, budgets ...*budgetv1.BudgetSpec) *budgetv1.CreateKeyResponse {
	t.Helper()
	return must[budgetv1.CreateKeyResponse](t)(f.h.CreateKey(ctx(t), connect.NewRequest(&budgetv1.CreateKeyRequest{Key: k, Budgets: budgets})))
}

func keyScope(id string) *eventsv1.Scope {
	return &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY, Id: id}
}

func teamScope(id string) *eventsv1.Scope {
	return &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_TEAM, Id: id}
}

var (
	errDown      = errors.New("connection refused")
	errDownStore = fmt.Errorf("%w: %w", store.ErrUnavailable, errDown)
)
