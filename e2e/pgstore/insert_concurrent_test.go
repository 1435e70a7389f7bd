package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/spendledger/spendledger/ledger/pgstore"
)

// TestInsertWaitsForAConcurrentInsertOfTheSameEvent: another instance's
// transaction holds an event uncommitted while a batch with it (and with a
// new event) is inserted. Insert's COPY waits for that transaction, like ON
// CONFLICT does, and then: if it committed, the event is a duplicate with
// the other transaction's id and total, and the new event is still
// inserted; if it rolled back, the batch inserts both events as new.
func TestInsertWaitsForAConcurrentInsertOfTheSameEvent(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

	for _, commit := range []bool{true, false} {
		held, fresh := entry(t, at, who{}, 700), entry(t, at, who{}, 300)
		other, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var otherTx uint64
		err = other.QueryRow(ctx, `INSERT INTO ledger_entries (event_id, occurred_at, key_id, model_group, deployment_id,
			provider, backend_model, total_nanos, priced, catalog_version, stream_seq)
			VALUES ($1, $2, 'key-1', 'claude-opus-4-6', 'dep-1', 'vertex_ai', 'vertex_ai/claude-opus-4-6', 111, true, 'c', 7)
			RETURNING tx_id`, held.EventID, at).Scan(&otherTx)
		if err != nil {
			t.Fatal(err)
		}

		type answer struct {
			res []pgstore.Inserted
			err error
		}
		done := make(chan answer, 1)
		go func() {
			res, err := pgstore.Insert(ctx, pool, []pgstore.Entry{fresh, held})
			done <- answer{res, err}
		}()
		select {
		case a := <-done:
			t.Fatalf("commit=%v: Insert returned %+v, %v while another transaction held the event", commit, a.res, a.err)
		case <-time.After(300 * time.Millisecond):
		}
		end := other.Rollback
		if commit {
			end = other.Commit
		}
		if err := end(ctx); err != nil {
			t.Fatal(err)
		}
		a := <-done
		if a.err != nil {
			t.Fatalf("commit=%v: Insert: %v", commit, a.err)
		}
		got, fr := a.res[1], a.res[0]
		if !fr.New || fr.TotalNanos != 300 || fr.TxID == otherTx {
			t.Errorf("commit=%v: new event: %+v; want New, total 300, this batch's transaction", commit, fr)
		}
		if commit && (got.New || got.TxID != otherTx || got.TotalNanos != 111 || got.StreamSeq != 7) {
			t.Errorf("held event after the other committed: %+v; want not New, TxID %d, total 111, seq 7", got, otherTx)
		}
		if !commit && (!got.New || got.TxID != fr.TxID || got.TotalNanos != 700) {
			t.Errorf("held event after the other rolled back: %+v; want New in the batch's transaction (%d), total 700", got, fr.TxID)
		}
	}
	if n := countRows(t, pool); n != 4 {
		t.Fatalf("%d rows; want 4 (two batches of two)", n)
	}
}
