package server

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// children caches the metric children the request path uses, by their label
// values: a vector's WithLabelValues hashes the values and allocates on every
// call. The child returned is the vector's own, created on first use as
// before (so /metrics shows only the label values that occurred).
type children[K comparable, M any] struct {
	mu     sync.RWMutex
	m      map[K]M
	create func(K) M
}

func newChildren[K comparable, M any](create func(K) M) *children[K, M] {
	return &children[K, M]{m: map[K]M{}, create: create}
}

func (c *children[K, M]) of(k K) M {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = c.create(k)
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
	return v
}

type groupStatus struct {
	group  string
	status int
}

type groupStreamed struct {
	group    string
	streamed bool
}

type upstreamCall struct {
	group, deploymentID, outcome string
}

type budgetCall struct {
	op, outcome string
}

// hotChildren are the cached children of the metrics every request touches.
type hotChildren struct {
	requests *children[groupStatus, prometheus.Counter]
	duration *children[groupStreamed, prometheus.Observer]
	upstream *children[upstreamCall, prometheus.Observer]
	budget   *children[budgetCall, prometheus.Counter]
}

func newHotChildren(m *Metrics) hotChildren {
	return hotChildren{
		requests: newChildren(func(k groupStatus) prometheus.Counter {
			return m.Requests.WithLabelValues(k.group, strconv.Itoa(k.status))
		}),
		duration: newChildren(func(k groupStreamed) prometheus.Observer {
			return m.RequestDuration.WithLabelValues(k.group, strconv.FormatBool(k.streamed))
		}),
		upstream: newChildren(func(k upstreamCall) prometheus.Observer {
			return m.Upstream.WithLabelValues(k.group, k.deploymentID, k.outcome)
		}),
		budget: newChildren(func(k budgetCall) prometheus.Counter {
			return m.Budget.WithLabelValues(k.op, k.outcome)
		}),
	}
}

// budgetCalls counts a budget service call by operation and outcome.
func (m *Metrics) budgetCalls(op, outcome string) prometheus.Counter {
	return m.hot.budget.of(budgetCall{op, outcome})
}
