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
	pool := newPool(tb, in.PostgresURL)
	if _, err := migrations.Apply(ctxFor(tb), pool, migrations.Budget); err != nil {
		tb.Fatalf("migrations: %v", err)
	}
	return in.PostgresURL, pool
}

func newPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func ctxFor(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
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
	svc := budgetsvc.New(budgetsvc.Config{Pool: newPool(tb, url), CacheMaxAge: time.Hour})
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
	eventually(tb, 10*time.Second, "cache listening", func() (bool, string) { return svc.Cache.Listening(), "not listening" })
	return &instance{svc: svc, client: budgetv1connect.NewBudgetServiceClient(srv.Client(), srv.URL)}
}

// eventually polls cond every 10ms until it holds or within passes; cond's
// string says what it saw, for the failure message.
func eventually(tb testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v (last: %s)", what, within, saw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantCode(tb testing.TB, what string, err error, want connect.Code) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("%s: succeeded; want %v", what, want)
	}
	if got := connect.CodeOf(err); got != want {
		tb.Fatalf("%s: %v (%v); want %v", what, got, err, want)
	}
}

// ok fails the test on err and returns the message.
func ok[T any](tb testing.TB, what string) func(*connect.Response[T], error) *T {
	return func(r *connect.Response[T], err error) *T {
		tb.Helper()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		return r.Msg
	}
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
	ok[budgetv1.CreatePrincipalResponse](tb, "create team "+id)(in.client.CreatePrincipal(ctxFor(tb),
		req(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: teamKind, Id: id}})))
}

func (in *instance) setBudget(tb testing.TB, spec *budgetv1.BudgetSpec) *budgetv1.Budget {
	tb.Helper()
	return ok[budgetv1.SetBudgetResponse](tb, "set budget")(in.client.SetBudget(ctxFor(tb), req(&budgetv1.SetBudgetRequest{Spec: spec}))).Budget
}

// count runs a count(*) query.
func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(ctxFor(tb), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}
