package fence

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the fence's gauges and counters.
type Metrics struct {
	losses prometheus.Counter
	fenced prometheus.Gauge
}

// NewMetrics registers the fence metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		losses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "budget_redis_data_losses_total", Help: "Redis data losses recorded (the epoch key was gone); each fences admission.",
		}),
		fenced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "budget_admission_fenced", Help: "1 while admission is fenced after a Redis data loss.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.losses, m.fenced)
	}
	return m
}
