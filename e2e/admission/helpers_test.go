// Package admission_test proves the budget service's admission (Admit,
// Release, and the spend it reports) against a real Redis and Postgres
// started by the e2e harness: in-process through budgetsvc (the assembly
// main uses, with admission configured by budgetsvc.AdmissionConfig), two
// instances sharing the stores where the test is about instances, and the
// built binary through harness.StartStack.
//
// Settlement is done as the ledger would do it, with redisstore.Apply on
// the counter keys the Admission returned: the tests are about what
// admission reserves and enforces, and Apply is the very call the ledger's
// projection makes. Every amount is asserted to the nano-USD.
package admission_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/migrations"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
)

// TestMain removes the service binaries the harness may build.
func TestMain(m *testing.M) { harness.Main(m) }

const usd = int64(1_000_000_000) // nano-USD per dollar

// Estimates used throughout, by hand from the built-in catalog
// (UpperBound = prompt × max(input-side prices) + max_tokens ×
// max(output, reasoning)):
//
// gpt-4o: input 2.5e-6, cache read 1.25e-6 (no cache write price) → input
// side 2.5e-6 = 2,500 nanos/token; output 1e-5, no reasoning price (falls
// back to output) → 10,000 nanos/token.
const (
	gpt4oIn  = 2_500
	gpt4oOut = 10_000
	// 10,000 prompt + 4,000 max_tokens: 25,000,000 + 40,000,000.
	est10k4k = 10_000*gpt4oIn + 4_000*gpt4oOut // 65,000,000 = $0.065
	// 1,000 prompt + 1,000 max_tokens: 2,500,000 + 10,000,000.
	est1k1k = 1_000*gpt4oIn + 1_000*gpt4oOut // 12,500,000 = $0.0125
)

// env is one test's stores: Postgres with the ledger and budget
// migrations, Redis, and the built-in catalog.
type env struct {
	t       testing.TB
	in      *harness.Infra
	pool    *pgxpool.Pool
	rdb     *redis.Client
	store   *redisstore.Store
	catalog *pricing.Catalog
	seq     *atomic.Uint64 // COSTS stream sequences for Apply, shared by withT copies
}

func newEnv(t testing.TB) *env {
	t.Helper()
	in := harness.StartInfra(t)
	pool, err := pgxpool.New(context.Background(), in.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for _, set := range []migrations.Set{migrations.Ledger, migrations.Budget} {
		if _, err := migrations.Apply(harness.Context(t), pool, set); err != nil {
			t.Fatalf("migrations %s: %v", set, err)
		}
	}
	opt, err := redis.ParseURL(in.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.PoolSize = 128
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	catalog, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, in: in, pool: pool, rdb: rdb, store: redisstore.New(rdb), catalog: catalog, seq: new(atomic.Uint64)}
}

// withT is e for a subtest.
func (e *env) withT(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// instance is one in-process budget service instance with admission: its
// own pool, cache (LISTEN connection), Redis client and Admitter, served
// over an httptest server.
type instance struct {
	svc    *budgetsvc.Service
	client budgetv1connect.BudgetServiceClient
	clock  *clock
}

// clock is an injectable admission clock; zero offset is real time.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// newInstance starts an instance on e's stores. tune may change the
// admission configuration (TTL, fault policy, batching).
func (e *env) newInstance(tune func(*budgetsvc.AdmissionConfig)) *instance {
	t := e.t
	t.Helper()
	pool, err := pgxpool.New(context.Background(), e.in.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	opt, err := redis.ParseURL(e.in.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	// Fail fast when Redis is stopped on purpose (TestRedisDown).
	opt.PoolSize, opt.MaxRetries, opt.DialTimeout = 128, 1, time.Second
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	clk := &clock{}
	cfg := budgetsvc.AdmissionConfig{
		Redis: redisstore.New(rdb), DB: pool, Catalog: e.catalog,
		ReservationTTL: time.Hour, Now: clk.now,
		Lease: budgetsvc.LeaseConfig{MaxAge: leaseMaxAge}, // as the binary runs
	}
	if tune != nil {
		tune(&cfg)
	}
	admit, err := cfg.Admission()
	if err != nil {
		t.Fatal(err)
	}
	// An hour's cache max age: anything seen to change within seconds was
	// changed by a notification.
	svc := budgetsvc.New(budgetsvc.Config{Pool: pool, CacheMaxAge: time.Hour, Admission: admit})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.RunCache(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cache listener: %v", err)
		}
	})
	mux := http.NewServeMux()
	mux.Handle(svc.Routes())
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.Start()
	t.Cleanup(srv.Close)
	harness.Eventually(t, 10*time.Second, "cache listening", func() (bool, string) { return svc.Cache.Listening(), "not listening" })
	return &instance{svc: svc, client: budgetv1connect.NewBudgetServiceClient(srv.Client(), srv.URL), clock: clk}
}

func scopeOf(k eventsv1.ScopeKind, id, model string) *eventsv1.Scope {
	return &eventsv1.Scope{Kind: k, Id: id, ModelGroup: model}
}

// budgetAPI is the part of the Connect client the helpers use, so that they
// work on an in-process instance and on the binary alike.
type budgetAPI interface {
	CreatePrincipal(context.Context, *connect.Request[budgetv1.CreatePrincipalRequest]) (*connect.Response[budgetv1.CreatePrincipalResponse], error)
	CreateKey(context.Context, *connect.Request[budgetv1.CreateKeyRequest]) (*connect.Response[budgetv1.CreateKeyResponse], error)
	SetBudget(context.Context, *connect.Request[budgetv1.SetBudgetRequest]) (*connect.Response[budgetv1.SetBudgetResponse], error)
	Admit(context.Context, *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error)
}

// createKey creates key id (and its team, if given) with budgets on the key.
func createKey(t testing.TB, c budgetAPI, id, team string, budgets ...*budgetv1.BudgetSpec) {
	t.Helper()
	if team != "" {
		_, err := c.CreatePrincipal(harness.Context(t), connect.NewRequest(&budgetv1.CreatePrincipalRequest{
			Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM, Id: team}}))
		if err != nil && connect.CodeOf(err) != connect.CodeAlreadyExists {
			t.Fatalf("create team %s: %v", team, err)
		}
	}
	harness.OK[budgetv1.CreateKeyResponse](t, "create key "+id)(c.CreateKey(harness.Context(t), connect.NewRequest(&budgetv1.CreateKeyRequest{
		Key: &budgetv1.Key{KeyId: id, TeamId: team}, Budgets: budgets})))
}

func setBudget(t testing.TB, c budgetAPI, spec *budgetv1.BudgetSpec) *budgetv1.Budget {
	t.Helper()
	return harness.OK[budgetv1.SetBudgetResponse](t, "set budget")(c.SetBudget(harness.Context(t), connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec}))).Budget
}

// gpt4o is a candidate deployment of gpt-4o on OpenAI.
func gpt4o(id string) *budgetv1.Candidate {
	return &budgetv1.Candidate{DeploymentId: id, Provider: "openai", BackendModel: "gpt-4o"}
}

// admitReq is a request for model group gpt-4o on deployment d1.
func admitReq(id, key string, prompt, maxTokens int64) *budgetv1.AdmitRequest {
	return &budgetv1.AdmitRequest{RequestId: id, KeyId: key, ModelGroup: "gpt-4o",
		Candidates: []*budgetv1.Candidate{gpt4o("d1")}, PromptTokens: prompt, MaxTokens: maxTokens}
}

// admit runs Admit and fails the test on an error.
func admit(t testing.TB, c budgetAPI, m *budgetv1.AdmitRequest) *budgetv1.AdmitResponse {
	t.Helper()
	return harness.OK[budgetv1.AdmitResponse](t, "admit "+m.RequestId)(c.Admit(harness.Context(t), connect.NewRequest(m)))
}

// leaseMaxAge is the instances' lease max age, the binary's default.
const leaseMaxAge = 200 * time.Millisecond

// noLeases turns admission leases off: one reservation per request.
func noLeases(c *budgetsvc.AdmissionConfig) { c.Lease = budgetsvc.LeaseConfig{} }

// wantReservation fails the test unless a's reservation is request id's
// own or a part of a lease holding exactly the estimate.
func wantReservation(t testing.TB, a *budgetv1.Admission, id string) {
	t.Helper()
	if a.ReservationId == id {
		return
	}
	if _, amount, ok := redisstore.ParseLeasePart(a.ReservationId); !ok || amount != a.ReservedNanos {
		t.Fatalf("reservation %q for request %q reserving %d: neither its own nor a lease part of that amount", a.ReservationId, id, a.ReservedNanos)
	}
}

// admitted fails the test unless r admitted, and returns the Admission.
func admitted(t testing.TB, r *budgetv1.AdmitResponse) *budgetv1.Admission {
	t.Helper()
	a := r.GetAdmitted()
	if a == nil {
		t.Fatalf("denied: %v", r.GetDenied())
	}
	return a
}

// denied fails the test unless r denied for reason, and returns the Denial.
func denied(t testing.TB, r *budgetv1.AdmitResponse, reason budgetv1.DenialReason) *budgetv1.Denial {
	t.Helper()
	d := r.GetDenied()
	if d == nil {
		t.Fatalf("admitted: %v; want denied (%v)", r.GetAdmitted(), reason)
	}
	if d.Reason != reason {
		t.Fatalf("denied %v (%s); want %v", d.Reason, d.Message, reason)
	}
	return d
}

// settle applies an actual cost to the admission's counters as the ledger
// would (redisstore.Apply: spent += cost, the reservation released), for
// the event of a request served by deployment (its candidate counters
// added, as the gateway adds them). TxID is far above any real xid, so the
// row counts as committed after every seed's snapshot.
func (e *env) settle(a *budgetv1.Admission, deployment string, cost int64) {
	e.t.Helper()
	keys := append([]string(nil), a.CounterKeys...)
	for _, cc := range a.CandidateCounters {
		if cc.DeploymentId == deployment {
			keys = append(keys, cc.CounterKeys...)
		}
	}
	if len(keys) == 0 {
		return
	}
	seq := e.seq.Add(1)
	res, err := e.store.Apply(harness.Context(e.t), redisstore.Application{
		EventID: fmt.Sprintf("ev-%d", seq), StreamSeq: seq, TxID: 1 << 50, Cost: cost,
		ReservationID: a.ReservationId, Keys: keys,
	})
	if err != nil || !res.Done() {
		e.t.Fatalf("apply: %v %v", res.Outcomes, err)
	}
}

// state reads one counter.
func (e *env) state(key string) redisstore.State {
	e.t.Helper()
	s, err := e.store.Read(harness.Context(e.t), []string{key})
	if err != nil {
		e.t.Fatal(err)
	}
	return s[0]
}

// wantState asserts a counter's spent and reserved (stored = held = live).
//
// It waits out open leases: until a lease closes (leaseMaxAge), the rest
// nobody took of it is reserved too.
func (e *env) wantState(key string, spent, reserved int64) {
	e.t.Helper()
	harness.Eventually(e.t, 5*leaseMaxAge, "counter "+key, func() (bool, string) {
		s := e.state(key)
		ok := s.Exists && s.Spent == spent && s.Reserved == reserved && s.Held == reserved && s.Live == reserved
		return ok, fmt.Sprintf("%+v; want spent %d, reserved %d", s, spent, reserved)
	})
}

// admitAll runs reqs concurrently on clients (round robin) and returns the
// responses in order.
func admitAll(t *testing.T, clients []budgetAPI, reqs []*budgetv1.AdmitRequest) []*budgetv1.AdmitResponse {
	t.Helper()
	out := make([]*budgetv1.AdmitResponse, len(reqs))
	errs := make([]error, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			res, err := clients[i%len(clients)].Admit(harness.Context(t), connect.NewRequest(r))
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = res.Msg
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("admit %s: %v", reqs[i].RequestId, err)
		}
	}
	return out
}
