package redisstore

import (
	"context"
	"errors"
	"fmt"
)

// Application is one committed ledger entry to project onto its counters.
type Application struct {
	// EventID is the event's unique id; the marker that makes Apply
	// exactly-once per counter.
	EventID string
	// StreamSeq is the event's COSTS stream sequence, 1..MaxExactSeq: the
	// marker's score, by which markers are pruned.
	StreamSeq uint64
	// TxID is the xid8 of the transaction that inserted the entry's row
	// (for a redelivered event: the existing row's). Compared with a
	// counter's seed snapshot as exact decimal text, so any uint64 works;
	// 0 (InvalidTransactionId) is rejected.
	TxID uint64
	// Cost is the entry's cost in nano-USD; corrections may be negative.
	Cost int64
	// ReservationID is the reservation the event settles, "" for none.
	ReservationID string
	// Keys are the event's counters, from scope.CounterKey.
	Keys []string
	// PruneFloor lets Apply delete the markers of events with stream
	// sequence ≤ PruneFloor. It must be a sequence at or below which no
	// event will ever be applied again — by any caller: the minimum, over
	// every consumer that projects COSTS into these counters (one per
	// partition, and a counter receives events from many partitions), of
	// its ack floor, and below the start of any pending re-projection from
	// Postgres. One consumer's own ack floor is not enough: pruning another
	// partition's unacked marker lets its redelivery count twice. 0 prunes
	// nothing. Must be below StreamSeq.
	PruneFloor uint64
}

// Outcome is what Apply did on one counter.
type Outcome uint8

const (
	// Settled: spent += cost, and the event's reservation was released
	// from reserved (the reconcile path).
	Settled Outcome = iota + 1
	// Direct: spent += cost; the counter held no reservation for it
	// (expired, released, never made, or the ApplyDirect path).
	Direct
	// Duplicate: the counter already has the event's marker; nothing added.
	Duplicate
	// InSeed: the event's transaction is visible in the counter's seed
	// snapshot, so its cost is in the seeded sum; nothing added.
	InSeed
	// Missing: the counter does not exist. Seed it and apply again.
	Missing
	// Skipped: the counter exists but was not written, because another
	// counter of the same call (same slot group on Redis Cluster) is
	// missing. Applying again after seeding does it.
	Skipped
)

var outcomeNames = [...]string{Settled: "settled", Direct: "direct", Duplicate: "duplicate", InSeed: "in_seed", Missing: "missing", Skipped: "skipped"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Applied reports whether the event's cost is in the counter now
// (Settled, Direct, Duplicate or InSeed).
func (o Outcome) Applied() bool { return o >= Settled && o <= InSeed }

// ApplyResult is what Apply did, per key.
type ApplyResult struct {
	// Outcomes has one entry per Application.Keys.
	Outcomes []Outcome
	// FallbackCause is set by ApplyWithFallback when Apply failed and
	// ApplyDirect did the work: Apply's error (and any error releasing the
	// reservation afterwards). Log and count it; the cost did land.
	FallbackCause error
}

// Missing returns the indexes (into Application.Keys) of missing counters.
func (r ApplyResult) Missing() []int {
	var out []int
	for i, o := range r.Outcomes {
		if o == Missing {
			out = append(out, i)
		}
	}
	return out
}

// Done reports whether the event's cost is in every counter, so the ledger
// may ack it.
func (r ApplyResult) Done() bool {
	for _, o := range r.Outcomes {
		if !o.Applied() {
			return false
		}
	}
	return len(r.Outcomes) > 0
}

// Apply projects a committed entry onto its counters, exactly once per
// counter: unless the counter already has the event's marker or counted the
// entry in its seed, spent += Cost and the marker is written in the same
// script, settling the event's reservation if the counter still holds it.
// A reservation still held when the event is a duplicate or in the seed is
// released too: its request is over. A call writes all its counters or,
// if any is missing, none (on Redis Cluster: per slot group; the others
// are then Duplicate on the next call).
//
// Apply is idempotent, so retrying after any error is safe. Prefer
// ApplyWithFallback, which falls back to ApplyDirect.
func (s *Store) Apply(ctx context.Context, a Application) (ApplyResult, error) {
	if err := a.check(); err != nil {
		return ApplyResult{}, fmt.Errorf("apply: %w", err)
	}
	return s.apply(ctx, a, false)
}

// ApplyDirect is Apply without reservation handling: the same marker and
// seed checks, then spent += Cost. It is a separate, smaller script, for
// when Apply fails; the reservation is left to Release or its TTL.
func (s *Store) ApplyDirect(ctx context.Context, a Application) (ApplyResult, error) {
	if err := a.check(); err != nil {
		return ApplyResult{}, fmt.Errorf("apply direct: %w", err)
	}
	return s.apply(ctx, a, true)
}

// ApplyWithFallback is how the ledger projects an entry. It runs Apply; if
// that fails for any reason (script error, unexpected reply, Redis error
// after go-redis's retries), it runs ApplyDirect and then releases the
// reservation (not a lease part, which stays held until its lease expires:
// the failed Apply may have taken it already). The cost lands exactly once
// whichever ran, even if the failed Apply did run (a lost reply): both check
// and write the same marker atomically with the effect, and neither script
// can fail after its first write. The error is nil when the fallback succeeded; FallbackCause then
// says why it was needed. A release failure only leaves the reservation to
// its TTL, so it is reported in FallbackCause, not as an error.
func (s *Store) ApplyWithFallback(ctx context.Context, a Application) (ApplyResult, error) {
	if err := a.check(); err != nil {
		return ApplyResult{}, fmt.Errorf("apply: %w", err)
	}
	res, err := s.apply(ctx, a, false)
	if err == nil {
		return res, nil
	}
	cause := err
	res, err = s.apply(ctx, a, true)
	if err != nil {
		return ApplyResult{}, errors.Join(cause, err)
	}
	if rid := leaseRelease(a.ReservationID); rid != "" {
		if _, rerr := s.Release(ctx, rid, a.Keys); rerr != nil {
			cause = errors.Join(cause, rerr)
		}
	}
	res.FallbackCause = cause
	return res, nil
}

func (a Application) check() error {
	if err := checkKeys(a.Keys); err != nil {
		return fmt.Errorf("event %q: %w", a.EventID, err)
	}
	if err := checkID("event id", a.EventID); err != nil {
		return err
	}
	if a.ReservationID != "" {
		if err := checkID("reservation id", a.ReservationID); err != nil {
			return err
		}
	}
	switch {
	case a.StreamSeq == 0 || a.StreamSeq > MaxExactSeq:
		return fmt.Errorf("%w: event %q: stream seq %d outside 1..2^53 (marker scores are doubles)", ErrInvalid, a.EventID, a.StreamSeq)
	case a.PruneFloor >= a.StreamSeq:
		return fmt.Errorf("%w: event %q: prune floor %d not below stream seq %d (its own marker would be pruned)", ErrInvalid, a.EventID, a.PruneFloor, a.StreamSeq)
	case a.TxID == 0:
		return fmt.Errorf("%w: event %q: tx id 0 (the entry row's tx_id is required)", ErrInvalid, a.EventID)
	}
	return nil
}

func (s *Store) apply(ctx context.Context, a Application, direct bool) (ApplyResult, error) {
	what, script := "apply", applyScript
	if direct {
		what, script = "apply direct", applyDirectScript
	}
	res := ApplyResult{Outcomes: make([]Outcome, len(a.Keys))}
	for _, g := range s.groups(a.Keys) {
		var v any
		var err error
		if direct {
			v, err = script.Run(ctx, s.rdb, scriptKeys(a.Keys, g, false, true),
				a.EventID, utoa(a.StreamSeq), utoa(a.TxID), itoa(a.Cost), utoa(a.PruneFloor)).Result()
		} else {
			v, err = script.Run(ctx, s.rdb, scriptKeys(a.Keys, g, true, true),
				a.EventID, utoa(a.StreamSeq), utoa(a.TxID), itoa(a.Cost), a.ReservationID, utoa(a.PruneFloor)).Result()
		}
		if err != nil {
			return ApplyResult{}, fmt.Errorf("%s %q: %w", what, a.EventID, err)
		}
		st, err := replySlice(v, what)
		if err != nil || len(st) != len(g) {
			return ApplyResult{}, fmt.Errorf("%s %q: unexpected reply %v", what, a.EventID, v)
		}
		for j, i := range g {
			o, err := replyInt(st[j], what)
			if err != nil || o < int64(Settled) || o > int64(Skipped) || (direct && o == int64(Settled)) {
				return ApplyResult{}, fmt.Errorf("%s %q: unexpected outcome %v", what, a.EventID, st[j])
			}
			res.Outcomes[i] = Outcome(o)
		}
	}
	return res, nil
}
