package thresholds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// Budgets lists the budgets to watch (store.PG).
type Budgets interface {
	BudgetsWithThresholds(ctx context.Context) ([]store.Budget, error)
}

// Counters reads counters without writing them (redisstore.Store).
type Counters interface {
	Read(ctx context.Context, keys []string) ([]redisstore.State, error)
}

// Config is what a Watcher needs. Budgets, Counters, Outbox and Publisher
// are required.
type Config struct {
	Budgets   Budgets
	Counters  Counters
	Outbox    Outbox
	Publisher Publisher
	// Notifier calls the webhook; nil when none is configured.
	Notifier Notifier
	// Interval between passes; default 5s.
	Interval time.Duration
	// LateWindow is how long a window is still watched after it ended:
	// costs of requests admitted before a rollover land in the window they
	// were admitted in, up to a reservation's lifetime later. Default 10m.
	LateWindow time.Duration
	// Backoff spaces webhook retries; zero value: DefaultBackoff.
	Backoff Backoff
	// Now picks windows (as admission's clock does); nil is time.Now.
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
}

// Watcher finds crossed soft thresholds and delivers what they owe. Run it
// on every instance; the outbox makes them agree.
type Watcher struct {
	cfg Config
	// recorded holds the event ids this instance saw recorded on its last
	// pass (by anyone), so a crossing costs one INSERT per instance, not
	// one per pass. Rebuilt each pass: it never outgrows what is crossed now.
	recorded map[string]struct{}
}

// Limits of one pass.
const (
	readChunk  = 256  // counters per Redis read
	maxPerPass = 1000 // events published, and webhook calls made, per pass
)

// PublishTimeout bounds one publish (JetStream's acknowledgement included).
const PublishTimeout = 10 * time.Second

// New returns a Watcher; see Config for the defaults.
func New(cfg Config) (*Watcher, error) {
	switch {
	case cfg.Budgets == nil, cfg.Counters == nil, cfg.Outbox == nil, cfg.Publisher == nil:
		return nil, errors.New("thresholds: Budgets, Counters, Outbox and Publisher are required")
	case cfg.Interval < 0, cfg.LateWindow < 0:
		return nil, errors.New("thresholds: negative interval or late window")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.LateWindow == 0 {
		cfg.LateWindow = 10 * time.Minute
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, recorded: map[string]struct{}{}}, nil
}

// Run makes a pass every Interval until ctx ends. A failing pass is logged
// and counted; the next one retries whatever it left.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		_ = w.Pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass records the crossings visible now, then publishes pending events
// and makes due webhook calls. Each step runs even if an earlier one failed
// (NATS down does not stop recording, Redis down does not stop publishing).
// Passes of one Watcher must not overlap (Run makes them one at a time).
func (w *Watcher) Pass(ctx context.Context) error {
	var errs []error
	failed := func(msg string, err error) {
		errs = append(errs, err)
		if ctx.Err() == nil { // shutting down is not a failure to report
			w.cfg.Log.Warn(msg, "err", err)
		}
	}
	if err := w.scan(ctx); err != nil {
		w.cfg.Metrics.scanFailure()
		failed("soft threshold scan failed; retrying next pass", err)
	}
	if err := w.publishPending(ctx); err != nil {
		failed("threshold events not published; retrying next pass", err)
	}
	if w.cfg.Notifier != nil {
		if err := w.deliverDue(ctx); err != nil {
			failed("threshold webhook calls left for later", err)
		}
	}
	if unpublished, owed, err := w.cfg.Outbox.Pending(ctx); err == nil {
		w.cfg.Metrics.setPending(unpublished, owed)
	}
	return errors.Join(errs...)
}

// watched is one window of one budget to check.
type watched struct {
	budget store.Budget
	index  int64
	key    string
}

// windows are the windows to check at now: each budget's current one, and
// the previous one until LateWindow after it ended.
func (w *Watcher) windows(budgets []store.Budget, now time.Time) []watched {
	out := make([]watched, 0, len(budgets))
	for _, b := range budgets {
		spec := b.Window()
		k := spec.Index(now)
		out = append(out, watched{budget: b, index: k, key: scope.CounterKey(b.Scope, spec, k)})
		if start, _ := spec.Bounds(k); !b.Duration.IsLifetime() && now.Sub(start) < w.cfg.LateWindow {
			out = append(out, watched{budget: b, index: k - 1, key: scope.CounterKey(b.Scope, spec, k-1)})
		}
	}
	return out
}

// scan reads the settled spend of every watched window and records the
// thresholds it has reached.
func (w *Watcher) scan(ctx context.Context) error {
	budgets, err := w.cfg.Budgets.BudgetsWithThresholds(ctx)
	if err != nil {
		return fmt.Errorf("list budgets: %w", err)
	}
	now := w.cfg.Now()
	wins := w.windows(budgets, now)
	crossedNow := make(map[string]struct{}, len(w.recorded))
	var candidates []Crossing
	for lo := 0; lo < len(wins); lo += readChunk {
		chunk := wins[lo:min(lo+readChunk, len(wins))]
		keys := make([]string, len(chunk))
		for i, win := range chunk {
			keys[i] = win.key
		}
		states, err := w.cfg.Counters.Read(ctx, keys)
		if err != nil {
			return fmt.Errorf("read counters: %w", err)
		}
		for i, st := range states {
			if !st.Exists {
				continue // nothing settled in this window since Redis last held it
			}
			cs, err := w.crossings(chunk[i], money.Nanos(st.Spent), now)
			if err != nil {
				// One bad row must not silence every other budget.
				w.cfg.Log.Error("soft thresholds of a budget cannot be checked", "budget_id", chunk[i].budget.ID, "err", err)
				continue
			}
			for _, c := range cs {
				crossedNow[c.EventID] = struct{}{}
				if _, ok := w.recorded[c.EventID]; !ok {
					candidates = append(candidates, c)
				}
			}
		}
	}
	recorded, err := w.cfg.Outbox.Record(ctx, candidates, w.cfg.Notifier != nil)
	w.cfg.Metrics.addCrossings(len(recorded))
	for _, c := range recorded {
		w.cfg.Log.Info("soft threshold crossed", "budget_id", c.BudgetID, "scope", c.Scope.String(),
			"threshold", c.Threshold, "limit_usd", c.Limit.String(), "spent_usd", c.Spent.String(),
			"window_start", c.WindowStart, "event_id", c.EventID)
	}
	if err != nil {
		return fmt.Errorf("record crossings: %w", err)
	}
	w.recorded = crossedNow
	return nil
}

// crossings are the thresholds win's budget has reached at spent.
func (w *Watcher) crossings(win watched, spent money.Nanos, now time.Time) ([]Crossing, error) {
	b := win.budget
	ts, err := Crossed(b.Limit, spent, b.SoftThresholds)
	if err != nil || len(ts) == 0 {
		return nil, err
	}
	start, end := b.Window().Bounds(win.index)
	out := make([]Crossing, len(ts))
	for i, t := range ts {
		out[i] = Crossing{
			EventID: EventID(b.ID, win.key, t), BudgetID: b.ID, Scope: b.Scope, Threshold: t,
			WindowKey: win.key, Duration: b.Duration, WindowIndex: win.index, WindowStart: start, WindowEnd: end,
			Limit: b.Limit, Spent: spent, DetectedAt: now.UTC(),
		}
	}
	return out, nil
}

// publishPending publishes unpublished events, oldest first, until none is
// left, one fails (NATS is likely down: the rest wait for the next pass),
// or maxPerPass.
func (w *Watcher) publishPending(ctx context.Context) error {
	for range maxPerPass {
		var sent Crossing
		var pubErr error
		found, err := w.cfg.Outbox.PublishNext(ctx, func(ctx context.Context, c Crossing) error {
			ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
			defer cancel()
			sent, pubErr = c, w.cfg.Publisher.Publish(ctx, c)
			return pubErr
		})
		if pubErr != nil {
			w.cfg.Metrics.publishFailed()
		}
		if err != nil || !found {
			return err
		}
		w.cfg.Metrics.publishedOne()
		w.cfg.Log.Info("threshold event published", "event_id", sent.EventID, "budget_id", sent.BudgetID, "threshold", sent.Threshold)
	}
	return nil
}

// deliverDue makes the webhook calls that are due, oldest first, until none
// is left, one fails (the receiver is likely down: the rest keep their
// schedule), or maxPerPass. Its error is the outbox's: a failed call is a
// scheduled retry, not a failed pass.
func (w *Watcher) deliverDue(ctx context.Context) error {
	for range maxPerPass {
		var callErr error
		found, err := w.cfg.Outbox.DeliverNext(ctx, func(ctx context.Context, c Crossing, attempts int) WebhookOutcome {
			callErr = w.cfg.Notifier.Notify(ctx, c)
			return w.outcome(c, attempts+1, callErr)
		})
		if err != nil || !found {
			return err
		}
		if callErr != nil {
			return nil // logged and counted by outcome; the receiver is likely down
		}
	}
	return nil
}

// outcome logs and counts webhook attempt number attempt of c, and says
// what to store.
func (w *Watcher) outcome(c Crossing, attempt int, err error) WebhookOutcome {
	log := w.cfg.Log.With("event_id", c.EventID, "budget_id", c.BudgetID, "threshold", c.Threshold, "attempt", attempt)
	if err == nil {
		w.cfg.Metrics.webhookCall("delivered")
		log.Info("threshold webhook delivered")
		return WebhookOutcome{Delivered: true}
	}
	wait, giveUp := w.cfg.Backoff.Next(attempt, w.cfg.Now().Sub(c.DetectedAt))
	if giveUp {
		w.cfg.Metrics.webhookCall("abandoned")
		log.Error("threshold webhook abandoned", "err", err, "retried_for", w.cfg.Backoff.GiveUpAfter)
		return WebhookOutcome{Abandon: true, Err: err.Error()}
	}
	w.cfg.Metrics.webhookCall("failed")
	log.Warn("threshold webhook failed; will retry", "err", err, "retry_in", wait)
	return WebhookOutcome{RetryIn: wait, Err: err.Error()}
}
