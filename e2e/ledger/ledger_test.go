// Package ledger_test runs the ledger service against real JetStream,
// Postgres and Redis: costs in on COSTS, entries in Postgres, counters in
// Redis, and `ledger verify` proving the two equal, through redelivery, a
// SIGKILL of the ledger and a Redis flush.
package ledger_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
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

func TestMain(m *testing.M) { harness.Main(m) }

// fixture publishes CostComputed events for one key in one team, each with
// the counter keys admission would have returned.
type fixture struct {
	t       *testing.T
	st      *harness.Stack
	js      jetstream.JetStream
	pool    *pgxpool.Pool
	keyID   string
	counter []string
	sent    atomic.Int64 // nano-USD published, distinct events only
	n       atomic.Int64 // distinct events published
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := harness.StartStack(t)
	f := &fixture{t: t, st: st, js: harness.JetStream(t, st.NATSURL), pool: harness.Pool(t, st.PostgresURL), keyID: "key-" + uuid.NewString()[:8]}
	day := window.Spec{Duration: window.MustParse("1d"), Calendar: true}
	f.counter = []string{
		scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: f.keyID}, window.LifetimeSpec(), 0),
		scope.CounterKey(scope.Scope{Kind: scope.KindTeam, ID: "team-e2e"}, day, day.Index(time.Now())),
	}
	return f
}

// cost builds a distinct event costing nanos.
func (f *fixture) cost(nanos int64) *eventsv1.CostComputed {
	id, _ := uuid.NewV7()
	return harness.PricedCost(&eventsv1.UsageRecorded{
		EventId:     id.String(),
		Identity:    &eventsv1.Identity{KeyId: f.keyID, TeamId: "team-e2e"},
		Route:       &eventsv1.Route{ModelGroup: "gpt-4o", DeploymentId: "d1", Provider: "openai", BackendModel: "openai/gpt-4o"},
		Tokens:      &eventsv1.TokenCounts{Input: nanos},
		OccurredAt:  timestamppb.Now(),
		CounterKeys: f.counter,
	})
}

func (f *fixture) publish(c *eventsv1.CostComputed, msgID string) {
	f.t.Helper()
	harness.Publish(f.t, f.js, js.CostSubject(f.keyID), msgID, c)
}

// send publishes n new events of 1..n × 1000 nanos.
func (f *fixture) send(n int) []*eventsv1.CostComputed {
	var out []*eventsv1.CostComputed
	for i := 1; i <= n; i++ {
		c := f.cost(int64(i) * 1000)
		f.publish(c, js.CostMsgID(c.GetEventId()))
		f.sent.Add(c.GetTotalNanos())
		f.n.Add(1)
		out = append(out, c)
	}
	return out
}

// settle waits until the ledger holds every distinct event once and each
// counter equals the total sent.
func (f *fixture) settle() {
	f.t.Helper()
	ctx := context.Background()
	rs := redisstore.New(f.st.Redis())
	deadline := time.Now().Add(60 * time.Second)
	var rows, sum int64
	var states []redisstore.State
	for time.Now().Before(deadline) {
		err := f.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(total_nanos), 0)::bigint FROM ledger_entries WHERE key_id = $1`, f.keyID).Scan(&rows, &sum)
		if err == nil && rows == f.n.Load() && sum == f.sent.Load() {
			states, err = rs.Read(ctx, f.counter)
			if err == nil && states[0].Spent == sum && states[1].Spent == sum {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("not settled: ledger %d rows / %d nanos, counters %+v; want %d rows / %d nanos on each counter",
		rows, sum, states, f.n.Load(), f.sent.Load())
}

func (f *fixture) verify() {
	f.t.Helper()
	code, out := f.st.Run("ledger", "verify")
	if code != 0 || !strings.Contains(out, "0 differ") {
		f.t.Fatalf("ledger verify exited %d:\n%s", code, out)
	}
}

func TestCostsLandOnceInLedgerAndCounters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	events := f.send(50)
	f.settle()

	// Redelivery: the same events again under other message ids, any number
	// of times, change nothing.
	for round := range 3 {
		for _, c := range events[:10] {
			f.publish(c, fmt.Sprintf("%s-again-%d", c.GetEventId(), round))
		}
	}
	f.send(5)
	f.settle()
	f.verify()
}

func TestLedgerKilledMidStreamLosesNothingAndCountsNothingTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ledger := f.st.Service("ledger")

	done := make(chan struct{})
	go func() {
		defer close(done)
		f.send(400)
	}()
	time.Sleep(150 * time.Millisecond)
	ledger.Kill()
	time.Sleep(300 * time.Millisecond)
	ledger.Start()
	<-done
	f.settle()
	f.verify()
}

func TestRedisFlushedMidStreamRecoversFromTheLedger(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.send(100)
	f.settle()

	done := make(chan struct{})
	go func() {
		defer close(done)
		f.send(200)
	}()
	time.Sleep(100 * time.Millisecond)
	f.st.FlushRedis()
	<-done
	// A counter flushed away is reseeded from the ledger on its next event;
	// send one more so both counters see one after the flush.
	f.send(1)
	f.settle()
	f.verify()
}

func TestVerifyCatchesACounterThatDisagrees(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.send(5)
	f.settle()
	// Corrupt one counter behind the ledger's back: verify must say so.
	if err := f.st.Redis().HIncrBy(context.Background(), f.counter[0], "spent", 7).Err(); err != nil {
		t.Fatal(err)
	}
	code, out := f.st.Run("ledger", "verify")
	if code != 1 || !strings.Contains(out, f.counter[0]) || !strings.Contains(out, "off by 7") {
		t.Fatalf("verify exited %d; want 1 naming the counter off by 7:\n%s", code, out)
	}
}

// A graceful stop mid-stream finishes the batch whose projection is still
// running (the ledger projects batch N while it inserts batch N+1): it is
// projected and acked before the stores close, not acked as a gap that dies
// with the process. Nothing is lost or counted twice across the restart.
func TestLedgerStoppedMidStreamFinishesItsBatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ledger := f.st.Service("ledger")
	for range 3 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.send(300)
		}()
		time.Sleep(100 * time.Millisecond)
		ledger.Stop()
		ledger.Start()
		<-done
	}
	f.settle()
	f.verify()
	// Stopped gracefully, it never projected less than it acked: nothing
	// was left for the catch-up.
	if logs := readLog(t, ledger.LogPath()); strings.Contains(logs, "projection failed") {
		t.Fatalf("a projection failed around the stops:\n%s", logs)
	}
}

// Two ledger instances share the durable consumer: batches of both
// instances insert and project at once, with redeliveries, and every cost
// still lands once in the ledger and once on each counter.
func TestTwoLedgerInstancesCountEachCostOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.st.StartReplica("ledger")
	events := f.send(300)
	for round := range 2 {
		for _, c := range events[:100] {
			f.publish(c, fmt.Sprintf("%s-again-%d", c.GetEventId(), round))
		}
	}
	f.send(100)
	f.settle()
	f.verify()
}

// Redis down mid-stream: the ledger keeps appending and acking, marks what
// it could not project pending in Postgres, and catches up (batch by batch)
// once Redis is back — here empty, so the counters are reseeded from the
// ledger on the way.
func TestRedisDownMidStreamCatchesUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.send(50)
	f.settle()
	f.redisOutage(200)
	f.st.StartRedis()
	f.caughtUpBy(f.st.Service("ledger"))
}

// Redis down, and the ledger SIGKILLed and restarted while it still is: the
// entries it could not project are in the Postgres pending-projection table,
// not in the dead process, so the restarted ledger catches the counters up
// by itself when Redis returns — no `ledger replay projections` — and every
// event counts exactly once.
func TestRedisDownLedgerKilledCatchesUpAfterRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ledger := f.st.Service("ledger")
	f.send(50)
	f.settle()

	f.redisOutage(200)
	ledger.Kill()
	// Restarted with Redis still down: not ready (no Redis), but consuming.
	ledger.StartNoWait()
	f.send(100)
	f.waitRows(f.n.Load())

	f.st.StartRedis()
	f.caughtUpBy(ledger)
}

// Two instances record pending projections during a Redis outage; one is
// killed and stays dead. The survivor drains the dead one's backlog too:
// it is in Postgres, not in the process that wrote it.
func TestAnotherInstanceCatchesUpAKilledInstancesBacklog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	survivor := f.st.StartReplica("ledger")
	f.send(50)
	f.settle()

	f.redisOutage(300)
	f.st.Service("ledger").Kill()
	f.st.StartRedis()
	f.caughtUpBy(survivor)
}

// redisOutage stops Redis, sends n events, and waits until the ledger holds
// them all and has recorded pending projections in Postgres.
func (f *fixture) redisOutage(n int) {
	f.t.Helper()
	f.st.StopRedis()
	f.send(n)
	f.waitRows(f.n.Load())
	// The projections fail (after go-redis's retries) and are marked pending.
	for deadline := time.Now().Add(30 * time.Second); f.pendingRows() == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if f.pendingRows() == 0 {
		f.t.Fatal("no pending projections recorded in Postgres while Redis is down")
	}
}

// caughtUpBy waits, Redis being back, until the counters equal the ledger
// with nothing left pending, and checks that ledger instance did the
// catch-up by itself (no replay command runs here).
func (f *fixture) caughtUpBy(ledger *harness.Service) {
	f.t.Helper()
	f.settle()
	f.verify()
	for deadline := time.Now().Add(10 * time.Second); f.pendingRows() > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if n := f.pendingRows(); n != 0 {
		f.t.Fatalf("%d projections still pending after catch-up", n)
	}
	if logs := readLog(f.t, ledger.LogPath()); !strings.Contains(logs, "caught up projections from the ledger") {
		f.t.Fatalf("%s never logged a catch-up:\n%s", ledger.Name, logs)
	}
}

// An event that decodes but can never be a ledger row (here a malformed
// counter key) is dead-lettered with the reason, alone: the valid events of
// its batch are committed and counted once.
func TestInvalidEntryIsDeadLetteredAndItsBatchLands(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bad := f.cost(999)
	bad.Usage.CounterKeys = []string{"not-a-counter-key"}
	f.send(20)
	f.publish(bad, js.CostMsgID(bad.GetEventId()))
	f.send(20)
	f.settle() // bad is neither in the ledger nor on the counters
	f.verify()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dlq, err := f.js.OrderedConsumer(ctx, js.DeadLetterStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{js.DeadLetterSubject(js.CostsStream, "ledger")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := dlq.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("no dead letter for %s: %v", bad.GetEventId(), err)
		}
		var dl eventsv1.DeadLetter
		if err := proto.Unmarshal(m.Data(), &dl); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(dl.GetReason(), bad.GetEventId()) {
			if !strings.Contains(dl.GetReason(), "counter_keys") {
				t.Fatalf("dead letter reason %q does not name counter_keys", dl.GetReason())
			}
			return
		}
	}
}

// waitRows waits until the ledger holds n entries of the fixture's key.
func (f *fixture) waitRows(n int64) {
	f.t.Helper()
	var rows int64
	for deadline := time.Now().Add(30 * time.Second); rows < n && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_ = f.pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger_entries WHERE key_id = $1`, f.keyID).Scan(&rows)
	}
	if rows < n {
		f.t.Fatalf("ledger holds %d of %d entries", rows, n)
	}
}

// pendingRows counts the fixture's entries waiting in the pending-projection table.
func (f *fixture) pendingRows() int64 {
	f.t.Helper()
	var n int64
	err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger_projection_pending p
		JOIN ledger_entries e USING (event_id) WHERE e.key_id = $1`, f.keyID).Scan(&n)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
