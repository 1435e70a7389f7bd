package budgetsvc

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/services/budget/internal/thresholds"
)

// ThresholdConfig configures the soft-threshold watcher
// (internal/thresholds): what main reads from its flags, and what the e2e
// tests set.
type ThresholdConfig struct {
	// Redis holds the counters whose settled spend is watched.
	Redis *redisstore.Store
	// JetStream receives BudgetThresholdCrossed on the BUDGET stream.
	JetStream jetstream.JetStream
	// WebhookURL, when set, is POSTed every crossing (http or https).
	WebhookURL string
	// WebhookTimeout bounds one webhook call; default 10s.
	WebhookTimeout time.Duration
	// Interval between passes; default 5s.
	Interval time.Duration
	// LateWindow is how long a window is still watched after it ended;
	// main sets the reservation TTL plus 5 minutes (default 10m).
	LateWindow time.Duration
	// Backoff spaces webhook retries; the zero value is 1s doubling to 5m,
	// for 24h.
	Backoff ThresholdBackoff
	// Now picks windows; nil is time.Now. Use admission's clock.
	Now        func() time.Time
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// ThresholdBackoff is thresholds.Backoff, for main and the e2e tests.
type ThresholdBackoff = thresholds.Backoff

// ThresholdWatcher is thresholds.Watcher: Run it (every instance may), or
// drive it with Pass in tests.
type ThresholdWatcher = thresholds.Watcher

// ThresholdWatcher builds the watcher on the service's Postgres (budgets,
// and the threshold_crossings outbox, which needs the budget migrations
// applied before it runs).
func (s *Service) ThresholdWatcher(cfg ThresholdConfig) (*ThresholdWatcher, error) {
	if cfg.Redis == nil || cfg.JetStream == nil {
		return nil, fmt.Errorf("thresholds: Redis and JetStream are required")
	}
	timeout := cfg.WebhookTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var notifier thresholds.Notifier
	if cfg.WebhookURL != "" {
		u, err := url.Parse(cfg.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("thresholds: webhook URL %q is not an http(s) URL", cfg.WebhookURL)
		}
		notifier = thresholds.Webhook{URL: cfg.WebhookURL, Client: &http.Client{Timeout: timeout}}
	}
	var metrics *thresholds.Metrics
	if cfg.Registerer != nil {
		metrics = thresholds.NewMetrics(cfg.Registerer)
	}
	return thresholds.New(thresholds.Config{
		Budgets: s.Store, Counters: cfg.Redis, Outbox: thresholds.NewPGOutbox(s.pool, timeout+thresholds.PublishTimeout),
		Publisher: thresholds.JetStreamPublisher{JS: cfg.JetStream}, Notifier: notifier,
		Interval: cfg.Interval, LateWindow: cfg.LateWindow, Backoff: cfg.Backoff,
		Now: cfg.Now, Log: cfg.Log, Metrics: metrics,
	})
}
