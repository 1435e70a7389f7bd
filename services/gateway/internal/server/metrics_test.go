package server

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// The request path counts through cached children; the counts land on the
// registered vectors, under the request's label values, twice as well as once.
func TestRequestMetricsCountEveryRequest(t *testing.T) {
	r := newRig(t, mockConfig)
	for range 2 {
		if resp, body := r.post(t, userKey, hello); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if resp, _ := r.post(t, userKey, strings.Replace(hello, "gpt-4o", "no-such-model", 1)); resp.StatusCode != 404 {
		t.Fatalf("unknown model: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   uint64
	}{
		{"gateway_requests_total", map[string]string{"model_group": "gpt-4o", "status": "200"}, 2},
		{"gateway_requests_total", map[string]string{"model_group": "unknown", "status": "404"}, 1},
		{"gateway_request_duration_seconds", map[string]string{"model_group": "gpt-4o", "streamed": "false"}, 2},
		{"gateway_upstream_duration_seconds", map[string]string{"model_group": "gpt-4o", "outcome": "ok"}, 2},
		{"gateway_budget_calls_total", map[string]string{"op": "admit", "outcome": "admitted"}, 2},
	} {
		if got := r.count(t, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.labels, got, c.want)
		}
	}
}

// count is a counter's value or a histogram's sample count, summed over the
// series matching labels.
func (r *rig) count(t *testing.T, name string, labels map[string]string) uint64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				n += uint64(m.GetCounter().GetValue()) + m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func matches(m *dto.Metric, labels map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(labels)
}
