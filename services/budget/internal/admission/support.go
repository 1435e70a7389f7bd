package admission

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/ledger/redisstore"
)

// resolutions prices candidates with the same resolver pricing uses.
type resolutions struct{ r *pricing.Resolver }

func newResolutions(c *pricing.Catalog) *resolutions { return &resolutions{r: pricing.NewResolver(c)} }

func (p *resolutions) resolve(c *budgetv1.Candidate) (pricing.Resolution, error) {
	return p.r.Resolve(c.GetProvider(), c.GetBackendModel(), c.GetBaseModel(), c.GetPriceOverrides())
}

// lastKnown remembers the last state this instance saw of each counter, for
// the last_known fault policy. It is bounded: past maxRemembered counters it
// starts over, which only makes the policy fail closed for the forgotten ones.
// Under fail_closed there is none (nil): remembering would put a global lock
// on every admission for a figure nothing reads.
type lastKnown struct {
	mu sync.Mutex
	m  map[string]redisstore.State
}

const maxRemembered = 100_000

func newLastKnown() *lastKnown { return &lastKnown{m: map[string]redisstore.State{}} }

func (l *lastKnown) remember(keys []string, states []redisstore.State) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) > maxRemembered {
		clear(l.m)
	}
	for i, k := range keys {
		if i < len(states) && states[i].Exists {
			l.m[k] = states[i]
		}
	}
}

// hold adds amount to the remembered reservations of keys, for an
// admission made against them while Redis is down: the next one counts it,
// so a burst during an outage cannot each fit under the same stale figure.
// The next state read from Redis replaces it.
func (l *lastKnown) hold(keys []string, amount int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if st, ok := l.m[k]; ok {
			st.Live += amount
			l.m[k] = st
		}
	}
}

func (l *lastKnown) get(key string) (redisstore.State, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	return st, ok
}

type metrics struct {
	decisions   *prometheus.CounterVec
	redisFaults prometheus.Counter
	reseeds     prometheus.Counter
	latency     prometheus.Histogram
	batchSizes  prometheus.Histogram
	leases      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "budget_admissions_total",
			Help: "Admission decisions: admitted, denied, unpriced, no_candidate, blocked, invalid, failed_closed, last_known.",
		}, []string{"decision"}),
		redisFaults: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "budget_redis_faults_total", Help: "Admissions that could not reach Redis (see the decision for the policy applied).",
		}),
		reseeds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "budget_counter_reseeds_total", Help: "Missing counters reseeded from the ledger by admission.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "budget_admit_seconds", Help: "Time to admit a request.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		leases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "budget_leases_total", Help: "Leases reserved in Redis; each serves the admissions on its budgets for up to -lease-max-age.",
		}),
		batchSizes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "budget_reserve_batch_size", Help: "Reserve requests per group-commit script call.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.redisFaults, m.reseeds, m.latency, m.batchSizes, m.leases)
	}
	return m
}
