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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spendledger/spendledger/gen/spendledger/ledger/v1/ledgerv1connect"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/migrations"
	"github.com/spendledger/spendledger/services/internal/envflag"
	"github.com/spendledger/spendledger/services/internal/serve"
	"github.com/spendledger/spendledger/services/internal/stores"
	"github.com/spendledger/spendledger/services/ledger/internal/api"
)

// consumerName is the durable every ledger instance shares.
const consumerName = "ledger"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
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
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	log, err := serve.NewLogger(stderr, "ledger", *sf.LogLevel)
	if err != nil {
		return err
	}

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

	srv.Start(ctx, "migrations", func(ctx context.Context) error {
		return stores.Migrate(ctx, log, pool, migrations.Ledger)
	})
	srv.Start(ctx, "streams", func(ctx context.Context) error {
		if err := js.EnsureStreams(ctx, stream); err != nil {
			return err
		}
		_, err := js.EnsureConsumer(ctx, stream, js.CostsStream, jetstream.ConsumerConfig{
			Durable:     consumerName,
			Description: "appends CostComputed to the ledger",
		})
		return err
	})

	return srv.Run(ctx, *sf.Addr, *sf.Grace)
}
