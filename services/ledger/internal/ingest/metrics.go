package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingest path's Prometheus metrics.
type Metrics struct {
	entries  *prometheus.CounterVec
	outcomes *prometheus.CounterVec
	// outcome holds outcomes' children for the known outcomes: Observe runs
	// once per event and counter, and a label lookup each time was ~1% of
	// ingest CPU.
	outcome         map[string]prometheus.Counter
	deadLetters     prometheus.Counter
	insertFailures  prometheus.Counter
	projectFailures prometheus.Counter
	batch           prometheus.Histogram
	stage           *prometheus.HistogramVec
	lag             prometheus.Histogram
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer, backlog *Backlog) *Metrics {
	m := &Metrics{
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_entries_total", Help: "CostComputed events committed, by whether the row was new or a duplicate.",
		}, []string{"kind"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_projection_outcomes_total", Help: "Per-counter projection outcomes (settled, direct, duplicate, in_seed, reseeded, expired, fallback).",
		}, []string{"outcome"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_dead_letters_total", Help: "Events rejected to the dead-letter stream.",
		}),
		insertFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_insert_failures_total", Help: "Batches not committed (Postgres failing); their events are redelivered.",
		}),
		projectFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_projection_failures_total", Help: "Entries committed but not projected at once (Redis failing or down); marked pending and caught up later.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ledger_batch_seconds", Help: "Time to commit and project one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ledger_batch_stage_seconds", Help: "Time one batch spends in each stage (decode, insert, project, ack): where ingest time goes.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"stage"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ledger_projection_lag_seconds", Help: "From CostComputed stored in JetStream to its counters updated.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ledger_projection_pending_entries",
		Help: "Entries committed but not yet projected into Redis (the ledger_projection_pending table, all instances; refreshed every second).",
	}, func() float64 { return float64(max(0, backlog.Pending())) })
	redisDown := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ledger_projection_redis_down",
		Help: "1 while this instance finds Redis unreachable and defers projection to the pending table, else 0.",
	}, func() float64 {
		if backlog.RedisDown() {
			return 1
		}
		return 0
	})
	m.outcome = map[string]prometheus.Counter{}
	for _, o := range []string{"settled", "direct", "duplicate", "in_seed", "reseeded", "expired", "fallback", "batch_failed"} {
		m.outcome[o] = m.outcomes.WithLabelValues(o)
	}
	reg.MustRegister(m.entries, m.outcomes, m.deadLetters, m.insertFailures, m.projectFailures, m.batch, m.stage, m.lag, pending, redisDown)
	return m
}

// since records the time from t in a stage's histogram and returns now, the
// next stage's start.
func (m *Metrics) since(stage string, t time.Time) time.Time {
	now := time.Now()
	m.stage.WithLabelValues(stage).Observe(now.Sub(t).Seconds())
	return now
}

// Observe counts a projection outcome; it is a Projector.Observe.
func (m *Metrics) Observe(what string) {
	if c, ok := m.outcome[what]; ok {
		c.Inc()
		return
	}
	m.outcomes.WithLabelValues(what).Inc()
}
