package thresholds

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the watcher's Prometheus metrics; nil fields record nothing.
type Metrics struct {
	crossings  prometheus.Counter
	published  prometheus.Counter
	pubFailed  prometheus.Counter
	webhook    *prometheus.CounterVec
	scanFailed prometheus.Counter
	pending    *prometheus.GaugeVec
}

// NewMetrics registers the watcher's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		crossings: prometheus.NewCounter(prometheus.CounterOpts{Name: "budget_threshold_crossings_total",
			Help: "Soft-threshold crossings recorded by this instance (each crossing is recorded by exactly one instance)."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "budget_threshold_events_published_total",
			Help: "BudgetThresholdCrossed events stored by JetStream and marked published."}),
		pubFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "budget_threshold_publish_failures_total",
			Help: "Threshold events that could not be published (retried on the next pass)."}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "budget_threshold_webhook_calls_total",
			Help: "Threshold webhook attempts by outcome: delivered, failed (retried later), abandoned."}, []string{"outcome"}),
		scanFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "budget_threshold_scan_failures_total",
			Help: "Watcher passes that could not read budgets or counters, or record crossings."}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "budget_threshold_pending",
			Help: "Crossings still owing their event (stage=publish) or webhook call (stage=webhook)."}, []string{"stage"}),
	}
	reg.MustRegister(m.crossings, m.published, m.pubFailed, m.webhook, m.scanFailed, m.pending)
	return m
}

func (m *Metrics) addCrossings(n int) {
	if m != nil {
		m.crossings.Add(float64(n))
	}
}

func (m *Metrics) publishedOne() {
	if m != nil {
		m.published.Inc()
	}
}

func (m *Metrics) publishFailed() {
	if m != nil {
		m.pubFailed.Inc()
	}
}

func (m *Metrics) webhookCall(outcome string) {
	if m != nil {
		m.webhook.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) scanFailure() {
	if m != nil {
		m.scanFailed.Inc()
	}
}

func (m *Metrics) setPending(unpublished, webhookOwed int64) {
	if m != nil {
		m.pending.WithLabelValues("publish").Set(float64(unpublished))
		m.pending.WithLabelValues("webhook").Set(float64(webhookOwed))
	}
}
