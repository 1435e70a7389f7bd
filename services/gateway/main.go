// Command gateway is the OpenAI-compatible endpoint clients call. It reads a
// LiteLLM config.yaml unchanged, authenticates virtual keys, asks the budget
// service to admit each request, routes it to a deployment, and publishes one
// UsageRecorded per completed upstream call.
//
// Configuration (flags, or the environment variables in parentheses):
//
//	-http-addr (HTTP_ADDR)        OpenAI API, admin API, /healthz, /readyz, /metrics; default 127.0.0.1:4000
//	-config (GATEWAY_CONFIG)      LiteLLM-style config.yaml; required
//	-budget-url (BUDGET_URL)      budget service base URL; default http://127.0.0.1:4010
//	-ledger-url (LEDGER_URL)      ledger service base URL; default http://127.0.0.1:4020
//	-nats-url (NATS_URL)          NATS with JetStream; default nats://127.0.0.1:4222
//	-spool-dir (SPOOL_DIR)        durable local spool for events while NATS is away; default .data/spool
//	-log-level (LOG_LEVEL)        debug, info, warn, error
//	-shutdown-grace (SHUTDOWN_GRACE)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/internal/envflag"
	"github.com/spendledger/spendledger/services/internal/serve"
	"github.com/spendledger/spendledger/services/internal/stores"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := envflag.New("gateway", stderr)
	sf := serve.DefineFlags(fs, "127.0.0.1:4000")
	configPath := fs.String("config", "GATEWAY_CONFIG", "", "LiteLLM-style config.yaml")
	budgetURL := fs.String("budget-url", "BUDGET_URL", "http://127.0.0.1:4010", "budget service base URL")
	ledgerURL := fs.String("ledger-url", "LEDGER_URL", "http://127.0.0.1:4020", "ledger service base URL")
	spoolDir := fs.String("spool-dir", "SPOOL_DIR", ".data/spool", "directory of the durable event spool")
	natsURL := stores.NATSURLFlag(fs)
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	log, err := serve.NewLogger(stderr, "gateway", *sf.LogLevel)
	if err != nil {
		return err
	}
	if *configPath == "" {
		return errors.New("-config (GATEWAY_CONFIG) is required")
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("config key not understood; ignored", "key", w)
	}
	if cfg.GeneralSettings.MasterKey == "" {
		log.Warn("general_settings.master_key is not set; admin endpoints are disabled")
	}
	if err := os.MkdirAll(*spoolDir, 0o750); err != nil {
		return fmt.Errorf("spool dir: %w", err)
	}
	log.Info("config loaded", "deployments", len(cfg.ModelList), "ledger_url", *ledgerURL)

	srv := serve.New(log)
	// LiteLLM's health paths, for load balancers already pointed at them.
	srv.Mux.Handle("GET /health/liveliness", http.RedirectHandler("/healthz", http.StatusTemporaryRedirect))
	srv.Mux.Handle("GET /health/readiness", http.RedirectHandler("/readyz", http.StatusTemporaryRedirect))

	nc, stream, err := stores.NATS(*natsURL, "gateway", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	// NATS is not a readiness dependency: while it is away, events go to the
	// spool and requests still succeed.
	go func() {
		_ = srv.Retry(ctx, "ensure streams", func(ctx context.Context) error { return js.EnsureStreams(ctx, stream) })
	}()
	srv.AddCheck("budget", httpReady(*budgetURL+"/readyz"))

	return srv.Run(ctx, *sf.Addr, *sf.Grace)
}

// httpReady is a readiness check that a dependency's /readyz answers 200.
func httpReady(url string) serve.Check {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return nil
	}
}
