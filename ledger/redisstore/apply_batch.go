package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// MaxBatchEvents bounds the events one ApplyBatch script call applies; a
// longer batch is split into several calls. Redis runs one script at a time,
// so a call's length is what an admission waits behind it in the worst case:
// at this size a call takes 2–4 ms of Redis time on the ledger benchmark's
// shape (e2e/redisstore BenchmarkApplyBatch), and per event it already costs
// about what a 500-event call does (the per-counter part is spread thin),
// so larger calls would only lengthen that wait. (It also keeps every
// unpack() in the script, up to 2 values per event, far below Lua's limit of
// about 8000.)
const MaxBatchEvents = 256

// batchConcurrency bounds the script calls of one ApplyBatch in flight: on
// Redis Cluster, the calls of different slots run at once (a slot's own calls
// run in order, see runCalls).
const batchConcurrency = 8

// ApplyBatch projects many committed entries, with the per-event semantics
// of Apply, in as few script calls as it can: one on a single node for up to
// MaxBatchEvents events, and on Redis Cluster one per hash slot the events'
// counters fall in. It returns one ApplyResult per application, in order.
//
// Each event is applied as if by its own Apply, in the order given: exactly
// once per counter (marker in the same script as the effect), skipped where
// the counter's seed snapshot already holds its row, settling its
// reservation where the counter still holds it (and releasing a leftover one
// in every case). An event with a missing counter writes nothing on any of
// its counters in that call (they report Skipped, the missing one Missing);
// the other events of the batch are applied regardless. On Redis Cluster
// that all-or-nothing is per slot group, as with Apply.
//
// Markers are pruned at or below the smallest PruneFloor of the batch: each
// event's floor is a sequence nothing will be applied at again, so the
// smallest is too, and it is below every event of the batch.
//
// An error means some call failed: others may have been applied, and the
// later calls of the failed one's slot were not tried. ApplyBatch is
// idempotent like Apply, so retrying the whole batch (by ApplyBatch,
// ApplyDirectBatch or Apply per event) is safe. Prefer
// ApplyBatchWithFallback.
func (s *Store) ApplyBatch(ctx context.Context, as []Application) ([]ApplyResult, error) {
	seqs, floor, err := s.planBatch(as)
	if err != nil {
		return nil, fmt.Errorf("apply batch: %w", err)
	}
	res := newResults(as)
	errs := s.runCalls(ctx, seqs, func(ctx context.Context, c *batchCall) error {
		return s.runBatch(ctx, as, c, floor, false, res)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return res, nil
}

// ApplyDirectBatch is ApplyBatch without reservation handling, as
// ApplyDirect is Apply's: the same marker and seed checks per event, then
// spent += Cost. It is a separate, smaller script, for when ApplyBatch
// fails; the reservations are left to Release or their TTL.
func (s *Store) ApplyDirectBatch(ctx context.Context, as []Application) ([]ApplyResult, error) {
	seqs, floor, err := s.planBatch(as)
	if err != nil {
		return nil, fmt.Errorf("apply direct batch: %w", err)
	}
	res := newResults(as)
	errs := s.runCalls(ctx, seqs, func(ctx context.Context, c *batchCall) error {
		return s.runBatch(ctx, as, c, floor, true, res)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return res, nil
}

// ApplyBatchWithFallback is how the ledger projects a batch: ApplyBatch,
// and for every script call of it that fails for any reason, ApplyDirectBatch
// of that call's events and then Release of their reservations on that
// call's counters — ApplyWithFallback, call by call. Each cost lands exactly
// once whichever ran, and whether or not the failed call ran (a lost reply):
// both scripts check and write the same markers atomically with the effects,
// and neither can fail after its first write.
//
// The events of a call that fell back have FallbackCause set (with any
// release error). The error is non-nil only when a call's fallback failed
// too; the results are then nil, and the batch should be retried (the
// ledger retries event by event, which also isolates an event that makes
// every script fail).
func (s *Store) ApplyBatchWithFallback(ctx context.Context, as []Application) ([]ApplyResult, error) {
	seqs, floor, err := s.planBatch(as)
	if err != nil {
		return nil, fmt.Errorf("apply batch: %w", err)
	}
	res := newResults(as)
	var mu sync.Mutex // guards FallbackCause across calls
	errs := s.runCalls(ctx, seqs, func(ctx context.Context, c *batchCall) error {
		cause := s.runBatch(ctx, as, c, floor, false, res)
		if cause == nil {
			return nil
		}
		if err := s.runBatch(ctx, as, c, floor, true, res); err != nil {
			return errors.Join(cause, err)
		}
		for _, ev := range c.events {
			a := &as[ev.app]
			why := cause
			if rid := leaseRelease(a.ReservationID); rid != "" {
				keys := make([]string, len(ev.keys))
				for j, ki := range ev.keys {
					keys[j] = a.Keys[ki]
				}
				if _, rerr := s.Release(ctx, rid, keys); rerr != nil {
					why = errors.Join(why, rerr)
				}
			}
			mu.Lock()
			res[ev.app].FallbackCause = errors.Join(res[ev.app].FallbackCause, why)
			mu.Unlock()
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return res, nil
}

// batchCall is one script call of a batch: some events' counters, all in
// one slot on Redis Cluster.
type batchCall struct {
	counters []string // distinct counter keys, numbered from 1 in the script
	events   []batchEvent
}

// batchEvent is one event's part of a call.
type batchEvent struct {
	app  int   // index into the batch
	keys []int // indexes into the application's Keys
	ctrs []int // the same counters' numbers in the call (1-based)
}

func newResults(as []Application) []ApplyResult {
	res := make([]ApplyResult, len(as))
	for i := range as {
		res[i].Outcomes = make([]Outcome, len(as[i].Keys))
	}
	return res
}

// planBatch validates the batch and splits it into calls: every event's
// counters go to the calls of their slot (one slot on a single node), and a
// slot with more than MaxBatchEvents events is cut into several calls, in
// the batch's order. It returns one sequence of calls per slot, and the
// batch's prune floor.
func (s *Store) planBatch(as []Application) ([][]*batchCall, uint64, error) {
	if len(as) == 0 {
		return nil, 0, nil
	}
	floor := as[0].PruneFloor
	for i := range as {
		if err := as[i].check(); err != nil {
			return nil, 0, err
		}
		floor = min(floor, as[i].PruneFloor)
	}
	type open struct {
		seq   int // index into seqs
		call  *batchCall
		index map[string]int // counter key -> number in the call
	}
	var seqs [][]*batchCall
	bySlot := map[int]*open{}
	for i := range as {
		a := &as[i]
		for _, g := range s.groups(a.Keys) {
			sl := 0
			if s.cluster {
				sl = slot(a.Keys[g[0]])
			}
			o := bySlot[sl]
			if o == nil {
				o = &open{seq: len(seqs)}
				seqs = append(seqs, nil)
				bySlot[sl] = o
			}
			if o.call == nil || len(o.call.events) == MaxBatchEvents {
				o.call, o.index = &batchCall{}, map[string]int{}
				seqs[o.seq] = append(seqs[o.seq], o.call)
			}
			ev := batchEvent{app: i, keys: g, ctrs: make([]int, len(g))}
			for j, ki := range g {
				k := a.Keys[ki]
				n, ok := o.index[k]
				if !ok {
					o.call.counters = append(o.call.counters, k)
					n = len(o.call.counters)
					o.index[k] = n
				}
				ev.ctrs[j] = n
			}
			o.call.events = append(o.call.events, ev)
		}
	}
	return seqs, floor, nil
}

// runCalls runs the calls of each slot one after another, in the batch's
// order, so every counter sees the events in that order (a slot's counters
// are only in its calls), and the slots' sequences batchConcurrency at a
// time. A sequence stops at its first error; the errors are returned.
func (s *Store) runCalls(ctx context.Context, seqs [][]*batchCall, fn func(context.Context, *batchCall) error) []error {
	run := func(seq []*batchCall) error {
		for _, c := range seq {
			if err := fn(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}
	if len(seqs) == 1 {
		return []error{run(seqs[0])}
	}
	errs := make([]error, len(seqs))
	sem := make(chan struct{}, batchConcurrency)
	var wg sync.WaitGroup
	for i, seq := range seqs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = run(seq)
		})
	}
	wg.Wait()
	return errs
}

// runBatch runs one call's script and stores its outcomes in res (each call
// writes its own events' own key indexes, so calls never share a slot).
func (s *Store) runBatch(ctx context.Context, as []Application, c *batchCall, floor uint64, direct bool, res []ApplyResult) error {
	what, script := "apply batch", applyBatchScript
	if direct {
		what, script = "apply direct batch", applyDirectBatchScript
	}
	all := make([]int, len(c.counters))
	for i := range all {
		all[i] = i
	}
	keys := scriptKeys(c.counters, all, !direct, true)
	args := make([]any, 0, 1+len(c.events)*9)
	args = append(args, utoa(floor))
	npairs := 0
	for _, ev := range c.events {
		a := &as[ev.app]
		args = append(args, a.EventID, utoa(a.StreamSeq), utoa(a.TxID), itoa(a.Cost))
		if !direct {
			args = append(args, a.ReservationID)
		}
		args = append(args, strconv.Itoa(len(ev.ctrs)))
		for _, n := range ev.ctrs {
			args = append(args, strconv.Itoa(n))
		}
		npairs += len(ev.ctrs)
	}
	v, err := script.Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return fmt.Errorf("%s of %d events (first %q): %w", what, len(c.events), as[c.events[0].app].EventID, err)
	}
	st, err := replySlice(v, what)
	if err != nil || len(st) != npairs {
		return fmt.Errorf("%s of %d events (first %q): unexpected reply of %d statuses, want %d", what, len(c.events), as[c.events[0].app].EventID, len(st), npairs)
	}
	// Decode every status before storing any, so a bad reply stores nothing.
	outs := make([]Outcome, npairs)
	for j := range st {
		o, err := replyInt(st[j], what)
		if err != nil || o < int64(Settled) || o > int64(Skipped) || (direct && o == int64(Settled)) {
			return fmt.Errorf("%s: unexpected outcome %v", what, st[j])
		}
		outs[j] = Outcome(o)
	}
	j := 0
	for _, ev := range c.events {
		for _, ki := range ev.keys {
			res[ev.app].Outcomes[ki] = outs[j]
			j++
		}
	}
	return nil
}
