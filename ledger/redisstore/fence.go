package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis data loss (a FLUSHALL, a restart without persistence, a failover to
// an empty replica) takes the counters' reservations with it, and a counter
// rebuilt from the ledger misses every cost still on its way there (priced
// but not yet appended, or not yet priced). Admitting against such a counter
// can pass a hard limit by what was in flight (ADR 2, "Redis data loss").
//
// Two keys make the loss visible to admission and hold admission back until
// the in-flight spend has landed:
//
//   - EpochKey exists while Redis holds the data it was given. Whoever
//     admits checks it atomically with the reservation: missing means the
//     data is gone (ErrLost), and the budget service records the loss and
//     sets the fence before it sets a new epoch.
//   - FenceKey exists while admission must refuse (ErrFenced): from the
//     loss until the reservations that were lost have expired and the
//     pipeline has delivered every cost to the ledger.
const (
	EpochKey = "spendledger:epoch"
	FenceKey = "spendledger:fence"
)

var (
	// ErrLost: Redis lost its data (no epoch); the caller must record the
	// loss (fence, then a new epoch) before anything is admitted.
	ErrLost = errors.New("redis lost its data (no epoch key)")
	// ErrFenced: admission is fenced after a Redis data loss.
	ErrFenced = errors.New("admission fenced after a redis data loss")
)

// Fence is the state FenceKey holds: when and why admission was fenced.
type Fence struct {
	Since  time.Time
	Reason string
}

// Epoch returns the current epoch, "" when Redis holds none.
func (s *Store) Epoch(ctx context.Context) (string, error) {
	v, err := s.rdb.Get(ctx, EpochKey).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read epoch: %w", err)
	}
	return v, nil
}

// StartEpoch sets epoch, fencing admission first when fence is not nil, in
// one MULTI: nobody can see the new epoch without the fence.
func (s *Store) StartEpoch(ctx context.Context, epoch string, fence *Fence) error {
	if epoch == "" {
		return fmt.Errorf("%w: empty epoch", ErrInvalid)
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if fence != nil {
			p.Set(ctx, FenceKey, strconv.FormatInt(fence.Since.UnixMilli(), 10)+" "+fence.Reason, 0)
		}
		p.Set(ctx, EpochKey, epoch, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("start epoch %s: %w", epoch, err)
	}
	return nil
}

// CurrentFence returns the fence, nil when admission is not fenced.
func (s *Store) CurrentFence(ctx context.Context) (*Fence, error) {
	v, err := s.rdb.Get(ctx, FenceKey).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read fence: %w", err)
	}
	ms, reason, _ := strings.Cut(v, " ")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("read fence: malformed %q", v)
	}
	return &Fence{Since: time.UnixMilli(n), Reason: reason}, nil
}

// LiftFence ends the fence.
func (s *Store) LiftFence(ctx context.Context) error {
	if err := s.rdb.Del(ctx, FenceKey).Err(); err != nil {
		return fmt.Errorf("lift fence: %w", err)
	}
	return nil
}

// guarded runs script inside MULTI after reading EpochKey and FenceKey, so
// the checks and the script are one atomic step. MULTI cannot make the
// script conditional: when Redis turns out lost or fenced, the script has
// run anyway, and its reply is returned with ErrLost or ErrFenced so the
// caller can undo what it wrote (a reservation admission must not keep).
// EVALSHA cannot fall back to EVAL inside MULTI: after a NOSCRIPT (a Redis
// restart) the script is loaded and the transaction runs again.
func (s *Store) guarded(ctx context.Context, script *redis.Script, keys []string, args ...any) (any, error) {
	for attempt := 0; ; attempt++ {
		var epoch, fence *redis.IntCmd
		var run *redis.Cmd
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			epoch = p.Exists(ctx, EpochKey)
			fence = p.Exists(ctx, FenceKey)
			run = p.EvalSha(ctx, script.Hash(), keys, args...)
			return nil
		})
		if err != nil && redis.HasErrorPrefix(run.Err(), "NOSCRIPT") && attempt == 0 {
			if err := script.Load(ctx, s.rdb).Err(); err != nil {
				return nil, fmt.Errorf("load script: %w", err)
			}
			continue
		}
		var guard error
		if epoch.Err() == nil && fence.Err() == nil {
			switch {
			case epoch.Val() == 0:
				guard = ErrLost
			case fence.Val() == 1:
				guard = ErrFenced
			}
		}
		if run.Err() != nil {
			return nil, errors.Join(guard, run.Err())
		}
		if err != nil {
			return nil, err
		}
		return run.Val(), guard
	}
}
