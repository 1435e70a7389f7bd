package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/reseed"
)

// maxReseedRounds bounds the apply → reseed → apply loop. One round settles a
// missing counter; more only happen if counters vanish again meanwhile.
const maxReseedRounds = 3

// Projector applies committed entries to their Redis counters (ADR 2).
type Projector struct {
	DB    pgstore.DB
	Redis *redisstore.Store
	// Observe, when set, is told of every per-counter outcome ("settled",
	// "direct", "duplicate", "in_seed"), and of "reseeded", "expired",
	// "fallback" and (ProjectBatch) "batch_failed".
	Observe func(what string)
}

func (p *Projector) observe(what string) {
	if p.Observe != nil {
		p.Observe(what)
	}
}

// Project applies one committed entry. A missing counter is reseeded from the
// ledger, which already holds the entry; the seed's snapshot makes the next
// Apply skip the entry on that counter, so the cost lands exactly once either
// way. A counter whose window ended long ago cannot be seeded and is dropped:
// nothing admits against it any more.
func (p *Projector) Project(ctx context.Context, a redisstore.Application) error {
	for round := 0; len(a.Keys) > 0; round++ {
		if round == maxReseedRounds {
			return fmt.Errorf("project %s: counters kept vanishing after %d reseeds", a.EventID, round)
		}
		res, err := p.Redis.ApplyWithFallback(ctx, a)
		if err != nil {
			return fmt.Errorf("project %s: %w", a.EventID, err)
		}
		if res.FallbackCause != nil {
			p.observe("fallback")
		}
		var again []string
		for i, o := range res.Outcomes {
			switch o {
			case redisstore.Skipped:
				again = append(again, a.Keys[i])
			case redisstore.Missing:
				_, err := reseed.Counter(ctx, p.DB, p.Redis, a.Keys[i])
				if errors.Is(err, redisstore.ErrExpired) {
					p.observe("expired")
					continue
				}
				if err != nil {
					return fmt.Errorf("project %s: %w", a.EventID, err)
				}
				p.observe("reseeded")
				again = append(again, a.Keys[i])
			default:
				p.observe(o.String())
			}
		}
		a.Keys = slices.Clip(again)
	}
	return nil
}

// reseedConcurrency bounds the counters ProjectBatch reseeds at once (each
// is a Postgres sum and a Seed call).
const reseedConcurrency = 8

// ProjectBatch applies committed entries with as few Redis calls as it can
// (redisstore.ApplyBatchWithFallback: one script call per MaxBatchEvents on
// a single node) and returns, per application, nil or why it could not be
// projected. The rules are Project's, batch-wide: every counter missing in
// any event is reseeded once from the ledger, then the events that missed
// are applied again on the counters they still need, until done or
// maxReseedRounds.
//
// When even the batch fallback fails because of an event that makes every
// batch script fail (such as an int64 overflow on one counter), every
// pending event is retried alone with Project: that isolates the event that
// cannot be applied, and is exactly-once with whatever the batch did write
// (markers). When it fails because Redis is unreachable, every pending event
// fails at once (the caller marks them pending).
func (p *Projector) ProjectBatch(ctx context.Context, as []redisstore.Application) []error {
	errs := make([]error, len(as))
	cur := slices.Clone(as) // Keys shrink to what is left to apply
	pending := make([]int, len(as))
	for i := range pending {
		pending[i] = i
	}
	for round := 0; len(pending) > 0; round++ {
		if round == maxReseedRounds {
			for _, i := range pending {
				errs[i] = fmt.Errorf("project %s: counters kept vanishing after %d reseeds", as[i].EventID, round)
			}
			break
		}
		batch := make([]redisstore.Application, len(pending))
		for j, i := range pending {
			batch[j] = cur[i]
		}
		res, err := p.Redis.ApplyBatchWithFallback(ctx, batch)
		if err != nil {
			p.observe("batch_failed")
			if unreachable(err) {
				// Event by event would fail the same way, once per event
				// and after go-redis's retries each: the batch is a gap.
				for _, i := range pending {
					errs[i] = fmt.Errorf("project %s: %w", as[i].EventID, err)
				}
				break
			}
			p.projectEach(ctx, pending, cur, errs)
			break
		}
		reseeded := p.reseedMissing(ctx, batch, res)
		var next []int
		for j, i := range pending {
			if res[j].FallbackCause != nil {
				p.observe("fallback")
			}
			var again []string
			for ki, o := range res[j].Outcomes {
				key := batch[j].Keys[ki]
				switch o {
				case redisstore.Skipped:
					again = append(again, key)
				case redisstore.Missing:
					err := reseeded[key]
					if errors.Is(err, redisstore.ErrExpired) {
						continue
					}
					if err != nil && errs[i] == nil {
						errs[i] = fmt.Errorf("project %s: %w", as[i].EventID, err)
					}
					again = append(again, key)
				default:
					p.observe(o.String())
				}
			}
			if errs[i] != nil || len(again) == 0 {
				continue
			}
			cur[i].Keys = slices.Clip(again)
			next = append(next, i)
		}
		pending = next
	}
	return errs
}

// unreachable tells a Redis that could not be reached or did not answer in
// time (down, restarting, network) from one that answered with an error (a
// script failing on some event), where retrying event by event can apply
// all but the event at fault.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// reseedMissing reseeds, once each, the counters missing in res, and returns
// each one's error (nil: seeded, by this call or another instance; wrapping
// redisstore.ErrExpired: its window is over, the projection into it is
// dropped).
func (p *Projector) reseedMissing(ctx context.Context, batch []redisstore.Application, res []redisstore.ApplyResult) map[string]error {
	var keys []string
	seen := map[string]bool{}
	for j := range res {
		for ki, o := range res[j].Outcomes {
			if k := batch[j].Keys[ki]; o == redisstore.Missing && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	out := make(map[string]error, len(keys))
	if len(keys) == 0 {
		return out
	}
	errs := make([]error, len(keys))
	sem := make(chan struct{}, reseedConcurrency)
	var wg sync.WaitGroup
	for i, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, errs[i] = reseed.Counter(ctx, p.DB, p.Redis, k)
		})
	}
	wg.Wait()
	for i, k := range keys {
		switch {
		case errors.Is(errs[i], redisstore.ErrExpired):
			p.observe("expired")
		case errs[i] == nil:
			p.observe("reseeded")
		}
		out[k] = errs[i]
	}
	return out
}

// projectEach projects the pending applications one by one, projectConcurrency
// at a time (the pre-batch path, kept for when the batch scripts fail).
func (p *Projector) projectEach(ctx context.Context, pending []int, cur []redisstore.Application, errs []error) {
	sem := make(chan struct{}, projectConcurrency)
	var wg sync.WaitGroup
	for _, i := range pending {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = p.Project(ctx, cur[i])
		})
	}
	wg.Wait()
}
