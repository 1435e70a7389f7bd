// Package reseed rebuilds a missing Redis counter from the ledger: the one
// rule both admission (budget service) and projection (ledger service) follow
// when a counter is absent (ADR 2).
//
// The figure always comes from Postgres, read with the snapshot that lets
// projection skip exactly the entries already in it; it is never taken from a
// cached or batched number. Seeding only creates an absent counter, so any
// number of instances reseeding the same cold counter at once add it once.
package reseed

import (
	"context"
	"fmt"
	"time"

	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// Grace is how long a counter outlives its window. Events that arrive later
// reseed it from the ledger, so grace only saves work.
const Grace = 24 * time.Hour

// Counter seeds the counter named key from the ledger's sum for its scope and
// window. It reports whether this call created it (false: another instance
// did first, or it already existed).
func Counter(ctx context.Context, db pgstore.DB, rs *redisstore.Store, key string) (bool, error) {
	s, spec, index, err := scope.ParseCounterKey(key)
	if err != nil {
		return false, fmt.Errorf("reseed: %w", err)
	}
	start, end := spec.Bounds(index)
	sum, err := pgstore.Sum(ctx, db, s, start, end)
	if err != nil {
		return false, fmt.Errorf("reseed %s: %w", key, err)
	}
	created, err := rs.Seed(ctx, key, sum.Nanos, sum.Snapshot, end.Add(Grace))
	if err != nil {
		return false, fmt.Errorf("reseed %s: %w", key, err)
	}
	return created, nil
}
