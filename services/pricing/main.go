// Command pricing prices usage: it consumes UsageRecorded from the USAGE stream
// and publishes CostComputed to COSTS, acknowledging its input only after the
// output is durably published.
//
// Configuration (flags, or the environment variables in parentheses):
//
//	-http-addr (HTTP_ADDR)        /healthz, /readyz, /metrics; default 127.0.0.1:4030
//	-nats-url (NATS_URL)          NATS with JetStream; default nats://127.0.0.1:4222
//	-catalog-file (PRICING_CATALOG_FILE)  a price map in LiteLLM's JSON shape whose entries
//	                              replace or extend the built-in catalog, entry by entry
//	-batch-size (PRICING_BATCH_SIZE)  events priced and published per batch; default 256
//	-log-level (LOG_LEVEL)        debug, info, warn, error
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

	"github.com/nats-io/nats.go/jetstream"

	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/services/internal/catalogfile"
	"github.com/spendledger/spendledger/services/internal/envflag"
	"github.com/spendledger/spendledger/services/internal/pricer"
	"github.com/spendledger/spendledger/services/internal/serve"
	"github.com/spendledger/spendledger/services/internal/stores"
)

// consumerName is the durable every pricing instance shares.
const consumerName = "pricing"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pricing:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := envflag.New("pricing", stderr)
	sf := serve.DefineFlags(fs, "127.0.0.1:4030")
	natsURL := stores.NATSURLFlag(fs)
	catalogFile := catalogfile.Flag(fs)
	batchSize := fs.Int("batch-size", "PRICING_BATCH_SIZE", 256, "events priced and published per batch")
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	log, err := serve.NewLogger(stderr, "pricing", *sf.LogLevel)
	if err != nil {
		return err
	}

	catalog, err := catalogfile.Load(*catalogFile)
	if err != nil {
		return err
	}
	log.Info("catalog loaded", "version", catalog.Version(), "entries", catalog.Len(), "override_file", *catalogFile)

	srv := serve.New(log)
	nc, stream, err := stores.NATS(*natsURL, "pricing", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	srv.AddCheck("nats", stores.NATSCheck(nc))
	var consumer jetstream.Consumer
	ready := srv.Start(ctx, "streams", func(ctx context.Context) error {
		if err := js.EnsureStreams(ctx, stream); err != nil {
			return err
		}
		c, err := js.EnsureConsumer(ctx, stream, js.UsageStream, jetstream.ConsumerConfig{
			Durable:       consumerName,
			Description:   "prices UsageRecorded into CostComputed",
			MaxAckPending: 4 * *batchSize,
		})
		consumer = c
		return err
	})

	w := &worker{js: stream, pricer: pricer.New(catalog), log: log, metrics: newMetrics(srv.Registry)}
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			return
		case <-ready:
		}
		if err := js.ConsumeBatches(ctx, consumer, *batchSize, w.handle); err != nil {
			log.Error("consumer stopped", "err", err)
		}
	})
	err = srv.Run(ctx, *sf.Addr, *sf.Grace)
	// The in-flight batch finishes before the connection closes.
	wg.Wait()
	return err
}
