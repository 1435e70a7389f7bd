package pricing_test

import (
	"github.com/spendledger/spendledger/e2e/harness"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// priced reads pricing_events_priced_total (all statuses) from a service's
// /metrics.
func priced(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, m := range regexp.MustCompile(`(?m)^pricing_events_priced_total\{[^}]*\} (\d+)`).FindAllSubmatch(b, -1) {
		v, _ := strconv.Atoi(string(m[1]))
		n += v
	}
	return n
}

func TestTwoInstancesShareTheWorkAndPriceEachEventOnce(t *testing.T) {
	t.Parallel()
	st := harness.StartStack(t)
	second := st.StartReplica("pricing")
	s := harness.JetStream(t, st.NATSURL)

	// More than one instance buffers (2 × batch size), so neither can take it all.
	const n = 2000
	for i := range n {
		u := usageEvent("key-" + strconv.Itoa(i%16))
		publishUsage(t, s, u, u.GetEventId())
	}
	costs := costsFor(t, s, n)
	seen := map[string]bool{}
	for _, c := range costs {
		if seen[c.GetEventId()] {
			t.Fatalf("event %s priced twice", c.GetEventId())
		}
		seen[c.GetEventId()] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events priced; want %d", len(seen), n)
	}
	a, b := priced(t, st.PricingURL), priced(t, second.URL)
	if a+b < n || a == 0 || b == 0 {
		t.Fatalf("instances priced %d and %d events; want both to share the %d", a, b, n)
	}
}
