package budgetsvc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/services/budget/internal/admission"
	"github.com/spendledger/spendledger/services/budget/internal/api"
)

// AdmissionConfig is admission's configuration: what main reads from its
// flags, and what in-process tests set. It lives here, not in the internal
// admission package, so that the e2e module can run the same assembly the
// binary runs (Config.Admission = cfg.Admission()).
type AdmissionConfig struct {
	// Redis holds the counters and reservations.
	Redis *redisstore.Store
	// DB is the ledger (entries table), for reseeding missing counters.
	DB pgstore.DB
	// Catalog prices estimates; the same catalog pricing uses.
	Catalog *pricing.Catalog
	// ReservationTTL is how long an unsettled reservation counts; default 5m.
	ReservationTTL time.Duration
	// MaxTokensCap, when > 0, is the output estimate of a request without
	// max_tokens (else the catalog's max output tokens, else 4096).
	MaxTokensCap int64
	// RedisFaultPolicy is "fail_closed" (default) or "last_known".
	RedisFaultPolicy string
	// ReserveBatch tunes the group commit of Reserve calls (see
	// admission.BatchConfig); the zero value takes the defaults, and
	// Disabled sends every Reserve on its own.
	ReserveBatch admission.BatchConfig
	// Lease tunes admission leases (see admission.LeaseConfig); the zero
	// value turns them off: one reservation per request.
	Lease admission.LeaseConfig
	Log   *slog.Logger
	// Registerer receives admission's metrics; nil records none.
	Registerer prometheus.Registerer
	// RecoverLoss records a Redis data loss when the Store (built
	// WithLossFence) reports one; nil leaves ErrLost a Redis fault.
	RecoverLoss func(context.Context) error
	// Now is the clock that picks budget windows; nil is time.Now. Tests
	// inject it to cross a window boundary without waiting.
	Now func() time.Time
}

// BatchConfig is admission.BatchConfig, re-exported for main and the e2e
// tests, which cannot import the internal package.
type BatchConfig = admission.BatchConfig

// LeaseConfig is admission.LeaseConfig, re-exported likewise.
type LeaseConfig = admission.LeaseConfig

// Admission validates cfg and returns the Config.Admission constructor:
// one Admitter, serving Admit, Release and spend reads, on the cache the
// service builds.
func (cfg AdmissionConfig) Admission() (func(Lookup) (api.Admitter, api.SpendReader), error) {
	policy, err := admission.ParsePolicy(cfg.RedisFaultPolicy)
	if err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}
	switch {
	case cfg.Redis == nil:
		return nil, fmt.Errorf("admission: no Redis store")
	case cfg.DB == nil:
		return nil, fmt.Errorf("admission: no ledger database (needed to reseed counters)")
	case cfg.Catalog == nil:
		return nil, fmt.Errorf("admission: no price catalog")
	}
	return func(l Lookup) (api.Admitter, api.SpendReader) {
		a := admission.New(admission.Config{
			Budgets: l, Redis: cfg.Redis, DB: cfg.DB, Catalog: cfg.Catalog,
			ReservationTTL: cfg.ReservationTTL, MaxTokensCap: cfg.MaxTokensCap,
			OnRedisDown: policy, Batch: cfg.ReserveBatch, Lease: cfg.Lease, RecoverLoss: cfg.RecoverLoss,
			Log: cfg.Log, Registerer: cfg.Registerer, Now: cfg.Now,
		})
		return a, a
	}, nil
}
