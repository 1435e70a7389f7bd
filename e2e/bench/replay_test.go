package bench

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/e2e/harness"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

// replayEntries is the size of the ledger `ledger replay projections`
// rebuilds from: the 1M, or 50k in a smoke run.
func replayEntries() int { return scaled(1_000_000, 50_000) }

// replayEntry is entry i of the replay ledger: one of 1000 keys (its
// lifetime counter) in one of 20 teams (their calendar-day counter), at a
// time spread over the two days before now, so the team counters span three
// days, of which the oldest is past its grace and is not recreated.
func replayEntry(i int, now time.Time) pgstore.Entry {
	id, _ := uuid.NewV7()
	key, team := fmt.Sprintf("key-%d", i%1000), fmt.Sprintf("team-%d", i%20)
	at := now.Add(-time.Duration(i%172800) * time.Second).UTC().Truncate(time.Microsecond)
	day := window.Spec{Duration: window.MustParse("1d"), Calendar: true}
	nanos := int64(1000 + i%5000)
	return pgstore.Entry{
		EventID: id.String(), OccurredAt: at,
		KeyID: key, TeamID: team,
		ModelGroup: "gpt-4o", DeploymentID: "d1", Provider: "openai", BackendModel: "openai/gpt-4o",
		InputTokens: nanos, TotalNanos: nanos, Priced: true, CatalogVersion: "bench",
		Components: []pgstore.Component{{Name: "input", Tokens: nanos, UnitPrice: "0.000000001", Source: pgstore.SourceCatalog, CostNanos: nanos}},
		StreamSeq:  uint64(i + 1),
		CounterKeys: []string{
			scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: key}, window.LifetimeSpec(), 0),
			scope.CounterKey(scope.Scope{Kind: scope.KindTeam, ID: team}, day, day.Index(at)),
		},
	}
}

// BenchmarkReplayProjections times `ledger replay projections` rebuilding
// every counter of a 1M-entry ledger into an empty Redis: the whole command,
// process start to exit, including finding the counters (a scan of the
// table). The services are stopped so the figure is the command's alone; the
// counters are then checked with `ledger verify` (not timed).
func BenchmarkReplayProjections(b *testing.B) {
	entries := replayEntries()
	st := harness.StartStack(b, harness.WithLogLevel("warn"))
	for i := len(harness.Services) - 1; i >= 0; i-- {
		st.Service(harness.Services[i]).Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, st.PostgresURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()

	start := time.Now()
	now := time.Now()
	const batch, workers = 2000, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rows := make([]pgstore.Entry, 0, batch)
			for lo := w * batch; lo < entries; lo += workers * batch {
				rows = rows[:0]
				for i := lo; i < min(lo+batch, entries); i++ {
					rows = append(rows, replayEntry(i, now))
				}
				if _, err := pgstore.Insert(ctx, pool, rows); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	// No VACUUM: the first reads of freshly written pages also set their
	// hint bits, so this is the slow case of a ledger just bulk-loaded
	// (after VACUUM ANALYZE the replay measured about twice as fast).
	b.Logf("inserted %d entries in %v", entries, time.Since(start).Round(time.Second))

	var took time.Duration
	var out string
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		st.FlushRedis()
		b.StartTimer()
		t0 := time.Now()
		code, o := st.Run("ledger", "replay", "projections")
		took = time.Since(t0)
		out = o
		if code != 0 {
			b.Fatalf("replay projections: exit %d\n%s", code, out)
		}
	}
	b.StopTimer()
	summary := regexp.MustCompile(`(?m)^\d+ counters: .*$`).FindString(out)
	if !strings.Contains(summary, " 0 failed") {
		b.Fatalf("replay projections:\n%s", out)
	}
	if code, out := st.Run("ledger", "verify"); code != 0 {
		b.Fatalf("verify after replay: exit %d\n%s", code, out)
	}
	note := fmt.Sprintf("%d entries (%s); ledger verify passed after", entries, summary)
	record(b, "ledger_replay_seconds", took.Seconds(), note)
	record(b, "ledger_replay_entries_per_s", float64(entries)/took.Seconds(), note)
}
