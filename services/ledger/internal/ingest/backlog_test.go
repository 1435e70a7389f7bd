package ingest

import (
	"testing"

	"github.com/spendledger/spendledger/ledger/pgstore"
)

// Marking entries pending lowers the prune floor below them at once, never
// raises it, and flags Redis down only when it was unreachable.
func TestMarkedLowersThePruneFloorBelowPendingEntries(t *testing.T) {
	var b Backlog
	b.floor.Store(1000)
	b.marked(700, 3, false)
	if f := b.PruneFloor(); f != 699 {
		t.Fatalf("floor %d after marking from seq 700; want 699", f)
	}
	if b.RedisDown() {
		t.Fatal("Redis flagged down by a failure that was not unreachability")
	}
	b.marked(900, 1, true) // above the floor: it stays
	if f := b.PruneFloor(); f != 699 {
		t.Fatalf("floor %d after marking from seq 900; want 699 still", f)
	}
	if !b.RedisDown() || b.Pending() != 4 {
		t.Fatalf("down %v, pending %d; want true and 4", b.RedisDown(), b.Pending())
	}
}

func TestMinSeqFindsTheSmallestOfABatch(t *testing.T) {
	marks := []pgstore.PendingMark{{StreamSeq: 12}, {StreamSeq: 9}, {StreamSeq: 30}}
	if got := minSeq(marks); got != 9 {
		t.Fatalf("minSeq = %d, want 9 (a redelivery can sit among later messages)", got)
	}
}
