package cache

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the cache's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	lookups       *prometheus.CounterVec
	invalidations prometheus.Counter
	listening     prometheus.Gauge
}

// NewMetrics registers the cache's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "budget_cache_lookups_total",
			Help: "Cache lookups by map (budgets per scope, keys, principals: blocked end users and tags) and result (hit, miss).",
		}, []string{"map", "result"}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "budget_cache_invalidations_total",
			Help: "Changes applied to the cache (notifications and this instance's own writes).",
		}),
		listening: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "budget_cache_listening",
			Help: "1 while the LISTEN connection is up; at 0 every read goes to Postgres.",
		}),
	}
	reg.MustRegister(m.lookups, m.invalidations, m.listening)
	return m
}

func (m *Metrics) lookup(which string, hits, misses int) {
	if m == nil {
		return
	}
	if hits > 0 {
		m.lookups.WithLabelValues(which, "hit").Add(float64(hits))
	}
	if misses > 0 {
		m.lookups.WithLabelValues(which, "miss").Add(float64(misses))
	}
}

func (m *Metrics) invalidated() {
	if m != nil {
		m.invalidations.Inc()
	}
}

func (m *Metrics) setListening(on bool) {
	if m == nil {
		return
	}
	if on {
		m.listening.Set(1)
	} else {
		m.listening.Set(0)
	}
}
