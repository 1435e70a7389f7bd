package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spendledger/spendledger/ledger/pgstore"
)

const benchBatch = 500

// benchBatches builds n batches of fresh, realistic entries (several scopes,
// tags on some) up front, so the benchmark times Insert only.
func benchBatches(b testing.TB, n int) [][]pgstore.Entry {
	b.Helper()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	out := make([][]pgstore.Entry, n)
	seq := uint64(0)
	for i := range out {
		out[i] = make([]pgstore.Entry, benchBatch)
		for j := range out[i] {
			seq++
			w := who{
				key: fmt.Sprintf("key-%d", seq%50), team: fmt.Sprintf("team-%d", seq%7), user: "u",
				endUser: fmt.Sprintf("cust-%d", seq%200), group: fmt.Sprintf("group-%d", seq%5),
			}
			if seq%3 == 0 {
				w.tags = []string{"prod", fmt.Sprintf("t%d", seq%11)}
			}
			out[i][j] = mustEntry(b, costEvent(newID(), at.Add(time.Duration(seq)*time.Millisecond), w, int64(seq)), seq)
		}
	}
	return out
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkInsert measures Insert with batches of 500 new entries: one
// inserter (one ledger consumer), four concurrent inserters, and a batch
// that is entirely redelivered duplicates.
func BenchmarkInsert(b *testing.B) {
	pool := newDB(b)
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		batches := benchBatches(b, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := pgstore.Insert(ctx, pool, batches[i]); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})

	b.Run("parallel4", func(b *testing.B) {
		batches := benchBatches(b, b.N)
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for range 4 {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
					if _, err := pgstore.Insert(ctx, pool, batches[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		reportRate(b)
	})

	b.Run("redelivered", func(b *testing.B) {
		batch := benchBatches(b, 1)[0]
		if _, err := pgstore.Insert(ctx, pool, batch); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := pgstore.Insert(ctx, pool, batch); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}
