package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/services/gateway/internal/router"
)

// Metrics are the gateway's request metrics. Label values are bounded by the
// config (model groups, deployment ids); a model name a client made up is
// counted as "unknown".
type Metrics struct {
	Requests        *prometheus.CounterVec   // model_group, status
	RequestDuration *prometheus.HistogramVec // model_group, streamed
	Upstream        *prometheus.HistogramVec // model_group, deployment_id, outcome
	Retries         *prometheus.CounterVec   // model_group
	Fallbacks       *prometheus.CounterVec   // from, to
	Cooldowns       *prometheus.CounterVec   // model_group, deployment_id
	Budget          *prometheus.CounterVec   // op, outcome
	UsageEstimated  *prometheus.CounterVec   // deployment_id
	Abandoned       *prometheus.CounterVec   // model_group, stage

	hot hotChildren
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_requests_total", Help: "Chat completion requests by model group and HTTP status (499: the client went away).",
		}, []string{"model_group", "status"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_request_duration_seconds", Help: "Chat completion request duration, upstream included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"model_group", "streamed"}),
		Upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_upstream_duration_seconds", Help: "Upstream call latency (to the response headers for streams), by outcome.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"model_group", "deployment_id", "outcome"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_retries_total", Help: "Upstream attempts after the first within a model group (failover and num_retries).",
		}, []string{"model_group"}),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_fallbacks_total", Help: "Cross-group fallbacks taken.",
		}, []string{"from", "to"}),
		Cooldowns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_cooldowns_total", Help: "Deployments put in cooldown after allowed_fails.",
		}, []string{"model_group", "deployment_id"}),
		Budget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_budget_calls_total", Help: "Budget service calls by operation and outcome.",
		}, []string{"op", "outcome"}),
		UsageEstimated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_usage_estimated_total", Help: "Calls whose upstream reported no usage, billed from the gateway's estimate.",
		}, []string{"deployment_id"}),
		Abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_requests_abandoned_total", Help: "Requests whose client went away, by stage (upstream: before the response; stream: mid-stream).",
		}, []string{"model_group", "stage"}),
	}
	m.hot = newHotChildren(m)
	reg.MustRegister(m.Requests, m.RequestDuration, m.Upstream, m.Retries, m.Fallbacks, m.Cooldowns, m.Budget, m.UsageEstimated, m.Abandoned)
	return m
}

// RouterHooks feed the router's events into the metrics.
func (m *Metrics) RouterHooks() router.Hooks {
	return router.Hooks{
		Retry:    func(g string) { m.Retries.WithLabelValues(g).Inc() },
		Fallback: func(from, to string) { m.Fallbacks.WithLabelValues(from, to).Inc() },
		Cooldown: func(d *router.Deployment) { m.Cooldowns.WithLabelValues(d.Group, d.ID).Inc() },
	}
}
