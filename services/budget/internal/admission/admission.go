// Package admission decides whether a request may spend, and reserves its
// upper-bound cost on every budget that applies, in one atomic Redis step.
//
// The promise: with max_tokens set, concurrent requests on any number of
// gateway and budget instances never push a budget's spend past its limit,
// because every admission checks spent + reserved + estimate ≤ limit and
// reserves its estimate in the same script. Without max_tokens the estimate
// uses a cap (the catalog's max output tokens unless configured), and the
// bound holds only as far as the upstream respects that cap.
//
// A request is refused (PermissionDenied, naming it) before anything is
// read from Redis when its key is refused (store.AuthKey.Refusal), or its
// end user or one of its tags (its own or its key's) is blocked. The
// blocked flags come from the cross-instance cache, so blocking and
// unblocking take effect on every instance at once.
//
// Provider and deployment budgets filter the candidates instead of reserving:
// a request names several deployments and uses one, so reserving on all of
// them would starve the others. Their spend is settled on the served
// deployment's counters (Admission.candidate_counters), so under heavy
// concurrency they can overshoot by the requests in flight; key, team, user,
// org, end-user, tag and per-model budgets cannot.
//
// Most admissions make no Redis call at all: an instance reserves a lease
// for many requests on the same budgets and hands out parts of it in memory
// (lease.go, ADR 2 "Leases"). The check that admits a lease is the one that
// admits a request, and parts never exceed their lease.
//
// Concurrent admissions share Redis script calls (group commit, batch.go):
// redisstore.ReserveBatch decides each request exactly as its own Reserve
// would, in arrival order, so the promise above is unchanged; it only costs
// Redis less per request.
//
// When Redis cannot answer, OnRedisDown decides. FailClosed answers
// Unavailable. LastKnown applies the usual rule (spent + reserved +
// estimate ≤ limit, candidates filtered the same way) to the last state
// this instance read of every counter plus what it admitted since, reserves
// nothing, and fails closed for a counter it never read. Neither applies
// when the caller's context ended or admission built an invalid store
// request: those are not outages, and must never admit unreserved.
package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/reseed"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// Budgets is where admission finds keys, budgets and blocked principals: the
// cross-instance cache.
type Budgets interface {
	BudgetsFor(ctx context.Context, scopes []scope.Scope) ([]store.Budget, error)
	KeyByID(ctx context.Context, id string) (store.AuthKey, error)
	// Blocked returns the first of principals that is blocked.
	Blocked(ctx context.Context, principals []scope.Scope) (blocked scope.Scope, ok bool, err error)
}

// Policy is what admission does when Redis cannot answer.
type Policy int

const (
	// FailClosed denies (Unavailable) every request that has a budget.
	FailClosed Policy = iota
	// LastKnown admits against the last spend this instance saw, without a
	// reservation. Every such admission is logged and counted.
	LastKnown
)

// ParsePolicy reads "fail_closed" or "last_known".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "fail_closed", "":
		return FailClosed, nil
	case "last_known":
		return LastKnown, nil
	}
	return 0, fmt.Errorf("redis fault policy %q: want fail_closed or last_known", s)
}

// Config is what an Admitter needs.
type Config struct {
	Budgets Budgets
	Redis   *redisstore.Store
	// DB is the ledger, for reseeding missing counters.
	DB      pgstore.DB
	Catalog *pricing.Catalog
	// ReservationTTL is how long an unsettled reservation counts; default 5m.
	ReservationTTL time.Duration
	// MaxTokensCap, when > 0, is the output estimate of a request without
	// max_tokens; otherwise the catalog's max output tokens, else
	// DefaultMaxTokens.
	MaxTokensCap int64
	OnRedisDown  Policy
	// RecoverLoss, when set, records a Redis data loss (the Store reports
	// redisstore.ErrLost; internal/fence) so that admission can go on, fenced.
	RecoverLoss func(context.Context) error
	// Batch tunes the group commit of Reserve calls (batch.go).
	Batch BatchConfig
	// Lease tunes admission leases (lease.go); MaxAge 0 turns them off.
	Lease      LeaseConfig
	Log        *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// DefaultMaxTokens is the output estimate when neither the request, the
// configuration nor the catalog gives one.
const DefaultMaxTokens = 4096

// Admitter implements Admit and Release.
type Admitter struct {
	cfg       Config
	prices    *resolutions
	lastKnown *lastKnown
	metrics   *metrics
	batch     *batcher // nil: every Reserve on its own
	leases    *leases  // nil: one reservation per request
}

// New returns an Admitter.
func New(cfg Config) *Admitter {
	if cfg.ReservationTTL <= 0 {
		cfg.ReservationTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &Admitter{
		cfg:     cfg,
		prices:  newResolutions(cfg.Catalog),
		metrics: newMetrics(cfg.Registerer),
	}
	if cfg.OnRedisDown == LastKnown {
		a.lastKnown = newLastKnown()
	}
	if !cfg.Batch.Disabled && !cfg.Redis.Cluster() {
		a.batch = newBatcher(cfg.Redis, cfg.Batch, a.metrics.batchSizes)
	}
	if cfg.Lease.MaxAge > 0 {
		a.leases = newLeases(cfg.Lease, cfg.ReservationTTL, cfg.Log, a.metrics.leases, a.reserve, func(ctx context.Context, id string, keys []string) error {
			_, err := cfg.Redis.Release(ctx, id, keys)
			return err
		})
	}
	return a
}

// Close releases the unused rest of every open lease. Call it once no more
// requests are admitted.
func (a *Admitter) Close() {
	if a.leases != nil {
		a.leases.closeAll()
	}
}

// Release implements the Release RPC: it voids a reservation on the counters
// it holds. Releasing twice, or after settlement or expiry, is a no-op.
func (a *Admitter) Release(ctx context.Context, req *connect.Request[budgetv1.ReleaseRequest]) (*connect.Response[budgetv1.ReleaseResponse], error) {
	id := req.Msg.GetReservationId()
	if id == "" {
		return nil, invalid("reservation_id is required")
	}
	keys := req.Msg.GetCounterKeys()
	for _, k := range keys {
		if _, _, _, err := scope.ParseCounterKey(k); err != nil {
			return nil, invalid("counter_keys: %v", err)
		}
	}
	if len(keys) == 0 {
		return connect.NewResponse(&budgetv1.ReleaseResponse{}), nil
	}
	released, err := a.cfg.Redis.Release(ctx, id, keys)
	if errors.Is(err, redisstore.ErrInvalid) {
		// An over-long id or a key given twice: the caller's mistake, not
		// an outage.
		return nil, invalid("release: %v", err)
	}
	if err != nil {
		// The reservation expires on its own; the caller need not retry.
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("release %s: %w", id, err))
	}
	return connect.NewResponse(&budgetv1.ReleaseResponse{Released: released}), nil
}

func invalid(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

// reserve runs Reserve, reseeding missing counters from the ledger first.
func (a *Admitter) reserve(ctx context.Context, req redisstore.ReserveRequest) (redisstore.ReserveResult, error) {
	for range 3 {
		var res redisstore.ReserveResult
		var err error
		if a.batch != nil {
			res, err = a.batch.reserve(ctx, req)
		} else {
			res, err = a.cfg.Redis.Reserve(ctx, req)
		}
		if errors.Is(err, redisstore.ErrLost) && a.cfg.RecoverLoss != nil {
			// Redis lost its data: record it (which fences admission
			// until in-flight spend has landed), then ask again.
			if rerr := a.cfg.RecoverLoss(ctx); rerr != nil {
				return res, errors.Join(err, rerr)
			}
			continue
		}
		if err != nil || len(res.Missing) == 0 {
			return res, err
		}
		for _, i := range res.Missing {
			if _, err := reseed.Counter(ctx, a.cfg.DB, a.cfg.Redis, req.Counters[i].Key); err != nil && !errors.Is(err, redisstore.ErrExpired) {
				return res, err
			}
			a.metrics.reseeds.Inc()
		}
	}
	return redisstore.ReserveResult{}, errors.New("counters kept vanishing while reseeding")
}

// read returns counter states, reseeding missing counters first.
func (a *Admitter) read(ctx context.Context, keys []string) ([]redisstore.State, error) {
	states, err := a.cfg.Redis.Read(ctx, keys)
	if err != nil {
		return nil, err
	}
	var reseeded bool
	for i, st := range states {
		if st.Exists {
			continue
		}
		if _, err := reseed.Counter(ctx, a.cfg.DB, a.cfg.Redis, keys[i]); err != nil && !errors.Is(err, redisstore.ErrExpired) {
			return nil, err
		}
		a.metrics.reseeds.Inc()
		reseeded = true
	}
	if reseeded {
		return a.cfg.Redis.Read(ctx, keys)
	}
	return states, nil
}
