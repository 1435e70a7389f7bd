// Package budget_test runs the budget service's store, cache and Connect API
// against a real Postgres started by the e2e harness: in-process through
// budgetsvc (the same assembly main uses), two instances on one database for
// cache invalidation, and the built binary through harness.StartStack.
package budget_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/migrations"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
)

// TestMain removes the service binaries the harness may build.
func TestMain(m *testing.M) { harness.Main(m) }

// newDB starts Postgres for tb, applies the budget migrations, and returns its
// URL and a pool closed at cleanup.
func newDB(tb testing.TB) (string, *pgxpool.Pool) {
	tb.Helper()
	in := harness.StartInfra(tb)
	pool := harness.Pool(tb, in.PostgresURL)
	if _, err := migrations.Apply(harness.Context(tb), pool, migrations.Budget); err != nil {
		tb.Fatalf("migrations: %v", err)
	}
	return in.PostgresURL, pool
}

// instance is one budget service instance: its own pool, cache and LISTEN
// connection, served over an httptest server.
type instance struct {
	svc    *budgetsvc.Service
	client budgetv1connect.BudgetServiceClient
}

// newInstance starts an instance on url. The cache's max age is an hour, so
// anything a test sees change within seconds was changed by a notification
// (or a reconnect), never by expiry. It waits until the cache listens.
func newInstance(tb testing.TB, url string) *instance {
	tb.Helper()
	svc := budgetsvc.New(budgetsvc.Config{Pool: harness.Pool(tb, url), CacheMaxAge: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.RunCache(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("cache listener: %v", err)
		}
	})
	mux := http.NewServeMux()
	mux.Handle(svc.Routes())
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	harness.Eventually(tb, 10*time.Second, "cache listening", func() (bool, string) { return svc.Cache.Listening(), "not listening" })
	return &instance{svc: svc, client: budgetv1connect.NewBudgetServiceClient(srv.Client(), srv.URL)}
}

func req[T any](m *T) *connect.Request[T] { return connect.NewRequest(m) }

const (
	teamKind    = budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM
	userKind    = budgetv1.PrincipalKind_PRINCIPAL_KIND_USER
	endUserKind = budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER
)

func scopeOf(k eventsv1.ScopeKind, id, model string) *eventsv1.Scope {
	return &eventsv1.Scope{Kind: k, Id: id, ModelGroup: model}
}

func (in *instance) createTeam(tb testing.TB, id string) {
	tb.Helper()
	harness.OK[budgetv1.CreatePrincipalResponse](tb, "create team "+id)(in.client.CreatePrincipal(harness.Context(tb),
		req(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: teamKind, Id: id}})))
}

func (in *instance) setBudget(tb testing.TB, spec *budgetv1.BudgetSpec) *budgetv1.Budget {
	tb.Helper()
	return harness.OK[budgetv1.SetBudgetResponse](tb, "set budget")(in.client.SetBudget(harness.Context(tb), req(&budgetv1.SetBudgetRequest{Spec: spec}))).Budget
}

// count runs a count(*) query.
func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(harness.Context(tb), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}
