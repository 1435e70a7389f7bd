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
//	-ledger-url (LEDGER_URL)      ledger service base URL (admin API spend queries); default http://127.0.0.1:4020
//	-nats-url (NATS_URL)          NATS with JetStream; default nats://127.0.0.1:4222
//	-spool-dir (SPOOL_DIR)        durable local spool for events while NATS is away; default .data/spool
//	-catalog-file (PRICING_CATALOG_FILE)  price map merged over the built-in catalog, for the
//	                              x-litellm-response-cost header (use the pricing service's file)
//	-gateway-id (GATEWAY_ID)      this instance's name in events; default the host name
//	-auth-cache-ttl (AUTH_CACHE_TTL)  how long a key's identity is cached; default 5s
//	-pprof (GATEWAY_PPROF)        serve net/http/pprof under /debug/pprof/ on -http-addr; default off
//	-gc-percent (GATEWAY_GC_PERCENT)  Go GC target (as GOGC) unless GOGC is set; default 400
//	-log-level (LOG_LEVEL)        debug, info, warn, error
//	-shutdown-grace (SHUTDOWN_GRACE)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	"github.com/spendledger/spendledger/gen/spendledger/ledger/v1/ledgerv1connect"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/gateway/internal/admin"
	"github.com/spendledger/spendledger/services/gateway/internal/budget"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/events"
	"github.com/spendledger/spendledger/services/gateway/internal/router"
	"github.com/spendledger/spendledger/services/gateway/internal/server"
	"github.com/spendledger/spendledger/services/gateway/internal/spool"
	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
	"github.com/spendledger/spendledger/services/internal/catalogfile"
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
	catalogFile := catalogfile.Flag(fs)
	hostname, _ := os.Hostname()
	gatewayID := fs.String("gateway-id", "GATEWAY_ID", hostname, "this gateway instance's name in usage events")
	authTTL := fs.Duration("auth-cache-ttl", "AUTH_CACHE_TTL", 5*time.Second, "how long an authenticated key is cached (blocking a key takes effect within it)")
	withPprof := fs.Bool("pprof", "GATEWAY_PPROF", false, "serve net/http/pprof under /debug/pprof/ (profiling; off by default because it exposes internals on the API address)")
	applyGC := serve.GCPercentFlag(fs, "GATEWAY_GC_PERCENT")
	natsURL := stores.NATSURLFlag(fs)
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	log, err := serve.NewLogger(stderr, "gateway", *sf.LogLevel)
	if err != nil {
		return err
	}
	applyGC(getenv)
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
	catalog, err := catalogfile.Load(*catalogFile)
	if err != nil {
		return err
	}

	upstreamClient := upstream.NewHTTPClient()
	set, warnings, err := deploy.Build(cfg, catalog, upstreamClient, getenv)
	if err != nil {
		return fmt.Errorf("config %s: %w", *configPath, err)
	}
	settings, more, err := deploy.RouterSettings(cfg, set)
	if err != nil {
		return fmt.Errorf("config %s: %w", *configPath, err)
	}
	for _, w := range append(warnings, more...) {
		log.Warn("config", "warning", w)
	}
	for _, d := range set.Deployments {
		log.Info("deployment", "id", d.ID(), "model_group", d.Group(), "backend_model", d.BackendModel, "api_base", d.APIBase, "catalog_entry", entryOf(d))
	}

	srv := serve.New(log)
	if *withPprof {
		srv.HandlePprof()
	}
	metrics := server.NewMetrics(srv.Registry)
	rt := router.New(set.RouterDeployments(), settings, router.WithHooks(metrics.RouterHooks()))

	sp, err := spool.Open(*spoolDir, log)
	if err != nil {
		return err
	}
	if n := sp.Len(); n > 0 {
		log.Info("spool holds events from a previous run; they are published once NATS answers", "events", n, "dir", *spoolDir)
	}
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
	pub := events.NewPublisher(stream, nc.IsConnected, sp, events.NewMetrics(srv.Registry, sp), log, events.Options{})

	// Admission's calls (Admit, and an end user's default budget) share one
	// kept-alive pool.
	rpc := serve.RPCClient(10 * time.Second)
	budgetClient := budget.NewClient(rpc, *budgetURL)
	srv.AddCheck("budget", httpReady(*budgetURL+"/readyz"))

	endUser, err := endUserBudget(cfg)
	if err != nil {
		return err
	}
	apiCfg := server.Config{
		Set: set, Router: rt, Budget: budget.NewCached(budgetClient, *authTTL, min(*authTTL, time.Second)),
		Publisher: pub, Metrics: metrics, Log: log,
		MasterKey: cfg.GeneralSettings.MasterKey, GatewayID: *gatewayID,
		Ready: srv.Ready,
	}
	if endUser != nil {
		// A lifetime budget, as LiteLLM's max_end_user_budget.
		apiCfg.EndUsers = budget.NewEndUserDefaults(rpc, *budgetURL, *endUser, "")
	}
	api := server.New(apiCfg)
	// Live lets /model/new and /model/update swap in new deployments while
	// requests in flight finish on the set they started with.
	live := server.NewLive(api, deploy.NewBuilder(cfg, catalog, upstreamClient, getenv))
	live.Register(srv.Mux)

	if err := registerAdmin(ctx, srv, cfg, set, live, endUser, *budgetURL, *ledgerURL, getenv, log); err != nil {
		return err
	}
	log.Info("gateway configured", "deployments", len(set.Deployments), "model_groups", len(set.Groups), "ledger_url", *ledgerURL)

	runErr := srv.Run(ctx, *sf.Addr, *sf.Grace)
	// Every request has finished: give back the lease parts no request took,
	// wait for the acks of events in flight and spool what was not
	// acknowledged.
	budgetClient.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pub.Close(cctx); err != nil {
		log.Error("closing the event publisher", "err", err)
	}
	return runErr
}

// registerAdmin wires the LiteLLM-compatible admin API and starts syncing the
// config's budgets (provider, tag, deployment) to the budget service in the
// background: the gateway reports not ready until they are in force.
func registerAdmin(ctx context.Context, srv *serve.Server, cfg *config.Config, set *deploy.Set, live *server.Live,
	endUser *money.Nanos, budgetURL, ledgerURL string, getenv func(string) string, log *slog.Logger) error {
	budgets, err := admin.ConfigBudgets(cfg, set)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.LiteLLMSettings.MaxBudget != nil {
		log.Warn("litellm_settings.max_budget (one budget for the whole proxy) is not enforced: there is no proxy-wide budget scope; set budgets on providers, teams or keys")
	}
	// Admin calls are rare and may page through lists: their own client, with
	// a longer timeout than admission's.
	hc := serve.RPCClient(30 * time.Second)
	h := admin.New(admin.Config{
		Budget:               budgetv1connect.NewBudgetServiceClient(hc, budgetURL, serve.RPCClientOptions()...),
		Ledger:               ledgerv1connect.NewLedgerServiceClient(hc, ledgerURL, serve.RPCClientOptions()...),
		Models:               live,
		MasterKey:            cfg.GeneralSettings.MasterKey,
		Providers:            admin.ProviderBudgets(budgets),
		DefaultEndUserBudget: endUser,
		Getenv:               getenv,
		Log:                  log,
	})
	h.Register(srv.Mux)
	syncer := admin.NewSyncer(h, budgets)
	srv.AddCheck("config_budgets", syncer.Ready)
	if len(budgets) > 0 {
		go func() {
			if err := srv.Retry(ctx, "sync config budgets", syncer.Sync); err == nil {
				log.Info("config budgets synced", "budgets", len(budgets))
			}
		}()
	}
	return nil
}

func entryOf(d *deploy.Deployment) string {
	if d.Pricing == nil {
		return ""
	}
	return d.Pricing.Entry
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

// endUserBudget is litellm_settings.max_end_user_budget (nil: not set): the
// budget every end user gets unless it has one of its own.
func endUserBudget(cfg *config.Config) (*money.Nanos, error) {
	d := cfg.LiteLLMSettings.MaxEndUserBudget
	if d == nil {
		return nil, nil
	}
	n, err := money.ParseLimit(string(*d))
	if err != nil {
		return nil, fmt.Errorf("config: litellm_settings.max_end_user_budget: %w", err)
	}
	return &n, nil
}
