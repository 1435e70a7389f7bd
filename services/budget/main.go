// Command budget owns keys, principals and budgets, and admits requests: it
// checks every budget that applies to a request and reserves the request's
// upper-bound cost atomically in Redis. It serves Connect, gRPC and gRPC-Web.
//
// Keys, principals and budgets live in Postgres (internal/store); per-request
// reads go through a cache that every instance keeps in step with
// LISTEN/NOTIFY (internal/cache); the Connect API is internal/api; crossed
// soft thresholds are announced on the BUDGET stream and to an optional
// webhook, once across instances (internal/thresholds); budgetsvc wires them
// together.
//
// Configuration (flags, or the environment variables in parentheses):
//
//	-http-addr (HTTP_ADDR)        Connect API, /healthz, /readyz, /metrics; default 127.0.0.1:4010
//	-nats-url (NATS_URL)          NATS with JetStream (budget threshold events)
//	-database-url (DATABASE_URL)  Postgres; migrations of the budget set run at start
//	-redis-url (REDIS_URL)        Redis holding counters and reservations
//	-catalog-file (PRICING_CATALOG_FILE)  price map merged over the built-in catalog, for estimates
//	-reservation-ttl (BUDGET_RESERVATION_TTL)  how long an unsettled reservation counts; default 5m
//	-redis-fault-policy (BUDGET_REDIS_FAULT_POLICY)  fail_closed (default) or last_known
//	-max-tokens-cap (BUDGET_MAX_TOKENS_CAP)  output tokens assumed without max_tokens;
//	                              0: the catalog's max output tokens, else 4096
//	-reserve-batch (BUDGET_RESERVE_BATCH)  most admissions decided in one Redis script call
//	                              (group commit); default 64, 1 sends each alone
//	-reserve-batch-inflight (BUDGET_RESERVE_BATCH_INFLIGHT)  batch calls in flight at once; default 2
//	-lease-max-age (BUDGET_LEASE_MAX_AGE)  how long one Redis reservation (a lease) serves the
//	                              requests on its budgets; default 200ms, 0 reserves per request
//	-pprof (BUDGET_PPROF)         serve net/http/pprof under /debug/pprof/ on -http-addr; default off
//	-gc-percent (BUDGET_GC_PERCENT)  Go GC target (as GOGC) unless GOGC is set; default 400
//	-threshold-interval (BUDGET_THRESHOLD_INTERVAL)  how often soft thresholds are checked; default 5s
//	-threshold-webhook-url (BUDGET_THRESHOLD_WEBHOOK_URL)  http(s) URL POSTed each crossed soft
//	                              threshold (JSON, Idempotency-Key header); default none
//	-threshold-webhook-timeout (BUDGET_THRESHOLD_WEBHOOK_TIMEOUT)  one webhook call's limit; default 10s
//	-loss-fence-hold (BUDGET_LOSS_FENCE_HOLD)  after a Redis data loss, the least time admission
//	                              against budgets stays fenced (then until the pipeline is drained);
//	                              default the reservation TTL plus the lease max age
//	-log-level (LOG_LEVEL)        debug, info, warn, error
//	-shutdown-grace (SHUTDOWN_GRACE)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/migrations"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
	"github.com/spendledger/spendledger/services/budget/internal/fence"
	"github.com/spendledger/spendledger/services/internal/catalogfile"
	"github.com/spendledger/spendledger/services/internal/envflag"
	"github.com/spendledger/spendledger/services/internal/serve"
	"github.com/spendledger/spendledger/services/internal/stores"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "budget:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := envflag.New("budget", stderr)
	sf := serve.DefineFlags(fs, "127.0.0.1:4010")
	natsURL := stores.NATSURLFlag(fs)
	dbURL := stores.DatabaseURLFlag(fs)
	redisURL := stores.RedisURLFlag(fs)
	catalogFile := catalogfile.Flag(fs)
	reservationTTL := fs.Duration("reservation-ttl", "BUDGET_RESERVATION_TTL", 5*time.Minute, "how long an unsettled reservation counts against budgets")
	faultPolicy := fs.String("redis-fault-policy", "BUDGET_REDIS_FAULT_POLICY", "fail_closed", "when Redis cannot answer: fail_closed, or last_known (admit against the last spend seen, unreserved)")
	maxTokensCap := fs.Int("max-tokens-cap", "BUDGET_MAX_TOKENS_CAP", 0, "output tokens assumed for a request without max_tokens; 0 uses the catalog's max output tokens (else 4096)")
	batchSize := fs.Int("reserve-batch", "BUDGET_RESERVE_BATCH", 64, "most admissions decided in one Redis script call (group commit); 1 sends each alone")
	withPprof := fs.Bool("pprof", "BUDGET_PPROF", false, "serve net/http/pprof under /debug/pprof/ (profiling; off by default because it exposes internals on the API address)")
	applyGC := serve.GCPercentFlag(fs, "BUDGET_GC_PERCENT")
	leaseMaxAge := fs.Duration("lease-max-age", "BUDGET_LEASE_MAX_AGE", 200*time.Millisecond, "how long one Redis reservation serves the requests on its budgets (admission leases); 0 reserves per request")
	batchInFlight := fs.Int("reserve-batch-inflight", "BUDGET_RESERVE_BATCH_INFLIGHT", 2, "group-commit script calls in flight at once")
	thresholdInterval := fs.Duration("threshold-interval", "BUDGET_THRESHOLD_INTERVAL", 5*time.Second, "how often settled spend is checked against soft thresholds")
	webhookURL := fs.String("threshold-webhook-url", "BUDGET_THRESHOLD_WEBHOOK_URL", "", "http(s) URL to POST each crossed soft threshold to (JSON); empty: events only")
	fenceHold := fs.Duration("loss-fence-hold", "BUDGET_LOSS_FENCE_HOLD", 0, "after a Redis data loss, the least time admission against budgets stays fenced; 0 is the reservation TTL")
	webhookTimeout := fs.Duration("threshold-webhook-timeout", "BUDGET_THRESHOLD_WEBHOOK_TIMEOUT", 10*time.Second, "time limit of one webhook call")
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	log, err := serve.NewLogger(stderr, "budget", *sf.LogLevel)
	if err != nil {
		return err
	}
	applyGC(getenv)

	srv := serve.New(log)
	nc, stream, err := stores.NATS(*natsURL, "budget", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	pool, err := stores.Postgres(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	rdb, err := stores.Redis(*redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// NATS carries only threshold events here: its outage must not make the
	// budget service (and, through it, every gateway) unready.
	srv.AddCheck("postgres", stores.PostgresCheck(pool))
	srv.AddCheck("redis", stores.RedisCheck(rdb))
	catalog, err := catalogfile.Load(*catalogFile)
	if err != nil {
		return err
	}
	if *batchSize < 1 || *batchInFlight < 1 {
		return fmt.Errorf("-reserve-batch and -reserve-batch-inflight must be at least 1")
	}
	if *fenceHold < 0 {
		return fmt.Errorf("-loss-fence-hold must not be negative")
	}
	if *leaseMaxAge < 0 {
		return fmt.Errorf("-lease-max-age must not be negative")
	}
	if *fenceHold == 0 {
		// A lease hands out parts for up to its max age after Redis lost
		// it, and each part may be in flight for a reservation TTL.
		*fenceHold = *reservationTTL + *leaseMaxAge
	}
	counters := redisstore.New(rdb, redisstore.WithLossFence())
	guard := &fence.Guard{DB: pool, Redis: counters, Hold: *fenceHold, Drained: fence.PipelineDrained(stream, pool),
		Now: time.Now, Log: log, Metrics: fence.NewMetrics(srv.Registry)}
	admit, err := budgetsvc.AdmissionConfig{
		Redis: counters, DB: pool, Catalog: catalog, RecoverLoss: guard.Recover,
		ReservationTTL: *reservationTTL, MaxTokensCap: int64(*maxTokensCap),
		RedisFaultPolicy: *faultPolicy,
		ReserveBatch: budgetsvc.BatchConfig{
			Disabled: *batchSize == 1, MaxSize: *batchSize, MaxInFlight: *batchInFlight,
		},
		Lease: budgetsvc.LeaseConfig{MaxAge: *leaseMaxAge},
		Log:   log, Registerer: srv.Registry,
	}.Admission()
	if err != nil {
		return err
	}
	svc := budgetsvc.New(budgetsvc.Config{Pool: pool, Log: log, Registerer: srv.Registry, Admission: admit})
	srv.Mux.Handle(svc.Routes())
	if *withPprof {
		srv.HandlePprof()
	}
	if *thresholdInterval <= 0 {
		return fmt.Errorf("-threshold-interval must be positive")
	}
	watcher, err := svc.ThresholdWatcher(budgetsvc.ThresholdConfig{
		Redis: counters, JetStream: stream,
		WebhookURL: *webhookURL, WebhookTimeout: *webhookTimeout, Interval: *thresholdInterval,
		// Costs land in the window their request was admitted in, up to a
		// reservation's lifetime (plus pipeline lag) after it ended.
		LateWindow: *reservationTTL + 5*time.Minute,
		Log:        log, Registerer: srv.Registry,
	})
	if err != nil {
		return err
	}

	migrated := srv.Start(ctx, "migrations", func(ctx context.Context) error {
		return stores.Migrate(ctx, log, pool, migrations.Budget)
	})
	go func() {
		_ = srv.Retry(ctx, "ensure streams", func(ctx context.Context) error { return js.EnsureStreams(ctx, stream) })
	}()

	// The cache's LISTEN loop and the threshold watcher live exactly as long
	// as the server: they are stopped and waited for before the deferred
	// closes run.
	bgCtx, stopBackground := context.WithCancel(ctx)
	cacheDone := make(chan struct{})
	go func() {
		defer close(cacheDone)
		if err := svc.RunCache(bgCtx); err != nil {
			log.Error("budget cache listener stopped", "err", err)
		}
	}()
	// The fence's table comes with the migrations too.
	fenceDone := make(chan struct{})
	go func() {
		defer close(fenceDone)
		select {
		case <-migrated:
			guard.Run(bgCtx, time.Second)
		case <-bgCtx.Done():
		}
	}()
	// The watcher's table comes with the migrations.
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-migrated:
			watcher.Run(bgCtx)
		case <-bgCtx.Done():
		}
	}()
	err = srv.Run(ctx, *sf.Addr, *sf.Grace)
	svc.Close() // the leases' rests go back while Redis is still up
	stopBackground()
	<-cacheDone
	<-watcherDone
	<-fenceDone
	return err
}
