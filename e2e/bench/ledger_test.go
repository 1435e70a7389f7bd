package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spendledger/spendledger/e2e/harness"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

// ledgerEvents is the backlog the ingest benchmark drains (and the rows
// its yardstick, BenchmarkPostgresPlainInsert, inserts).
func ledgerEvents() int { return scaled(100_000, 10_000) }

// benchCost is a CostComputed for one of 64 keys in one of 8 teams, landing on
// the key's lifetime counter and the team's daily counter, as admission would
// have named them.
func benchCost(i int, now time.Time) *eventsv1.CostComputed {
	id, _ := uuid.NewV7()
	key, team := fmt.Sprintf("key-%d", i%64), fmt.Sprintf("team-%d", i%8)
	day := window.Spec{Duration: window.MustParse("1d"), Calendar: true}
	nanos := int64(1000 + i%5000)
	return harness.PricedCost(&eventsv1.UsageRecorded{
		EventId:    id.String(),
		Identity:   &eventsv1.Identity{KeyId: key, TeamId: team},
		Route:      &eventsv1.Route{ModelGroup: "gpt-4o", DeploymentId: "d1", Provider: "openai", BackendModel: "openai/gpt-4o"},
		Tokens:     &eventsv1.TokenCounts{Input: nanos},
		OccurredAt: timestamppb.New(now),
		CounterKeys: []string{
			scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: key}, window.LifetimeSpec(), 0),
			scope.CounterKey(scope.Scope{Kind: scope.KindTeam, ID: team}, day, day.Index(now)),
		},
	})
}

func natsJS(b *testing.B, url string) jetstream.JetStream {
	return harness.JetStream(b, url, jetstream.WithPublishAsyncMaxPending(4096))
}

// BenchmarkLedgerIngest measures the ledger service draining a backlog of
// CostComputed into Postgres with projection into Redis on: entries/s from the
// first committed batch to the last (Postgres recorded_at).
func BenchmarkLedgerIngest(b *testing.B) {
	events := ledgerEvents()
	st := harness.StartStack(b, append(profileArgs("ledger"), harness.WithLogLevel("warn"))...)
	st.Service("ledger").Stop()
	s := natsJS(b, st.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	now := time.Now()
	for i := range events {
		c := benchCost(i, now)
		data, err := proto.Marshal(c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.PublishAsync(js.CostSubject(c.GetUsage().GetIdentity().GetKeyId()), data, jetstream.WithMsgID(js.CostMsgID(c.GetEventId()))); err != nil {
			b.Fatal(err)
		}
	}
	<-s.PublishAsyncComplete()

	pool, err := pgxpool.New(ctx, st.PostgresURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	b.ResetTimer()
	st.Service("ledger").Start()
	prof := startProfile(b, st, "ledger", 3)
	var n int64
	for n < int64(events) {
		if ctx.Err() != nil {
			b.Fatalf("ledger holds %d of %d entries after 10 minutes", n, events)
		}
		time.Sleep(200 * time.Millisecond)
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger_entries`).Scan(&n); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	prof.stop(events)
	var span float64
	if err := pool.QueryRow(ctx, `SELECT extract(epoch FROM max(recorded_at) - min(recorded_at))::float8 FROM ledger_entries`).Scan(&span); err != nil {
		b.Fatal(err)
	}
	// Projection finishes after the last commit; wait for the counters too, so
	// the figure is for appended and projected entries.
	rs := redisstore.New(st.Redis())
	var want int64
	if err := pool.QueryRow(ctx, `SELECT sum(total_nanos)::bigint FROM ledger_entries`).Scan(&want); err != nil {
		b.Fatal(err)
	}
	for {
		var keys []string
		if err := rs.ScanCounters(ctx, func(k string) error { keys = append(keys, k); return nil }); err != nil {
			b.Fatal(err)
		}
		states, err := rs.Read(ctx, keys)
		if err != nil {
			b.Fatal(err)
		}
		var got int64
		for i, k := range keys {
			if sc, _, _, err := scope.ParseCounterKey(k); err == nil && sc.Kind == scope.KindTeam {
				got += states[i].Spent
			}
		}
		if got == want {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("team counters hold %d of %d nanos", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	record(b, "ledger_ingest_entries_per_s", float64(events)/span, fmt.Sprintf("%d entries in %.2fs, projected", events, span))
}

// probe is one event on a counter of its own: the counter existing tells
// when the event was projected.
type probe struct {
	key          string
	sent, landed time.Time
}

// BenchmarkLedgerLag publishes CostComputed at 2k events/s to a running
// ledger for 10 s (2 s in a smoke run) and reports p50 and p99 of the time
// from an event's publish to its counter update, measured on one probe
// event in a hundred. Polling every few milliseconds makes each figure an
// upper bound.
func BenchmarkLedgerLag(b *testing.B) {
	const rate = 2000
	seconds := scaled(10, 2)
	st := harness.StartStack(b, harness.WithLogLevel("warn"))
	s := natsJS(b, st.NATSURL)
	rs := redisstore.New(st.Redis())
	ctx := context.Background()

	var probes []*probe
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			pollProbes(ctx, rs, probesSnapshot(&probes))
		}
	}()

	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	now := time.Now()
	for i := 0; i < rate*seconds; i++ {
		<-tick.C
		c := benchCost(i, now)
		var p *probe
		if i%100 == 0 {
			key := fmt.Sprintf("probe-%d", i)
			c.Usage.Identity.KeyId = key
			c.Usage.CounterKeys = []string{scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: key}, window.LifetimeSpec(), 0)}
			p = &probe{key: c.Usage.CounterKeys[0]}
		}
		data, err := proto.Marshal(c)
		if err != nil {
			b.Fatal(err)
		}
		if p != nil {
			p.sent = time.Now()
			probesMu.Lock()
			probes = append(probes, p)
			probesMu.Unlock()
		}
		if _, err := s.PublishAsync(js.CostSubject(c.GetUsage().GetIdentity().GetKeyId()), data, jetstream.WithMsgID(js.CostMsgID(c.GetEventId()))); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for pending(probesSnapshot(&probes)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-polled
	b.StopTimer()

	var lags []time.Duration
	for _, p := range probes {
		if p.landed.IsZero() {
			b.Fatalf("probe %s never landed", p.key)
		}
		lags = append(lags, p.landed.Sub(p.sent))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	p50, p99 := lags[len(lags)/2], lags[len(lags)*99/100]
	note := fmt.Sprintf("%d probes over %d s at %d events/s", len(lags), seconds, rate)
	record(b, "ledger_lag_p50_ms", ms(p50), note)
	record(b, "ledger_lag_p99_ms", ms(p99), note)
}

var probesMu sync.Mutex

func probesSnapshot(ps *[]*probe) []*probe {
	probesMu.Lock()
	defer probesMu.Unlock()
	return append([]*probe(nil), (*ps)...)
}

func pending(ps []*probe) int {
	probesMu.Lock()
	defer probesMu.Unlock()
	n := 0
	for _, p := range ps {
		if p.landed.IsZero() {
			n++
		}
	}
	return n
}

// pollProbes marks the probes whose counter now exists.
func pollProbes(ctx context.Context, rs *redisstore.Store, ps []*probe) {
	var wait []*probe
	var keys []string
	probesMu.Lock()
	for _, p := range ps {
		if p.landed.IsZero() {
			wait = append(wait, p)
			keys = append(keys, p.key)
		}
	}
	probesMu.Unlock()
	if len(keys) == 0 {
		return
	}
	states, err := rs.Read(ctx, keys)
	if err != nil {
		return
	}
	at := time.Now()
	probesMu.Lock()
	defer probesMu.Unlock()
	for i, st := range states {
		if st.Exists && st.Spent > 0 {
			wait[i].landed = at
		}
	}
}
