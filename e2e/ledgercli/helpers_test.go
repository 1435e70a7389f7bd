// Package ledgercli_test runs the ledger's operator commands (`ledger replay
// projections`, `ledger replay ledger`, `ledger reprice`, `ledger verify`)
// against a real stack: NATS JetStream, Postgres, Redis and the services.
package ledgercli_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
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

// env is one test's stack with clients on its stores.
type env struct {
	t    *testing.T
	st   *harness.Stack
	js   jetstream.JetStream
	pool *pgxpool.Pool
	rs   *redisstore.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := harness.StartStack(t, harness.WithLogLevel("info"))
	return &env{t: t, st: st, js: harness.JetStream(t, st.NATSURL), pool: harness.Pool(t, st.PostgresURL), rs: redisstore.New(st.Redis())}
}

var day = window.Spec{Duration: window.MustParse("1d"), Calendar: true}

// counterKeys are the counters admission would name for a key in a team
// with budgets on the key (lifetime), the key × model group (lifetime) and
// the team (calendar day).
func counterKeys(key, team, group string, at time.Time) []string {
	return []string{
		scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: key}, window.LifetimeSpec(), 0),
		scope.CounterKey(scope.Scope{Kind: scope.KindKeyModel, ID: key, ModelGroup: group}, window.LifetimeSpec(), 0),
		scope.CounterKey(scope.Scope{Kind: scope.KindTeam, ID: team}, day, day.Index(at)),
	}
}

// usage is a UsageRecorded as the gateway publishes it.
func usage(key, team, group, provider, backend string, tok *eventsv1.TokenCounts) *eventsv1.UsageRecorded {
	id, _ := uuid.NewV7()
	now := time.Now()
	return &eventsv1.UsageRecorded{
		EventId:     id.String(),
		RequestId:   "req-" + id.String(),
		Identity:    &eventsv1.Identity{KeyId: key, TeamId: team},
		Route:       &eventsv1.Route{ModelGroup: group, DeploymentId: "dep-" + group, Provider: provider, BackendModel: backend},
		Tokens:      tok,
		OccurredAt:  timestamppb.New(now),
		CompletedAt: timestamppb.New(now),
		CounterKeys: counterKeys(key, team, group, now),
	}
}

// cost is a priced CostComputed of nanos (input tokens at 1 nano each).
func cost(key, team string, nanos int64) *eventsv1.CostComputed {
	return harness.PricedCost(usage(key, team, "gpt-4o", "openai", "gpt-4o", &eventsv1.TokenCounts{Input: nanos}))
}

func (e *env) publish(subject, msgID string, m proto.Message) {
	e.t.Helper()
	harness.Publish(e.t, e.js, subject, msgID, m)
}

// publishCosts publishes n distinct priced events spread over keys and teams
// and returns their total.
func (e *env) publishCosts(n int) int64 {
	e.t.Helper()
	var sum int64
	for i := range n {
		key, team := fmt.Sprintf("key-%d", i%7), fmt.Sprintf("team-%d", i%3)
		c := cost(key, team, int64(1000+i*37))
		e.publish(js.CostSubject(key), js.CostMsgID(c.GetEventId()), c)
		sum += c.GetTotalNanos()
	}
	return sum
}

// waitLedger waits until the ledger holds rows entries summing to nanos.
func (e *env) waitLedger(db *pgxpool.Pool, rows, nanos int64) {
	e.t.Helper()
	var n, sum int64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		err := db.QueryRow(context.Background(), `SELECT count(*), coalesce(sum(total_nanos), 0)::bigint FROM ledger_entries`).Scan(&n, &sum)
		if err == nil && n == rows && sum == nanos {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("ledger holds %d entries / %d nanos, want %d / %d", n, sum, rows, nanos)
}

// verify runs `ledger verify` until it passes: a projection may trail its
// row's commit by a moment.
func (e *env) verify() {
	e.t.Helper()
	var out string
	for range 50 {
		var code int
		code, out = e.st.Run("ledger", "verify")
		if code == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("ledger verify fails:\n%s", out)
}

// counters reads every live counter.
func (e *env) counters() map[string]redisstore.State {
	e.t.Helper()
	ctx := context.Background()
	var keys []string
	if err := e.rs.ScanCounters(ctx, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(keys)
	keys = compactSorted(keys)
	out := map[string]redisstore.State{}
	for _, k := range keys {
		st, err := e.rs.Read(ctx, []string{k})
		if err != nil {
			e.t.Fatal(err)
		}
		out[k] = st[0]
	}
	return out
}

func compactSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// run runs a ledger command that must succeed and returns its output.
func (e *env) run(args ...string) string {
	e.t.Helper()
	code, out := e.st.Run("ledger", args...)
	if code != 0 {
		e.t.Fatalf("ledger %v: exit %d\n%s", args, code, out)
	}
	return out
}

// number returns the integer after label in a command's output.
func number(t *testing.T, out, label string) int64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(label) + `\s+(-?\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in output:\n%s", label, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}
