package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ReserveRequest asks to hold Amount on every counter, or on none.
type ReserveRequest struct {
	// ID is the reservation's ID (one per admitted request). Reserve is
	// idempotent per (ID, counter): retrying with the same ID charges no
	// counter twice.
	ID string
	// Amount is the request's upper-bound cost estimate, nano-USD, > 0.
	Amount int64
	// TTL is how long the reservation lives if nothing settles or releases
	// it; at least a millisecond.
	TTL time.Duration
	// Counters are the request's counters, from scope.CounterKey.
	Counters []Counter
}

// ReserveResult is Reserve's decision.
type ReserveResult struct {
	// Admitted: Amount is now held on every counter under ID.
	Admitted bool
	// Missing lists the counters that do not exist (indexes into Counters).
	// Nothing was reserved; the caller seeds them (Seed) and retries.
	Missing []int
	// Denied is the counter whose limit the request would pass (an index
	// into Counters), -1 if none. Nothing is reserved under ID afterwards.
	Denied int
	// States are the counters after the call (Spent, and Reserved = Held =
	// Live after eviction). On Redis Cluster, counters in slot groups other
	// than the one that denied or missed are zero (not read, or rolled back).
	States []State
	// ExpiresAt is when the reservation starts to expire (the earliest
	// expiry among its counters, by Redis's clock); zero unless admitted.
	ExpiresAt time.Time
}

// Reserve checks spent + reserved + Amount ≤ Limit on every counter and, if
// all pass, reserves Amount on each — atomically, in one script, on a single
// node. Expired reservations are evicted first. A counter already holding
// this ID is not checked or charged again.
//
// On Redis Cluster the counters are grouped by hash slot (a script's keys
// must share one) and reserved group by group, in the order of each group's
// first counter; when a group denies or misses, or a call fails, the groups
// already reserved are released again. Between the two steps other requests
// may see the reservation and be denied: the failure mode is a spurious
// denial, never overspend.
//
// On error the reservation may or may not be held: retry with the same ID,
// or Release it; either way it expires after TTL.
func (s *Store) Reserve(ctx context.Context, req ReserveRequest) (ReserveResult, error) {
	keys := make([]string, len(req.Counters))
	for i, c := range req.Counters {
		keys[i] = c.Key
		if c.Limit < 0 {
			return ReserveResult{}, fmt.Errorf("%w: reserve: counter %q has negative limit %d", ErrInvalid, c.Key, c.Limit)
		}
	}
	if err := checkKeys(keys); err != nil {
		return ReserveResult{}, fmt.Errorf("reserve: %w", err)
	}
	if err := checkID("reservation id", req.ID); err != nil {
		return ReserveResult{}, fmt.Errorf("reserve: %w", err)
	}
	if req.Amount <= 0 {
		return ReserveResult{}, fmt.Errorf("%w: reserve %q: amount %d must be positive", ErrInvalid, req.ID, req.Amount)
	}
	if req.TTL < time.Millisecond {
		return ReserveResult{}, fmt.Errorf("%w: reserve %q: ttl %v below 1ms", ErrInvalid, req.ID, req.TTL)
	}

	res := ReserveResult{Denied: -1, States: make([]State, len(keys))}
	groups := s.groups(keys)
	var expires int64
	for gi, g := range groups {
		code, at, err := s.reserveGroup(ctx, req, keys, g, &res)
		if err != nil {
			// This group may have reserved too: release it with the others.
			err = fmt.Errorf("reserve %q: %w", req.ID, err)
			return ReserveResult{}, errors.Join(err, s.rollback(ctx, req.ID, keys, groups[:gi+1]))
		}
		if code != 0 {
			for _, g := range groups[:gi] {
				for _, i := range g {
					res.States[i] = State{} // rolled back: what they showed is gone
				}
			}
			return res, s.rollback(ctx, req.ID, keys, groups[:gi])
		}
		if expires == 0 || at < expires {
			expires = at
		}
	}
	res.Admitted = true
	res.ExpiresAt = time.UnixMilli(expires)
	return res, nil
}

// reserveGroup runs the reserve script on the counters at idx, records what
// it saw in res, and returns its code (0 admitted, 1 denied, 2 missing).
func (s *Store) reserveGroup(ctx context.Context, req ReserveRequest, keys []string, idx []int, res *ReserveResult) (code, expiresMS int64, err error) {
	args := make([]any, 0, 3+len(idx))
	args = append(args, req.ID, itoa(req.Amount), req.TTL.Milliseconds())
	for _, i := range idx {
		args = append(args, itoa(req.Counters[i].Limit))
	}
	v, err := s.runReserve(ctx, reserveScript, scriptKeys(keys, idx, true, false), args...)
	if errors.Is(err, ErrLost) || errors.Is(err, ErrFenced) {
		// What the script reserved, Reserve's rollback releases.
		return 0, 0, err
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reserve script: %w", err)
	}
	r, err := replySlice(v, "reserve")
	if err != nil || len(r) != 5 {
		return 0, 0, fmt.Errorf("reserve script: unexpected reply %v (%v)", v, err)
	}
	code, err1 := replyInt(r[0], "reserve code")
	denied, err2 := replyInt(r[1], "reserve denied")
	expiresMS, err3 := replyInt(r[2], "reserve expiry")
	missing, err4 := replySlice(r[3], "reserve missing")
	states, err5 := replySlice(r[4], "reserve states")
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return 0, 0, fmt.Errorf("reserve script: %w", err)
	}
	for _, m := range missing {
		j, err := replyInt(m, "reserve missing")
		if err != nil || j < 1 || int(j) > len(idx) {
			return 0, 0, fmt.Errorf("reserve script: bad missing index %v", m)
		}
		res.Missing = append(res.Missing, idx[j-1])
	}
	if code == 2 {
		return code, 0, nil
	}
	if len(states) != 2*len(idx) {
		return 0, 0, fmt.Errorf("reserve script: %d state values for %d counters", len(states), len(idx))
	}
	for j, i := range idx {
		spent, err1 := replyDecimal(states[2*j], "reserve spent")
		reserved, err2 := replyDecimal(states[2*j+1], "reserve reserved")
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, fmt.Errorf("reserve script: %w", err)
		}
		res.States[i] = State{Exists: true, Spent: spent, Reserved: reserved, Held: reserved, Live: reserved}
	}
	switch code {
	case 0:
		return code, expiresMS, nil
	case 1:
		if denied < 1 || int(denied) > len(idx) {
			return 0, 0, fmt.Errorf("reserve script: bad denied index %d", denied)
		}
		res.Denied = idx[denied-1]
		return code, 0, nil
	}
	return 0, 0, fmt.Errorf("reserve script: unknown code %d", code)
}

// rollback releases id from the counters of groups that reserved it before
// a later group denied, missed or failed. It runs even if ctx is done (a
// reservation left behind blocks budget until it expires), bounded by its
// own timeout.
func (s *Store) rollback(ctx context.Context, id string, keys []string, groups [][]int) error {
	if len(groups) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	var errs []error
	for _, g := range groups {
		if _, err := s.release(ctx, id, keys, g); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reserve %q: roll back (the reservation expires at its TTL): %w", id, err)
	}
	return nil
}

const rollbackTimeout = 2 * time.Second

// Release drops reservation id from the counters at keys, returning whether
// any held it. Releasing twice, or a reservation already settled or expired,
// is a no-op. Missing counters are skipped.
func (s *Store) Release(ctx context.Context, id string, keys []string) (released bool, err error) {
	if err := checkKeys(keys); err != nil {
		return false, fmt.Errorf("release: %w", err)
	}
	if err := checkID("reservation id", id); err != nil {
		return false, fmt.Errorf("release: %w", err)
	}
	for _, g := range s.groups(keys) {
		r, err := s.release(ctx, id, keys, g)
		if err != nil {
			return released, err
		}
		released = released || r
	}
	return released, nil
}

func (s *Store) release(ctx context.Context, id string, keys []string, idx []int) (bool, error) {
	n, err := releaseScript.Run(ctx, s.rdb, scriptKeys(keys, idx, true, false), id).Int64()
	if err != nil {
		return false, fmt.Errorf("release %q: %w", id, err)
	}
	return n == 1, nil
}
