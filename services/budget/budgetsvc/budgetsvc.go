// Package budgetsvc assembles the budget service from its parts: the Postgres
// store, the cross-instance cache in front of it, and the Connect handler.
//
// It is the service's composition root, used by main. It is not internal so
// that the e2e module can run the real assembly in-process against a real
// Postgres (two instances on one database, for cache invalidation); other
// services must talk to the budget service over Connect and never import it.
package budgetsvc

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/api"
	"github.com/spendledger/spendledger/services/budget/internal/cache"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// ListenerAppName is the application_name of each instance's LISTEN
// connection in pg_stat_activity.
const ListenerAppName = cache.ListenerAppName

// Config is what the service needs.
type Config struct {
	Pool *pgxpool.Pool
	Log  *slog.Logger
	// Registerer receives the cache metrics; nil records none.
	Registerer prometheus.Registerer
	// CacheMaxAge is the safety-net lifetime of a cache entry (default 30s);
	// notifications, not this, make changes visible.
	CacheMaxAge time.Duration
	// Admission builds admission on the cached per-request reads. It
	// returns the Admitter serving Admit and Release, and the SpendReader
	// that fills spent and reserved in GetKey and GetPrincipal. Nil (as
	// today) answers Admit and Release with Unimplemented and reports zero
	// spend (see api.SpendReader).
	Admission func(Lookup) (api.Admitter, api.SpendReader)
}

// Lookup is what admission reads for every request, from the cache that
// every instance keeps in step with LISTEN/NOTIFY.
type Lookup interface {
	// KeyByID returns the key with the flags that refuse it
	// (store.AuthKey.Refusal) and what it belongs to: the team, user and
	// org whose budgets apply.
	KeyByID(ctx context.Context, id string) (store.AuthKey, error)
	// BudgetsFor returns every budget on the request's scopes
	// (scope.Identity.Scopes); each Budget's Window() names its counter
	// with scope.CounterKey.
	BudgetsFor(ctx context.Context, scopes []scope.Scope) ([]store.Budget, error)
	// Blocked returns the first of principals (the request's end user and
	// tags) that is blocked; ok false if none is.
	Blocked(ctx context.Context, principals []scope.Scope) (blocked scope.Scope, ok bool, err error)
}

// Service is one budget service instance.
type Service struct {
	Store   *store.PG
	Cache   *cache.Cache
	Handler *api.Handler
	pool    *pgxpool.Pool
	// closeAdmission gives back what admission holds for requests that
	// will not come (lease rests); nil without admission.
	closeAdmission func()
}

// New wires the store, the cache and the handler. Call RunCache for the cache
// to start caching (until it runs, every read goes to Postgres).
func New(cfg Config) *Service {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var metrics *cache.Metrics
	if cfg.Registerer != nil {
		metrics = cache.NewMetrics(cfg.Registerer)
	}
	st := store.NewPG(cfg.Pool)
	c := cache.New(st, cache.Options{MaxAge: cfg.CacheMaxAge, Log: log, Metrics: metrics})
	// This instance's writes invalidate its own cache at once; other
	// instances hear them through NOTIFY.
	st.OnChange(c.Apply)
	var admitter api.Admitter
	var spend api.SpendReader
	if cfg.Admission != nil {
		admitter, spend = cfg.Admission(c)
	}
	h := api.New(api.Config{Store: st, Keys: c, SpendReader: spend, Admitter: admitter, Log: log})
	svc := &Service{Store: st, Cache: c, Handler: h, pool: cfg.Pool}
	if cl, ok := admitter.(interface{ Close() }); ok {
		svc.closeAdmission = cl.Close
	}
	return svc
}

// Close gives back what admission holds for requests that will not come:
// the unused rest of every open lease. Call it once the server has stopped
// admitting (after it drained); otherwise the rests count until their TTL.
func (s *Service) Close() {
	if s.closeAdmission != nil {
		s.closeAdmission()
	}
}

// Routes returns the Connect handler and the path to mount it on.
//
// Responses under compressMinBytes are sent uncompressed even to a client
// that accepts gzip: an Admit answer is about a kilobyte, and on the
// loopback or LAN hop from the gateway compressing it cost more CPU than
// admission itself (about a fifth of the server's CPU per call in
// e2e/admission BenchmarkAdmitInProcess, plus the client's inflating).
func (s *Service) Routes() (string, http.Handler) {
	return budgetv1connect.NewBudgetServiceHandler(s.Handler, connect.WithCompressMinBytes(compressMinBytes))
}

// compressMinBytes is the smallest response worth compressing: list pages
// of keys and budgets, not per-request answers.
const compressMinBytes = 16 << 10

// RunCache LISTENs for changes on a dedicated connection (configured like the
// pool's) until ctx is done.
func (s *Service) RunCache(ctx context.Context) error {
	return s.Cache.Run(ctx, s.pool.Config().ConnConfig)
}
