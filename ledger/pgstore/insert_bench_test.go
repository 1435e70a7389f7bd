package pgstore

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

// benchEntries are n entries shaped like the ledger ingest benchmark's.
func benchEntries(b *testing.B, n int) []Entry {
	now := time.Now().UTC().Truncate(time.Microsecond)
	day := window.Spec{Duration: window.MustParse("1d"), Calendar: true}
	es := make([]Entry, n)
	for i := range es {
		id, _ := uuid.NewV7()
		nanos := int64(1000 + i%5000)
		es[i] = Entry{
			EventID: id.String(), OccurredAt: now,
			KeyID: fmt.Sprintf("key-%d", i%64), TeamID: fmt.Sprintf("team-%d", i%8),
			ModelGroup: "gpt-4o", DeploymentID: "d1", Provider: "openai", BackendModel: "openai/gpt-4o",
			InputTokens: nanos, TotalNanos: nanos, Priced: true, CatalogVersion: "bench", StreamSeq: uint64(i + 1),
			Components: []Component{{Name: "input", Tokens: nanos, UnitPrice: "0.000000001", Source: SourceCatalog, ExactCost: "0", CostNanos: nanos}},
			CounterKeys: []string{
				scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: fmt.Sprintf("key-%d", i%64)}, window.LifetimeSpec(), 0),
				scope.CounterKey(scope.Scope{Kind: scope.KindTeam, ID: fmt.Sprintf("team-%d", i%8)}, day, day.Index(now)),
			},
		}
	}
	return es
}

// insertOIDs are the parameter types of insertSQL, in order.
var insertOIDs = []uint32{
	pgtype.UUIDArrayOID, pgtype.UUIDArrayOID, pgtype.TimestamptzArrayOID,
	pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID,
	pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID,
	pgtype.Int8ArrayOID, pgtype.Int8ArrayOID, pgtype.Int8ArrayOID, pgtype.Int8ArrayOID, pgtype.Int8ArrayOID, pgtype.Int8ArrayOID,
	pgtype.Int8ArrayOID, pgtype.TextArrayOID, pgtype.BoolArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.Int8ArrayOID, pgtype.TextArrayOID,
	pgtype.TextArrayOID,
}

// BenchmarkInsertPrepare500 is the conflict path's CPU work before the
// round trip for a 500-entry batch (insertOnConflict): validation, the
// column arrays, and pgx's binary encoding of them.
func BenchmarkInsertPrepare500(b *testing.B) {
	es := benchEntries(b, 500)
	m := pgtype.NewMap()
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for range b.N {
		ids := make([][16]byte, len(es))
		uniq := make([]int, len(es))
		for i := range es {
			id, err := es[i].validate()
			if err != nil {
				b.Fatal(err)
			}
			ids[i], uniq[i] = id, i
		}
		args := insertArgs(es, ids, uniq)
		for i, a := range args {
			var err error
			buf, err = m.Encode(insertOIDs[i], pgtype.BinaryFormatCode, a, buf[:0])
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCopyPrepare500 is Insert's usual CPU work before the round trip
// for a 500-entry batch: validation and the binary COPY stream (copyenc.go).
func BenchmarkCopyPrepare500(b *testing.B) {
	es := benchEntries(b, 500)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for range b.N {
		bt, err := newBatch(es)
		if err != nil {
			b.Fatal(err)
		}
		buf = appendCopyRows(buf[:0], bt.entries, bt.ids, bt.uniq)
	}
}

// reportCPU reports the process's CPU time per op (user+system, GC
// included): on a shared machine wall time per op mostly measures the
// neighbours. Call as defer reportCPU(b)() after ResetTimer.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkValidate500 is Validate over a 500-entry batch (ingest runs it
// twice per entry: EntryFromCost, then Insert).
func BenchmarkValidate500(b *testing.B) {
	es := benchEntries(b, 500)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for range b.N {
		for i := range es {
			if err := es[i].Validate(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
