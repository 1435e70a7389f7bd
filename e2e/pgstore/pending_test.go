package pgstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

// The pending-projection backlog: marks written with the entries or after
// them, the smallest sequence kept, claims that skip rows another drainer
// holds, and only projected rows deleted.
func TestPendingProjectionsMarkClaimAndDrain(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	key := scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: "key-1"}, window.LifetimeSpec(), 0)
	a, b, c := entry(t, at, who{}, 1000), entry(t, at, who{}, 2000), entry(t, at, who{}, 3000)
	a.CounterKeys, b.CounterKeys = []string{key}, []string{key}
	a.StreamSeq, b.StreamSeq, c.StreamSeq = 10, 11, 12

	ins, err := pgstore.InsertPending(ctx, pool, []pgstore.Entry{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	stats := func(wantN int64, wantMin uint64) {
		t.Helper()
		n, lo, err := pgstore.PendingStats(ctx, pool)
		if err != nil || n != wantN || lo != wantMin {
			t.Fatalf("pending %d from seq %d (%v); want %d from %d", n, lo, err, wantN, wantMin)
		}
	}
	stats(2, 10) // c has no counter: nothing to project

	// A later failed delivery of a at a lower sequence lowers its mark; a
	// higher one for b leaves it; a repeated mark is no error.
	marks := []pgstore.PendingMark{{EventID: a.EventID, StreamSeq: 5}, {EventID: b.EventID, StreamSeq: 20}, {EventID: a.EventID, StreamSeq: 7}}
	if err := pgstore.MarkPending(ctx, pool, marks); err != nil {
		t.Fatal(err)
	}
	stats(2, 5)

	// The first drainer claims a (oldest) and holds it while a second one
	// drains: the second gets only b, and projects it.
	var inner []pgstore.Pending
	claimed, done, err := pgstore.DrainPending(ctx, pool, 1, func(ps []pgstore.Pending) []bool {
		if len(ps) != 1 || ps[0].EventID != a.EventID || ps[0].StreamSeq != 5 {
			t.Errorf("first claim %+v; want only %s at seq 5", ps, a.EventID)
		}
		n, d, err := pgstore.DrainPending(ctx, pool, 10, func(ps []pgstore.Pending) []bool {
			inner = ps
			return []bool{true}
		})
		if err != nil || n != 1 || d != 1 {
			t.Errorf("second drainer claimed %d, drained %d (%v); want 1 and 1", n, d, err)
		}
		return []bool{false} // a's projection failed: it stays pending
	})
	if err != nil || claimed != 1 || done != 0 {
		t.Fatalf("first drainer claimed %d, drained %d (%v); want 1 and 0", claimed, done, err)
	}
	want := pgstore.Pending{EventID: b.EventID, StreamSeq: 11, TxID: ins[1].TxID, TotalNanos: 2000,
		ReservationID: b.ReservationID, CounterKeys: []string{key}}
	if len(inner) != 1 || !equalPending(inner[0], want) {
		t.Fatalf("second claim %+v; want [%+v]", inner, want)
	}
	stats(1, 5)

	claimed, done, err = pgstore.DrainPending(ctx, pool, 10, func(ps []pgstore.Pending) []bool { return []bool{true} })
	if err != nil || claimed != 1 || done != 1 {
		t.Fatalf("claimed %d, drained %d (%v); want 1 and 1", claimed, done, err)
	}
	stats(0, 0)
	if n := countRows(t, pool); n != 3 {
		t.Fatalf("%d ledger rows; want 3 (draining never touches entries)", n)
	}
}

func equalPending(a, b pgstore.Pending) bool {
	return slices.Equal(a.CounterKeys, b.CounterKeys) && a.EventID == b.EventID && a.StreamSeq == b.StreamSeq &&
		a.TxID == b.TxID && a.TotalNanos == b.TotalNanos && a.ReservationID == b.ReservationID
}

// A malformed event id among entries marked pending is the entry's fault
// (ErrInvalidEntry, so ingest dead-letters it alone), not a failed write
// that would send the whole batch back for as long as Redis stays down.
func TestInsertPendingRefusesAMalformedEntryAsInvalid(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := harness.Context(t)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	key := scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: "key-1"}, window.LifetimeSpec(), 0)
	good, bad := entry(t, at, who{}, 1000), entry(t, at, who{}, 2000)
	good.CounterKeys, bad.CounterKeys = []string{key}, []string{key}
	bad.EventID = "not-a-uuid"
	if _, err := pgstore.InsertPending(ctx, pool, []pgstore.Entry{good, bad}); !errors.Is(err, pgstore.ErrInvalidEntry) {
		t.Fatalf("InsertPending with a malformed event id: %v; want ErrInvalidEntry", err)
	}
	if n, _, err := pgstore.PendingStats(ctx, pool); err != nil || n != 0 {
		t.Fatalf("pending %d (%v) after a refused batch; want 0", n, err)
	}
}
