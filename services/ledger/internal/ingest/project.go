package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
	// "direct", "duplicate", "in_seed"), and of "reseeded", "expired" and
	// "fallback".
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
