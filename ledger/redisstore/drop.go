package redisstore

import (
	"context"
	"fmt"
)

// Drop deletes counter key and its companions (reservations and applied-event
// markers), so the next Seed creates it afresh from the ledger. It is the
// first half of rebuilding a counter (`ledger replay projections`): Seed only
// creates an absent counter, so a counter that is wrong has to go first.
//
// What is lost with it: live reservations (admission then no longer counts
// them; their requests settle by direct increment when their events arrive)
// and markers (harmless: an entry whose marker is gone is in the reseed's
// snapshot and skipped, ADR 2). Meanwhile an Apply or Reserve that finds the
// counter missing reseeds it from the ledger, which is what Drop's caller
// does too: first seeder wins. Dropping a missing counter is a no-op. It
// reports whether the counter existed.
func (s *Store) Drop(ctx context.Context, key string) (existed bool, err error) {
	if err := checkKeys([]string{key}); err != nil {
		return false, fmt.Errorf("drop: %w", err)
	}
	x, m := companions(key)
	// EXISTS and DEL of all three in one MULTI: one round trip, atomic, and
	// on Redis Cluster valid too, because companions share the counter's
	// hash slot. No reader sees the counter without its companions.
	pipe := s.rdb.TxPipeline()
	exists := pipe.Exists(ctx, key)
	pipe.Del(ctx, key, x, m)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("drop %q: %w", key, err)
	}
	return exists.Val() == 1, nil
}
