// Command budget owns keys, principals and budgets, and admits requests: it
// checks every budget that applies to a request and reserves the request's
// upper-bound cost atomically in Redis. It serves Connect, gRPC and gRPC-Web.
//
// Configuration (flags, or the environment variables in parentheses):
//
//	-http-addr (HTTP_ADDR)        Connect API, /healthz, /readyz, /metrics; default 127.0.0.1:4010
//	-nats-url (NATS_URL)          NATS with JetStream (budget threshold events)
//	-database-url (DATABASE_URL)  Postgres; migrations of the budget set run at start
//	-redis-url (REDIS_URL)        Redis holding counters and reservations
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

	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/migrations"
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
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	log, err := serve.NewLogger(stderr, "budget", *sf.LogLevel)
	if err != nil {
		return err
	}

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
	srv.AddCheck("nats", stores.NATSCheck(nc))
	srv.AddCheck("postgres", stores.PostgresCheck(pool))
	srv.AddCheck("redis", stores.RedisCheck(rdb))
	path, handler := budgetv1connect.NewBudgetServiceHandler(budgetv1connect.UnimplementedBudgetServiceHandler{})
	srv.Mux.Handle(path, handler)

	srv.Start(ctx, "migrations", func(ctx context.Context) error {
		return stores.Migrate(ctx, log, pool, migrations.Budget)
	})
	srv.Start(ctx, "streams", func(ctx context.Context) error {
		return js.EnsureStreams(ctx, stream)
	})

	return srv.Run(ctx, *sf.Addr, *sf.Grace)
}
