package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spendledger/spendledger/e2e/harness"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/migrations"
)

func TestMigrationsFromEmptyDatabaseTwice(t *testing.T) {
	t.Parallel()
	in := harness.StartInfra(t)
	pool := connect(t, in.PostgresURL)
	ctx := harness.Context(t)

	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('ledger_entries') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("ledger_entries exists before any migration: the database is not empty")
	}
	want, err := migrations.Load(migrations.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := migrations.Apply(ctx, pool, migrations.Ledger)
	if err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	if len(applied) != len(want) || len(applied) == 0 {
		t.Fatalf("first Apply applied %q, want all %d ledger migrations", applied, len(want))
	}
	again, err := migrations.Apply(ctx, pool, migrations.Ledger)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if len(again) != 0 {
		t.Fatalf("second Apply applied %q, want nothing", again)
	}
	// The schema is usable: the store's queries run against it.
	mustInsert(t, pool, entry(t, time.Now(), who{}, 42))
	r, err := pgstore.Sum(ctx, pool, scope.Scope{Kind: scope.KindKey, ID: "key-1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil || r.Nanos != 42 {
		t.Fatalf("Sum after migrations = %+v, %v; want 42 nanos", r, err)
	}
}

func TestInsertIdempotent(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	base := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	batch := make([]pgstore.Entry, 100)
	for i := range batch {
		batch[i] = mustEntry(t, costEvent(newID(), base.Add(time.Duration(i)*time.Second), who{}, int64(1000+i)), uint64(i+1))
	}

	first := mustInsert(t, pool, batch...)
	if len(first) != len(batch) {
		t.Fatalf("got %d results for %d entries", len(first), len(batch))
	}
	for i, r := range first {
		if !r.New || r.EventID != batch[i].EventID || r.TxID == 0 || r.TxID != first[0].TxID ||
			r.TotalNanos != batch[i].TotalNanos || r.StreamSeq != batch[i].StreamSeq {
			t.Fatalf("first insert result %d = %+v; want New in one transaction, entry %s", i, r, batch[i].EventID)
		}
	}
	for call := 2; call <= 3; call++ {
		// A redelivery may come in any order: results follow the given order.
		shuffled := slices.Clone(batch)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		res := mustInsert(t, pool, shuffled...)
		for i, r := range res {
			if r.New || r.EventID != shuffled[i].EventID || r.TxID != first[0].TxID || r.TotalNanos != shuffled[i].TotalNanos {
				t.Fatalf("call %d result %d = %+v; want the duplicate of %s with TxID %d", call, i, r, shuffled[i].EventID, first[0].TxID)
			}
		}
	}
	if n := countRows(t, pool); n != 100 {
		t.Fatalf("%d rows after inserting the same 100 entries 3 times", n)
	}
}

func TestInsertDuplicatesInsideBatch(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	a, b, c := entry(t, at, who{}, 100), entry(t, at, who{}, 200), entry(t, at, who{}, 300)
	// Re-priced before redelivery: same event id, different total. The first
	// occurrence wins and every result reports the stored figure.
	aRepriced := mustEntry(t, costEvent(a.EventID, at, who{}, 999), 0)

	res := mustInsert(t, pool, a, b, aRepriced, c, b)
	wantNew := []bool{true, true, false, true, false}
	for i, r := range res {
		if r.New != wantNew[i] || r.TxID != res[0].TxID {
			t.Errorf("result %d = %+v; want New=%v in the batch's transaction", i, r, wantNew[i])
		}
	}
	if res[2].TotalNanos != 100 {
		t.Errorf("in-batch duplicate reports total %d; want the stored 100", res[2].TotalNanos)
	}
	if n := countRows(t, pool); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}

	// A later batch mixing stored and new events: old ones keep their
	// transaction, new ones get this one.
	d := entry(t, at, who{}, 400)
	res2 := mustInsert(t, pool, aRepriced, d, d, c)
	if res2[0].New || res2[0].TxID != res[0].TxID || res2[0].TotalNanos != 100 {
		t.Errorf("stored duplicate: %+v; want not New, TxID %d, total 100", res2[0], res[0].TxID)
	}
	if !res2[1].New || res2[1].TxID == res[0].TxID || res2[2].New || res2[2].TxID != res2[1].TxID {
		t.Errorf("new entry and its repeat: %+v, %+v", res2[1], res2[2])
	}
	if res2[3].New || res2[3].TxID != res[0].TxID {
		t.Errorf("stored duplicate: %+v", res2[3])
	}
	sum, err := pgstore.Sum(harness.Context(t), pool, scope.Scope{Kind: scope.KindKey, ID: "key-1"}, at, at.Add(time.Second))
	if err != nil || sum.Nanos != 1000 || sum.Entries != 4 {
		t.Fatalf("Sum = %+v, %v; want 1000 nanos over 4 entries", sum, err)
	}
}

func TestInsertRejectsInvalidBatchWhole(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	good := entry(t, at, who{}, 1)
	bad := entry(t, at, who{}, 1)
	bad.InputTokens = -1
	_, err := pgstore.Insert(harness.Context(t), pool, []pgstore.Entry{good, bad})
	if !errors.Is(err, pgstore.ErrInvalidEntry) || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "input_tokens") {
		t.Fatalf("Insert with an invalid entry: %v; want ErrInvalidEntry naming entry 1 and input_tokens", err)
	}
	if n := countRows(t, pool); n != 0 {
		t.Fatalf("%d rows written by a rejected batch", n)
	}
}

// TestSumPerScopeKind checks Sum for every kind against the definition: an
// entry counts for a scope iff the scope is in its Identity().Scopes() and
// occurred_at is in [start, end).
func TestSumPerScopeKind(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)
	day := window.Spec{Duration: window.MustParse("1d"), Calendar: true}
	start, end := day.Bounds(day.Index(time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)))

	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	times := []time.Time{
		start, start.Add(-time.Microsecond), end, end.Add(-time.Microsecond),
		start.Add(time.Hour), start.Add(13 * time.Hour), end.Add(time.Hour), start.Add(-time.Hour),
	}
	var entries []pgstore.Entry
	for i := range 200 {
		w := who{
			key: pick("k1", "k2", "k3"), team: pick("", "t1", "t2"), user: pick("", "u1"), org: pick("", "o1", "o2"),
			endUser: pick("", "e1", "e2"), group: pick("g1", "g2"), deployment: pick("d1", "d2", "d3"), provider: pick("openai", "vertex_ai"),
		}
		for _, tag := range []string{"prod", "batch", "eu"} {
			if rng.IntN(3) == 0 {
				w.tags = append(w.tags, tag)
			}
		}
		c := costEvent(newID(), times[i%len(times)], w, int64(rng.IntN(1_000_000)))
		if i%7 == 0 {
			c = unpriced(c)
		}
		entries = append(entries, mustEntry(t, c, uint64(i+1)))
	}
	// Fixed cases, readable on their own.
	add := func(at time.Time, w who, nanos int64) {
		entries = append(entries, entry(t, at, w, nanos))
	}
	add(start, who{key: "kb"}, 1)                         // at start: in
	add(start.Add(-time.Microsecond), who{key: "kb"}, 10) // before start: out
	add(end.Add(-time.Microsecond), who{key: "kb"}, 100)  // last microsecond: in
	add(end, who{key: "kb"}, 1000)                        // at end: out
	add(start, who{key: "kt", tags: []string{"x", "y"}}, 1)
	add(start, who{key: "kt", tags: []string{"y"}}, 10)
	add(start, who{key: "kt", tags: []string{"z"}}, 100)
	add(start, who{key: "kt", tags: []string{"xy"}}, 1000)
	add(start, who{key: "km", group: "gpt-4o", endUser: "cust"}, 1)
	add(start, who{key: "km", group: "claude-opus-4-6", endUser: "cust"}, 10)
	add(start, who{key: "other", group: "gpt-4o", endUser: "cust"}, 100)
	mustInsert(t, pool, entries...)

	for _, tc := range []struct {
		s           scope.Scope
		nanos, rows int64
	}{
		{scope.Scope{Kind: scope.KindKey, ID: "kb"}, 101, 2},
		{scope.Scope{Kind: scope.KindTag, ID: "y"}, 11, 2},
		{scope.Scope{Kind: scope.KindTag, ID: "x"}, 1, 1},
		{scope.Scope{Kind: scope.KindKeyModel, ID: "km", ModelGroup: "gpt-4o"}, 1, 1},
		{scope.Scope{Kind: scope.KindEndUserModel, ID: "cust", ModelGroup: "gpt-4o"}, 101, 2},
		{scope.Scope{Kind: scope.KindKey, ID: "nobody"}, 0, 0},
	} {
		got, err := pgstore.Sum(ctx, pool, tc.s, start, end)
		if err != nil || got.Nanos != tc.nanos || got.Entries != tc.rows {
			t.Errorf("Sum(%v) = %+v, %v; want %d nanos over %d entries", tc.s, got, err, tc.nanos, tc.rows)
		}
	}

	type want struct{ nanos, rows, unpriced int64 }
	expect := map[scope.Scope]*want{}
	kinds := map[scope.Kind]bool{}
	for i := range entries {
		e := &entries[i]
		in := !e.OccurredAt.Before(start) && e.OccurredAt.Before(end)
		for _, s := range e.Identity().Scopes() {
			kinds[s.Kind] = true
			w := expect[s]
			if w == nil {
				w = &want{}
				expect[s] = w
			}
			if in {
				w.nanos += e.TotalNanos
				w.rows++
				if !e.Priced {
					w.unpriced++
				}
			}
		}
	}
	if len(kinds) != len(scope.Kinds()) {
		t.Fatalf("fixture covers %d scope kinds, want all %d", len(kinds), len(scope.Kinds()))
	}
	for s, w := range expect {
		got, err := pgstore.Sum(ctx, pool, s, start, end)
		if err != nil {
			t.Fatalf("Sum(%v): %v", s, err)
		}
		if got.Nanos != w.nanos || got.Entries != w.rows || got.Unpriced != w.unpriced {
			t.Errorf("Sum(%v) = %+v; want %d nanos, %d entries, %d unpriced", s, got, w.nanos, w.rows, w.unpriced)
		}
		if _, err := pgstore.ParseSnapshot(got.Snapshot); err != nil {
			t.Errorf("Sum(%v) snapshot: %v", s, err)
		}
	}

	if _, err := pgstore.Sum(ctx, pool, scope.Scope{Kind: scope.KindKeyModel, ID: "k1"}, start, end); err == nil {
		t.Error("Sum accepted a key_model scope without a model group")
	}
	if _, err := pgstore.Sum(ctx, pool, scope.Scope{Kind: scope.KindKey, ID: "k1"}, end, start); err == nil {
		t.Error("Sum accepted end before start")
	}
}

// TestSumSnapshotSemantics is the reseed contract of ADR 2: the sum holds
// exactly the entries whose TxID is visible in the returned snapshot.
func TestSumSnapshotSemantics(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	key := scope.Scope{Kind: scope.KindKey, ID: "key-1"}
	from, to := at.Add(-time.Hour), at.Add(time.Hour)

	committed := mustInsert(t, pool, entry(t, at, who{}, 1000))[0]

	// A concurrent ledger transaction that has inserted but not committed.
	pending, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pending.Rollback(context.Background()) }()
	pendingID := newID()
	var pendingTx uint64
	err = pending.QueryRow(ctx, `INSERT INTO ledger_entries (event_id, occurred_at, key_id, model_group, deployment_id,
		provider, backend_model, total_nanos, priced, catalog_version, stream_seq)
		VALUES ($1, $2, 'key-1', 'claude-opus-4-6', 'dep-1', 'vertex_ai', 'vertex_ai/claude-opus-4-6', 20, true, 'c', 99)
		RETURNING tx_id`, pendingID, at).Scan(&pendingTx)
	if err != nil {
		t.Fatal(err)
	}

	seed, err := pgstore.Sum(ctx, pool, key, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if seed.Nanos != 1000 || seed.Entries != 1 {
		t.Fatalf("Sum with an uncommitted entry = %+v; want only the committed 1000", seed)
	}
	visible := func(snap string, tx uint64) bool {
		t.Helper()
		v, err := pgstore.TxVisible(snap, tx)
		if err != nil {
			t.Fatal(err)
		}
		var pg bool
		if err := pool.QueryRow(ctx, "SELECT pg_visible_in_snapshot($1::xid8, $2::pg_snapshot)", tx, snap).Scan(&pg); err != nil {
			t.Fatal(err)
		}
		if v != pg {
			t.Fatalf("TxVisible(%q, %d) = %v, Postgres says %v", snap, tx, v, pg)
		}
		return v
	}
	if !visible(seed.Snapshot, committed.TxID) {
		t.Errorf("committed entry's tx %d not visible in snapshot %q", committed.TxID, seed.Snapshot)
	}
	if visible(seed.Snapshot, pendingTx) {
		t.Errorf("uncommitted tx %d visible in snapshot %q", pendingTx, seed.Snapshot)
	}

	if err := pending.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The seed's snapshot is fixed: projection must still apply the pending
	// entry, because the seed did not count it.
	if visible(seed.Snapshot, pendingTx) {
		t.Errorf("tx %d became visible in an old snapshot after commit", pendingTx)
	}
	// Its redelivery reports the transaction that inserted it.
	redelivered := mustEntry(t, costEvent(pendingID, at, who{}, 20), 99)
	if r := mustInsert(t, pool, redelivered)[0]; r.New || r.TxID != pendingTx {
		t.Errorf("redelivery of the pending entry = %+v; want TxID %d", r, pendingTx)
	}

	after, err := pgstore.Sum(ctx, pool, key, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if after.Nanos != 1020 || after.Entries != 2 {
		t.Fatalf("Sum after commit = %+v; want 1020 over 2 entries", after)
	}
	if !visible(after.Snapshot, pendingTx) || !visible(after.Snapshot, committed.TxID) {
		t.Errorf("entries committed before snapshot %q are not visible in it", after.Snapshot)
	}
}

// TestTxVisibleMatchesPostgres cross-checks TxVisible with
// pg_visible_in_snapshot on live and synthetic snapshots, and ParseSnapshot's
// rejections with pg_snapshot's input function.
func TestTxVisibleMatchesPostgres(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)

	// A live snapshot with transactions in progress. The last one finishes:
	// xmax is one past the latest finished transaction, so only transactions
	// started before it are listed as in progress.
	var open []pgx.Tx
	for i := range 4 {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		open = append(open, tx)
	}
	var live string
	if err := pool.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&live); err != nil {
		t.Fatal(err)
	}
	for _, tx := range open {
		_ = tx.Rollback(ctx)
	}
	s, err := pgstore.ParseSnapshot(live)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Xip) < 3 {
		t.Fatalf("live snapshot %q lists %d transactions in progress, want 3", live, len(s.Xip))
	}

	snaps := []string{live, "1:1:", "5:5:", "3:8:", "3:8:3", "3:8:7", "3:8:3,5,7", "3:8:4,4,6", "10:20:10,11,12,19", "1:2:1"}
	for xmin := uint64(1); xmin <= 6; xmin += 5 {
		for span := uint64(0); span <= 5; span++ {
			for mask := 0; mask < 1<<span; mask++ {
				xip := []string{}
				for b := range span {
					if mask&(1<<b) != 0 {
						xip = append(xip, fmt.Sprint(xmin+b))
					}
				}
				snaps = append(snaps, fmt.Sprintf("%d:%d:%s", xmin, xmin+span, strings.Join(xip, ",")))
			}
		}
	}
	checked := 0
	for _, snap := range snaps {
		s, err := pgstore.ParseSnapshot(snap)
		if err != nil {
			t.Fatalf("ParseSnapshot(%q): %v", snap, err)
		}
		lo := max(s.Xmin, 3) - 2
		rows, err := pool.Query(ctx, `SELECT t::bigint, pg_visible_in_snapshot(t::text::xid8, $1::pg_snapshot)
			FROM generate_series($2::bigint, $3::bigint) t`, snap, lo, s.Xmax+2)
		if err != nil {
			t.Fatal(err)
		}
		var txid int64
		var pg bool
		_, err = pgx.ForEachRow(rows, []any{&txid, &pg}, func() error {
			got, err := pgstore.TxVisible(snap, uint64(txid))
			if err != nil {
				return err
			}
			if got != pg {
				return fmt.Errorf("TxVisible(%q, %d) = %v, pg_visible_in_snapshot says %v", snap, txid, got, pg)
			}
			checked++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d (snapshot, txid) pairs agree with Postgres", checked)

	for _, bad := range []string{"", "1:2", "0:5:", "5:3:", "3:8:9", "3:8:2", "3:8:5,4", "a:b:", "3:8:5,,6", "1:2:3:4", "-1:2:", "3:9223372036854775808:"} {
		if _, err := pgstore.TxVisible(bad, 1); err == nil {
			t.Errorf("TxVisible accepted snapshot %q", bad)
		}
		var ignored string
		if err := pool.QueryRow(ctx, "SELECT $1::pg_snapshot::text", bad).Scan(&ignored); err == nil {
			t.Errorf("Postgres accepts snapshot %q (as %q) that ParseSnapshot rejects", bad, ignored)
		}
	}
}

func TestCorrectionsIncludedInSums(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	orig := entry(t, at, who{}, 1000)
	other := entry(t, at, who{}, 50)

	down := orig // a re-price found it 300 cheaper
	down.EventID, down.CorrectsEventID, down.StreamSeq = newID(), orig.EventID, 0
	down.TotalNanos = -300
	down.Components = []pgstore.Component{{Name: "input", Tokens: 0, CostNanos: -300}}
	up := other // and this one 25 dearer
	up.EventID, up.CorrectsEventID = newID(), other.EventID
	up.TotalNanos = 25
	up.Components = []pgstore.Component{{Name: "output", CostNanos: 25}}
	mustInsert(t, pool, orig, other, down, up)

	got, err := pgstore.Sum(ctx, pool, scope.Scope{Kind: scope.KindKey, ID: "key-1"}, at, at.Add(time.Second))
	if err != nil || got.Nanos != 1000+50-300+25 || got.Entries != 4 {
		t.Fatalf("Sum = %+v, %v; want 775 over 4 entries", got, err)
	}
	// A negative amount is only allowed in a correction.
	neg := entry(t, at, who{}, 0)
	neg.TotalNanos, neg.Components = -1, []pgstore.Component{{Name: "input", CostNanos: -1}}
	if _, err := pgstore.Insert(ctx, pool, []pgstore.Entry{neg}); !errors.Is(err, pgstore.ErrInvalidEntry) {
		t.Fatalf("negative original entry: %v; want ErrInvalidEntry", err)
	}
	self := down
	self.EventID, self.CorrectsEventID = newID(), ""
	self.CorrectsEventID = self.EventID
	if _, err := pgstore.Insert(ctx, pool, []pgstore.Entry{self}); !errors.Is(err, pgstore.ErrInvalidEntry) {
		t.Fatalf("self-correcting entry: %v; want ErrInvalidEntry", err)
	}
}

func TestSpendByModelGroupAndDay(t *testing.T) {
	t.Parallel()
	// A session in another time zone must not move day boundaries.
	pool := newDB(t, "timezone", "America/Los_Angeles")
	ctx := harness.Context(t)
	d := func(day, h, m, s, us int) time.Time { return time.Date(2026, 3, day, h, m, s, us*1000, time.UTC) }
	w1, w2 := who{key: "kd", group: "g1"}, who{key: "kd", group: "g2"}
	e200 := entry(t, d(2, 0, 0, 0, 0), w1, 200)
	corr := e200
	corr.EventID, corr.CorrectsEventID, corr.TotalNanos = newID(), e200.EventID, -50
	corr.Components = []pgstore.Component{{Name: "input", CostNanos: -50}}
	mustInsert(t, pool,
		entry(t, d(1, 23, 59, 59, 999999), w1, 100),
		e200, corr,
		entry(t, d(2, 12, 0, 0, 0), w2, 300),
		entry(t, d(3, 0, 0, 0, 0), w2, 400),              // at end: out
		entry(t, d(2, 8, 0, 0, 0), who{key: "other"}, 7), // other key
	)
	s := scope.Scope{Kind: scope.KindKey, ID: "kd"}
	from, to := d(1, 0, 0, 0, 0), d(3, 0, 0, 0, 0)

	groups, err := pgstore.SpendByModelGroup(ctx, pool, s, from, to)
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := []pgstore.GroupSpend{{ModelGroup: "g1", Nanos: 250, Entries: 3}, {ModelGroup: "g2", Nanos: 300, Entries: 1}}
	if !reflect.DeepEqual(groups, wantGroups) {
		t.Errorf("SpendByModelGroup = %+v; want %+v", groups, wantGroups)
	}
	days, err := pgstore.SpendByDay(ctx, pool, s, from, to)
	if err != nil {
		t.Fatal(err)
	}
	wantDays := []pgstore.DaySpend{{Day: d(1, 0, 0, 0, 0), Nanos: 100, Entries: 1}, {Day: d(2, 0, 0, 0, 0), Nanos: 450, Entries: 3}}
	if !reflect.DeepEqual(days, wantDays) {
		t.Errorf("SpendByDay = %+v; want %+v", days, wantDays)
	}
	tag, err := pgstore.SpendByModelGroup(ctx, pool, scope.Scope{Kind: scope.KindTag, ID: "none"}, from, to)
	if err != nil || len(tag) != 0 {
		t.Errorf("SpendByModelGroup for an unused tag = %+v, %v; want empty", tag, err)
	}
}

func TestListEntriesPaging(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)
	base := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	var mine []pgstore.Entry
	var all []pgstore.Entry
	for i := range 137 {
		// Groups of three share an occurred_at, so ties are broken by event id.
		e := mustEntry(t, unpricedEvery(costEvent(newID(), base.Add(time.Duration(i/3)*time.Minute), who{key: "kl", tags: []string{"b", "a"}}, int64(i)), i), uint64(i+1))
		mine = append(mine, e)
		all = append(all, e, entry(t, base.Add(time.Duration(i)*time.Minute), who{key: "other"}, 1))
	}
	outside := entry(t, base.Add(-time.Microsecond), who{key: "kl"}, 5)
	all = append(all, outside)
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	mustInsert(t, pool, all...)

	want := slices.Clone(mine)
	slices.SortFunc(want, func(a, b pgstore.Entry) int {
		if c := b.OccurredAt.Compare(a.OccurredAt); c != 0 {
			return c
		}
		return strings.Compare(b.EventID, a.EventID)
	})
	s := scope.Scope{Kind: scope.KindKey, ID: "kl"}
	from, to := base, base.Add(24*time.Hour)
	for _, size := range []int{1, 10, 46, 137, 1000} {
		var got []pgstore.Entry
		token, pages := "", 0
		for {
			p, err := pgstore.ListEntries(ctx, pool, s, from, to, size, token)
			if err != nil {
				t.Fatalf("page size %d, page %d: %v", size, pages, err)
			}
			pages++
			if len(p.Entries) > size || len(p.Entries) == 0 {
				t.Fatalf("page size %d: page %d has %d entries", size, pages, len(p.Entries))
			}
			got = append(got, p.Entries...)
			if p.NextPageToken == "" {
				break
			}
			token = p.NextPageToken
		}
		if wantPages := (len(want) + size - 1) / size; pages != wantPages {
			t.Errorf("page size %d: %d pages, want %d", size, pages, wantPages)
		}
		if len(got) != len(want) {
			t.Fatalf("page size %d: %d entries, want %d", size, len(got), len(want))
		}
		for i := range got {
			if got[i].TxID == 0 || got[i].RecordedAt.IsZero() {
				t.Fatalf("entry %d lacks database fields: %+v", i, got[i])
			}
			if !reflect.DeepEqual(comparable(got[i]), comparable(want[i])) {
				t.Fatalf("page size %d: entry %d =\n%+v\nwant\n%+v", size, i, comparable(got[i]), comparable(want[i]))
			}
		}
	}
	if _, err := pgstore.ListEntries(ctx, pool, s, from, to, 10, "not-a-token"); !errors.Is(err, pgstore.ErrBadPageToken) {
		t.Errorf("bad token: %v; want ErrBadPageToken", err)
	}
}

func unpricedEvery(c *eventsv1.CostComputed, i int) *eventsv1.CostComputed {
	if i%5 == 0 {
		return unpriced(c)
	}
	return c
}

// Entries round-trip exactly through Insert's encodings (array literals,
// components JSON, in-place arrays) and back, with text that an array
// literal must quote and counter keys that re-projection applies to.
func TestEntriesRoundTrip(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	want := map[string]pgstore.Entry{}
	// Tags that an array literal must quote: they round-trip and are summed.
	odd := []string{"t", `a,b`, `q"x`, `b\s`, `{c}`, "NULL", "ü 1"}
	keys := []string{
		scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: "k"}, window.LifetimeSpec(), 0),
		scope.CounterKey(scope.Scope{Kind: scope.KindTag, ID: `a,b`}, window.Spec{Duration: window.MustParse("1d"), Calendar: true}, 20522),
	}
	var batch []pgstore.Entry
	for seq := uint64(1); seq <= 50; seq++ {
		c := unpricedEvery(costEvent(newID(), at, who{tags: odd}, int64(seq)), int(seq))
		c.Usage.CounterKeys = keys
		c.Components[0].ExactCost = "0.018 \"quoted\" \\ \t"
		e := mustEntry(t, c, seq)
		want[e.EventID] = e
		batch = append(batch, e)
	}
	rand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	mustInsert(t, pool, batch[:20]...)
	mustInsert(t, pool, batch[20:]...)
	plain := entry(t, at, who{}, 5) // stream_seq 0, no tags or counters
	want[plain.EventID] = plain
	mustInsert(t, pool, plain)
	// A batch holding stored events goes in by INSERT ... ON CONFLICT, not
	// COPY: its new entry must round-trip the same way.
	late := entry(t, at, who{}, 6)
	want[late.EventID] = late
	mustInsert(t, pool, append(batch[:3:3], late)...)

	page, err := pgstore.ListEntries(ctx, pool, scope.Scope{Kind: scope.KindKey, ID: "key-1"}, at, at.Add(time.Second), 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(page.Entries), len(want))
	}
	for _, got := range page.Entries {
		if !reflect.DeepEqual(comparable(got), comparable(want[got.EventID])) {
			t.Fatalf("entry read back =\n%+v\nwant\n%+v", comparable(got), comparable(want[got.EventID]))
		}
	}
	for _, tag := range odd {
		sum, err := pgstore.Sum(ctx, pool, scope.Scope{Kind: scope.KindTag, ID: tag}, at, at.Add(time.Second))
		if err != nil || sum.Nanos != 50*51/2 || sum.Entries != 50 {
			t.Errorf("Sum(tag %q) = %+v, %v; want 1275 over 50 entries", tag, sum, err)
		}
	}
}

func TestEntryFromCostRejectsInvalid(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	valid := func() *eventsv1.CostComputed {
		return costEvent(newID(), at, who{team: "t1", tags: []string{"b", "a", "b", ""}}, 1000)
	}

	e, err := pgstore.EntryFromCost(valid(), 7)
	if err != nil {
		t.Fatalf("valid event rejected: %v", err)
	}
	if !reflect.DeepEqual(e.Tags, []string{"a", "b"}) || e.StreamSeq != 7 || !e.Priced || e.TotalNanos != 1000 ||
		len(e.Components) != 2 || e.Components[0].Source != pgstore.SourceCatalog || e.TeamID != "t1" || e.CacheReadTokens != 7 {
		t.Errorf("EntryFromCost mapped %+v", e)
	}
	up, err := pgstore.EntryFromCost(unpriced(valid()), 1)
	if err != nil || up.Priced || !reflect.DeepEqual(up.UnknownComponents, []string{"cache_read"}) {
		t.Errorf("unpriced event: %+v, %v", up, err)
	}

	for _, tc := range []struct {
		field  string
		mutate func(c *eventsv1.CostComputed)
	}{
		{"event_id", func(c *eventsv1.CostComputed) { c.EventId, c.Usage.EventId = "not-a-uuid", "" }},
		{"event_id", func(c *eventsv1.CostComputed) { c.EventId, c.Usage.EventId = "", "" }},
		{"usage.event_id", func(c *eventsv1.CostComputed) { c.Usage.EventId = newID() }},
		{"usage", func(c *eventsv1.CostComputed) { c.Usage = nil }},
		{"key_id", func(c *eventsv1.CostComputed) { c.Usage.Identity.KeyId = "" }},
		{"key_id", func(c *eventsv1.CostComputed) { c.Usage.Identity = nil }},
		{"model_group", func(c *eventsv1.CostComputed) { c.Usage.Route.ModelGroup = "" }},
		{"deployment_id", func(c *eventsv1.CostComputed) { c.Usage.Route.DeploymentId = "" }},
		{"input_tokens", func(c *eventsv1.CostComputed) { c.Usage.Tokens.Input = -1 }},
		{"reasoning_tokens", func(c *eventsv1.CostComputed) { c.Usage.Tokens.Reasoning = -5 }},
		{"total_nanos", func(c *eventsv1.CostComputed) { c.TotalNanos = -1; c.Components = nil }},
		{"total_nanos", func(c *eventsv1.CostComputed) { c.TotalNanos++ }},
		{"components[1].cost_nanos", func(c *eventsv1.CostComputed) { c.Components[1].CostNanos = -1 }},
		{"usage.occurred_at", func(c *eventsv1.CostComputed) { c.Usage.OccurredAt = nil }},
		{"status", func(c *eventsv1.CostComputed) { c.Status = eventsv1.PricingStatus_PRICING_STATUS_UNSPECIFIED }},
		{"status", func(c *eventsv1.CostComputed) { c.UnknownComponents = []string{"cache_read"} }},
		{"status", func(c *eventsv1.CostComputed) { c.Status = eventsv1.PricingStatus_PRICING_STATUS_UNPRICED }},
		{"team", func(c *eventsv1.CostComputed) { c.Usage.Identity.TeamId = " t1" }},
		{"backend_model", func(c *eventsv1.CostComputed) { c.Usage.Route.BackendModel = "a\x00b" }},
	} {
		c := valid()
		tc.mutate(c)
		_, err := pgstore.EntryFromCost(c, 1)
		if !errors.Is(err, pgstore.ErrInvalidEntry) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v; want ErrInvalidEntry naming %s", tc.field, err, tc.field)
		}
	}
	if _, err := pgstore.EntryFromCost(nil, 1); !errors.Is(err, pgstore.ErrInvalidEntry) {
		t.Errorf("nil event: %v", err)
	}
}

func TestAppendOnlyTriggers(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)
	e := entry(t, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), who{}, 1000)
	mustInsert(t, pool, e)
	for _, sql := range []string{
		"UPDATE ledger_entries SET total_nanos = 0",
		"UPDATE ledger_entries SET recorded_at = now() WHERE event_id = '" + e.EventID + "'",
		"DELETE FROM ledger_entries",
		"DELETE FROM ledger_entries WHERE event_id = '" + e.EventID + "'",
		"TRUNCATE ledger_entries",
		// An upsert that would rewrite a row is an UPDATE too.
		"INSERT INTO ledger_entries (event_id, occurred_at, key_id, model_group, deployment_id, provider, backend_model, total_nanos, priced, catalog_version) " +
			"VALUES ('" + e.EventID + "', now(), 'k', 'g', 'd', 'p', 'b', 0, true, 'c') ON CONFLICT (event_id) DO UPDATE SET total_nanos = 0",
	} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "append-only") {
			t.Errorf("%s: %v; want the append-only trigger's insufficient_privilege error", sql, err)
		}
	}
	var total int64
	if err := pool.QueryRow(ctx, "SELECT total_nanos FROM ledger_entries WHERE event_id = $1", e.EventID).Scan(&total); err != nil || total != 1000 {
		t.Fatalf("row after refused writes: total %d, %v; want 1000 unchanged", total, err)
	}
	if n := countRows(t, pool); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}
