package budget_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/migrations"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
)

// thresholdEnv is one threshold test's real stores (Postgres with the
// ledger and budget sets, Redis, NATS with the streams), the webhook
// receiver, and a clock shared by every instance's admission and watcher.
type thresholdEnv struct {
	t       *testing.T
	in      *harness.Infra
	pool    *pgxpool.Pool
	store   *redisstore.Store // settles as the ledger's projection does
	js      jetstream.JetStream
	hook    *webhookReceiver
	catalog *pricing.Catalog
	offset  atomic.Int64 // added to the real time by now
	seq     atomic.Uint64
}

func newThresholdEnv(t *testing.T) *thresholdEnv {
	t.Helper()
	in := harness.StartInfra(t)
	pool := harness.Pool(t, in.PostgresURL)
	for _, set := range []migrations.Set{migrations.Ledger, migrations.Budget} {
		if _, err := migrations.Apply(harness.Context(t), pool, set); err != nil {
			t.Fatalf("migrations %s: %v", set, err)
		}
	}
	return thresholdEnvOn(t, in, newWebhookReceiver(t))
}

// thresholdEnvOn is the env on stores already started (and migrated).
func thresholdEnvOn(t *testing.T, in *harness.Infra, hook *webhookReceiver) *thresholdEnv {
	t.Helper()
	catalog, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	e := &thresholdEnv{t: t, in: in, pool: harness.Pool(t, in.PostgresURL), catalog: catalog, store: redisstore.New(harness.RedisClient(t, in.RedisURL)),
		js: harness.JetStream(t, in.NATSURL), hook: hook}
	if err := js.EnsureStreams(harness.Context(t), e.js); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *thresholdEnv) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }

// newInstance starts a budget service instance as main assembles it, with
// its own Postgres pool, Redis client and NATS connection, admission, and
// a threshold watcher running every 50ms and calling the receiver.
func (e *thresholdEnv) newInstance() *instance {
	t := e.t
	t.Helper()
	pool := harness.Pool(t, e.in.PostgresURL)
	counters := redisstore.New(harness.RedisClient(t, e.in.RedisURL))
	admit, err := budgetsvc.AdmissionConfig{Redis: counters, DB: pool, Catalog: e.catalog,
		ReservationTTL: time.Hour, Now: e.now}.Admission()
	if err != nil {
		t.Fatal(err)
	}
	svc := budgetsvc.New(budgetsvc.Config{Pool: pool, CacheMaxAge: time.Hour, Admission: admit})
	watcher, err := svc.ThresholdWatcher(budgetsvc.ThresholdConfig{
		Redis: counters, JetStream: harness.JetStream(t, e.in.NATSURL), WebhookURL: e.hook.srv.URL,
		Interval: 50 * time.Millisecond, LateWindow: time.Minute, Now: e.now,
		Backoff: budgetsvc.ThresholdBackoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond, GiveUpAfter: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.RunCache(ctx) })
	wg.Go(func() { watcher.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	mux := http.NewServeMux()
	mux.Handle(svc.Routes())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &instance{svc: svc, client: budgetv1connect.NewBudgetServiceClient(srv.Client(), srv.URL)}
}

// spend admits a small gpt-4o request for key and settles cost nano-USD on
// the counters it was admitted on, as the ledger's projection would.
func (e *thresholdEnv) spend(c budgetv1connect.BudgetServiceClient, key string, cost int64) {
	e.t.Helper()
	n := e.seq.Add(1)
	r := harness.OK[budgetv1.AdmitResponse](e.t, "admit")(c.Admit(harness.Context(e.t), req(&budgetv1.AdmitRequest{
		RequestId: fmt.Sprintf("req-%d", n), KeyId: key, ModelGroup: "gpt-4o", PromptTokens: 10, MaxTokens: 10,
		Candidates: []*budgetv1.Candidate{{DeploymentId: "d1", Provider: "openai", BackendModel: "gpt-4o"}},
	})))
	a := r.GetAdmitted()
	if a == nil {
		e.t.Fatalf("denied: %v", r.GetDenied())
	}
	res, err := e.store.Apply(harness.Context(e.t), redisstore.Application{
		EventID: fmt.Sprintf("ev-%d", n), StreamSeq: n, TxID: 1 << 50, Cost: cost,
		ReservationID: a.ReservationId, Keys: a.CounterKeys,
	})
	if err != nil || !res.Done() {
		e.t.Fatalf("apply: %v %v", res.Outcomes, err)
	}
}

// events reads every BudgetThresholdCrossed on the BUDGET stream, checking
// each one's subject and message id.
func (e *thresholdEnv) events() []*eventsv1.BudgetThresholdCrossed {
	e.t.Helper()
	evs, err := e.readEvents()
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// readEvents is events, with an error while NATS is not answering.
func (e *thresholdEnv) readEvents() ([]*eventsv1.BudgetThresholdCrossed, error) {
	ctx := harness.Context(e.t)
	s, err := e.js.Stream(ctx, js.BudgetStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []*eventsv1.BudgetThresholdCrossed
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", seq, err)
		}
		ev := &eventsv1.BudgetThresholdCrossed{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			e.t.Fatalf("message %d: %v", seq, err)
		}
		if m.Subject != js.BudgetThresholdSubject(ev.GetScope().GetId()) || m.Header.Get(jetstream.MsgIDHeader) != "threshold:"+ev.EventId {
			e.t.Fatalf("message %d on %s with id %q: %v", seq, m.Subject, m.Header.Get(jetstream.MsgIDHeader), ev)
		}
		out = append(out, ev)
	}
	return out, nil
}

// webhookReceiver answers 503 while down and 204 otherwise, and records
// every call.
type webhookReceiver struct {
	srv   *httptest.Server
	down  atomic.Bool
	mu    sync.Mutex
	calls []webhookCall
}

type webhookCall struct {
	key       string // Idempotency-Key
	delivered bool   // answered 2xx
	body      map[string]any
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c := webhookCall{key: r.Header.Get("Idempotency-Key"), delivered: !w.down.Load()}
		if err := json.Unmarshal(b, &c.body); err != nil || r.Method != http.MethodPost {
			t.Errorf("webhook got %s %s: %v", r.Method, b, err)
		}
		w.mu.Lock()
		w.calls = append(w.calls, c)
		w.mu.Unlock()
		if !c.delivered {
			http.Error(rw, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// count returns the calls for an event id: all of them and the delivered ones.
func (w *webhookReceiver) count(key string) (all, delivered int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.calls {
		if c.key == key {
			all++
			if c.delivered {
				delivered++
			}
		}
	}
	return all, delivered
}

// deliveredBody is the body of the delivered call for an event id.
func (w *webhookReceiver) deliveredBody(key string) map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.calls {
		if c.key == key && c.delivered {
			return c.body
		}
	}
	return nil
}
