// Command ledger keeps the append-only spend ledger: it consumes CostComputed
// from the COSTS stream, appends entries to Postgres, projects them into the
// Redis counters admission reads, and answers spend queries over Connect.
//
// Configuration (flags, or the environment variables in parentheses):
//
//	-http-addr (HTTP_ADDR)        Connect API, /healthz, /readyz, /metrics; default 127.0.0.1:4020
//	-nats-url (NATS_URL)          NATS with JetStream; default nats://127.0.0.1:4222
//	-database-url (DATABASE_URL)  Postgres; migrations of the ledger set run at start
//	-redis-url (REDIS_URL)        Redis holding the spend counters
//	-batch-size (LEDGER_BATCH_SIZE)          most entries committed per transaction; default 2000
//	-flush-interval (LEDGER_FLUSH_INTERVAL)  how long a batch that is not full waits for more
//	                              entries; default 2ms (a lone event is never held longer)
//	-log-level (LOG_LEVEL)        debug, info, warn, error
//	-pprof (LEDGER_PPROF)         serve net/http/pprof under /debug/pprof/ on -http-addr; default off
//	-gc-percent (LEDGER_GC_PERCENT)  Go GC target (as GOGC) unless GOGC is set; default 400
//	-shutdown-grace (SHUTDOWN_GRACE)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spendledger/spendledger/gen/spendledger/ledger/v1/ledgerv1connect"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/migrations"
	"github.com/spendledger/spendledger/services/internal/envflag"
	"github.com/spendledger/spendledger/services/internal/serve"
	"github.com/spendledger/spendledger/services/internal/stores"
	"github.com/spendledger/spendledger/services/ledger/internal/api"
	"github.com/spendledger/spendledger/services/ledger/internal/ingest"
)

// consumerName is the durable every ledger instance shares.
const consumerName = "ledger"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && commands[args[0]] != nil:
		err = commands[args[0]](ctx, args[1:], os.Getenv, os.Stdout, os.Stderr)
	case len(args) > 0 && args[0] == "help":
		fmt.Fprint(os.Stdout, usage)
		return
	default:
		err = run(ctx, args, os.Getenv, os.Stderr)
	}
	if err == errDiffer {
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledger:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := envflag.New("ledger", stderr)
	sf := serve.DefineFlags(fs, "127.0.0.1:4020")
	natsURL := stores.NATSURLFlag(fs)
	dbURL := stores.DatabaseURLFlag(fs)
	redisURL := stores.RedisURLFlag(fs)
	batchSize := fs.Int("batch-size", "LEDGER_BATCH_SIZE", 2000, "most entries committed per transaction (under a backlog; a lone event waits only -flush-interval)")
	flush := fs.Duration("flush-interval", "LEDGER_FLUSH_INTERVAL", 2*time.Millisecond, "how long a batch that is not full waits for more entries")
	withPprof := fs.Bool("pprof", "LEDGER_PPROF", false, "serve net/http/pprof under /debug/pprof/ (profiling; off by default because it exposes internals on the API address)")
	applyGC := serve.GCPercentFlag(fs, "LEDGER_GC_PERCENT")
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	log, err := serve.NewLogger(stderr, "ledger", *sf.LogLevel)
	if err != nil {
		return err
	}
	applyGC(getenv)

	srv := serve.New(log)
	nc, stream, err := stores.NATS(*natsURL, "ledger", log)
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
	srv.AddCheck("nats", stores.NATSCheck(nc))
	srv.AddCheck("postgres", stores.PostgresCheck(pool))
	srv.AddCheck("redis", stores.RedisCheck(rdb))
	path, handler := ledgerv1connect.NewLedgerServiceHandler(api.New(pool))
	srv.Mux.Handle(path, handler)
	if *withPprof {
		srv.HandlePprof()
	}

	migrated := srv.Start(ctx, "migrations", func(ctx context.Context) error {
		return stores.Migrate(ctx, log, pool, migrations.Ledger)
	})
	var consumer jetstream.Consumer
	streamsReady := srv.Start(ctx, "streams", func(ctx context.Context) error {
		if err := js.EnsureStreams(ctx, stream); err != nil {
			return err
		}
		c, err := js.EnsureConsumer(ctx, stream, js.CostsStream, jetstream.ConsumerConfig{
			Durable:       consumerName,
			Description:   "appends CostComputed to the ledger",
			MaxAckPending: 4 * *batchSize,
		})
		consumer = c
		return err
	})

	backlog := &ingest.Backlog{DB: pool, Log: log}
	metrics := ingest.NewMetrics(srv.Registry, backlog)
	projector := &ingest.Projector{DB: pool, Redis: redisstore.New(rdb), Observe: metrics.Observe}
	ingester := &ingest.Ingester{
		DB: pool, JS: stream, Projector: projector, Backlog: backlog,
		Consumer: consumerName, Log: log, Metrics: metrics,
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		// Consume only once the schema exists and the consumer is in place.
		for _, ready := range []<-chan struct{}{migrated, streamsReady} {
			select {
			case <-ctx.Done():
				return
			case <-ready:
			}
		}
		wg.Go(func() { backlog.Track(ctx, consumer, time.Second) })
		wg.Go(func() { backlog.Catchup(ctx, projector, stores.RedisCheck(rdb), time.Second) })
		if err := js.ConsumeBatches(ctx, consumer, *batchSize, ingester.Handle, js.WithLinger(*flush)); err != nil {
			log.Error("consumer stopped", "err", err)
		}
		// Handle leaves a batch's projection and acks running; they finish
		// before the stores close.
		ingester.Drain()
	})

	err = srv.Run(ctx, *sf.Addr, *sf.Grace)
	// The batch in flight commits and acks before the stores close.
	wg.Wait()
	return err
}
