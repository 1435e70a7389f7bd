// Package redisstore is the Redis side of ADR 2 (docs/adr/0002): budget
// counters with reservations for admission, and the exactly-once projection
// of committed ledger entries into them. The budget service calls Reserve
// and Release; the ledger service calls ApplyBatchWithFallback (a batch of
// entries, with ApplyWithFallback's per-event semantics) and, when a
// counter is missing, Seed (with the sum and snapshot pgstore computes);
// verify calls ScanCounters and Read.
//
// Every operation is one Lua script per Redis Cluster slot group (one
// script in all on a single node), embedded from lua/*.lua and run with
// EVALSHA, falling back to EVAL. Every script is idempotent, so go-redis's
// retries and the callers' are safe.
//
// Key layout of a counter K (K from scope.CounterKey only; the companions
// K:x and K:m are derived from it in one function, keeping its hash tag):
//
//	K    hash  spent, reserved, seed (Postgres snapshot text), r:<reservation id> = amount,
//	           next_expiry (lower bound on K:x's expiries), pruned (last marker prune floor)
//	K:x  zset  reservation id -> expiry (unix ms, Redis clock); "" at -inf (sentinel)
//	K:m  zset  applied event id -> COSTS stream sequence;       "" at -inf (sentinel)
//
// Seed creates all three with one expiry; nothing else sets a TTL (the
// sentinel keeps a companion from emptying and being recreated without one).
//
// Invariants (README.md explains each):
//   - reserved = Σ r:* on every counter, exactly: int64 nano-USD over the
//     whole range (doubles below 2^53, two-limb integers above, never a
//     rounded float).
//   - An admitted Reserve holds Amount on every counter; a denied one holds
//     nothing on any; spent + reserved ≤ limit after every admission.
//   - An event's cost is in a counter at most once, and exactly once after
//     Apply or ApplyDirect (or ApplyBatch, ApplyDirectBatch) returned
//     without error: the effect and its marker are written by one script
//     that cannot fail after its first write.
//   - A batch applies its events, counter by counter, exactly as one Apply
//     per event in the given order would.
//   - A seeded counter counts each ledger row once: in the seed's sum if its
//     transaction is visible in the seed's snapshot, else by Apply.
//
// Redis must be 7.0 or later and run with maxmemory-policy noeviction: a
// counter's three keys are one unit, and evicting one of them breaks it.
package redisstore
