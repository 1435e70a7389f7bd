package ledgercli_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/e2e/harness"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/migrations"
)

// Flushing Redis and replaying the projections reproduces every counter
// exactly; a counter that went wrong, and one holding a live reservation, are
// rebuilt to the ledger's figure (the reservation is dropped, as -help says).
func TestReplayProjectionsRebuildsEveryCounter(t *testing.T) {
	e := newEnv(t)
	const n = 300
	total := e.publishCosts(n)
	e.waitLedger(e.pool, n, total)
	e.verify()
	before := e.counters()
	// 7 keys × (lifetime + key×model) + 3 teams × today.
	if len(before) != 7*2+3 {
		t.Fatalf("%d counters before, want %d", len(before), 7*2+3)
	}

	e.st.FlushRedis()
	if got := e.counters(); len(got) != 0 {
		t.Fatalf("%d counters survived the flush", len(got))
	}
	out := e.run("replay", "projections")
	t.Logf("ledger replay projections:\n%s", out)
	if !regexp.MustCompile(`(?m)^17 counters: 17 rebuilt from the ledger, 0 expired .*, 0 failed`).MatchString(out) {
		t.Fatalf("replay projections output:\n%s", out)
	}
	after := e.counters()
	if len(after) != len(before) {
		t.Fatalf("%d counters after replay, %d before", len(after), len(before))
	}
	for k, b := range before {
		a := after[k]
		if !a.Exists || a.Spent != b.Spent || a.Reserved != 0 || a.Held != 0 {
			t.Errorf("%s: after replay %+v, before %+v", k, a, b)
		}
	}
	e.verify()

	// A wrong counter and a live reservation.
	ctx := context.Background()
	keys := counterKeys("key-0", "team-0", "gpt-4o", time.Now())
	if err := e.st.Redis().HIncrBy(ctx, keys[0], "spent", 12345).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := e.rs.Reserve(ctx, redisstore.ReserveRequest{ID: "res-live", Amount: 500, TTL: time.Hour,
		Counters: []redisstore.Counter{{Key: keys[2], Limit: 1 << 60}}})
	if err != nil || !res.Admitted {
		t.Fatalf("reserve: %+v, %v", res, err)
	}
	if code, out := e.st.Run("ledger", "verify"); code != 1 || !strings.Contains(out, keys[0]) {
		t.Fatalf("verify must report the tampered counter: exit %d\n%s", code, out)
	}
	e.run("replay", "projections", "-concurrency", "3")
	again := e.counters()
	for k, b := range before {
		if a := again[k]; a.Spent != b.Spent || a.Reserved != 0 {
			t.Errorf("%s: after the second replay %+v, want spent %d and no reservation", k, a, b.Spent)
		}
	}
	e.verify()
}

// Replaying COSTS into a fresh database rebuilds the same ledger: the same
// sum for every counter's scope and window, the same rows. It skips (and
// reports) a message that can never be an entry, and is idempotent, also
// against the live ledger.
func TestReplayLedgerRebuildsTheLedger(t *testing.T) {
	e := newEnv(t)
	const n = 250
	total := e.publishCosts(n)
	// One message no ledger can take: the service dead-letters it, the
	// replay reports and skips it.
	harness.PublishRaw(t, e.js, js.CostSubject("key-x"), "cost:garbage", []byte("not a protobuf \xff\xff"))
	e.waitLedger(e.pool, n, total)

	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `CREATE DATABASE replay_copy`); err != nil {
		t.Fatal(err)
	}
	copyURL := strings.Replace(e.st.PostgresURL, "/spendledger?", "/replay_copy?", 1)
	if copyURL == e.st.PostgresURL {
		t.Fatalf("cannot derive a second database URL from %s", e.st.PostgresURL)
	}
	copyDB, err := pgxpool.New(ctx, copyURL)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	if _, err := migrations.Apply(ctx, copyDB, migrations.Ledger); err != nil {
		t.Fatal(err)
	}

	code, out := e.st.Run("ledger", "replay", "ledger", "--database-url", copyURL)
	if code != 0 {
		t.Fatalf("replay ledger: exit %d\n%s", code, out)
	}
	t.Logf("ledger replay ledger:\n%s", out)
	if !strings.Contains(out, fmt.Sprintf("entries inserted: %d, already in the ledger: 0, invalid and skipped: 1", n)) ||
		!strings.Contains(out, "skipped: undecodable CostComputed") {
		t.Fatalf("replay ledger output:\n%s", out)
	}
	e.waitLedger(copyDB, n, total)

	// Every counter's scope and window sums the same in both.
	var keys []string
	if err := pgstore.CounterKeys(ctx, e.pool, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 17 {
		t.Fatalf("%d counter keys in the ledger, want 17", len(keys))
	}
	for _, k := range keys {
		s, spec, idx, err := scope.ParseCounterKey(k)
		if err != nil {
			t.Fatal(err)
		}
		start, end := spec.Bounds(idx)
		a, err1 := pgstore.Sum(ctx, e.pool, s, start, end)
		b, err2 := pgstore.Sum(ctx, copyDB, s, start, end)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if a.Nanos != b.Nanos || a.Entries != b.Entries {
			t.Errorf("%s: live ledger %d nanos / %d entries, replayed %d / %d", k, a.Nanos, a.Entries, b.Nanos, b.Entries)
		}
	}
	// Row for row: same events, costs, stream sequences and counter keys.
	rows := func(db *pgxpool.Pool) string {
		var s string
		err := db.QueryRow(ctx, `SELECT md5(string_agg(event_id::text || total_nanos || stream_seq || counter_keys::text || occurred_at::text, ',' ORDER BY event_id)) FROM ledger_entries`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if rows(e.pool) != rows(copyDB) {
		t.Error("the replayed rows differ from the live ledger's")
	}

	// Idempotent: again into the copy, and into the live ledger while the
	// ledger service runs.
	for _, url := range []string{copyURL, e.st.PostgresURL} {
		code, out := e.st.Run("ledger", "replay", "ledger", "--database-url", url)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("entries inserted: 0, already in the ledger: %d, invalid and skipped: 1", n)) {
			t.Fatalf("second replay into %s: exit %d\n%s", url, code, out)
		}
	}
	e.waitLedger(e.pool, n, total)
	e.verify()
}
