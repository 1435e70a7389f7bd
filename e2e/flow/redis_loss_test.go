package flow_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
)

// TestRedisDataLossFencesAdmissionUntilInFlightSpendLands is the chaos
// suite's finding as a test: with pricing stopped, a key spends up to its
// limit (the costs wait in the USAGE stream), then Redis loses everything.
// Counters rebuilt from the ledger alone would see nothing spent and admit
// the whole budget again. Admission must stay fenced (503) until the costs
// in flight have landed, and the key must end within its limit.
func TestRedisDataLossFencesAdmissionUntilInFlightSpendLands(t *testing.T) {
	t.Parallel()
	f := start(t, harness.WithServiceArgs("budget", "-reservation-ttl", "3s"))
	keyID, key := f.key(&budgetv1.BudgetSpec{LimitUsd: "0.01", Duration: "1d"})

	f.st.Service("pricing").Stop()
	admitted := 0
	for i := 0; ; i++ {
		code, _, body := f.chat(key, "gpt-4o", false)
		if code == http.StatusTooManyRequests {
			break
		}
		if code != http.StatusOK || i > 200 {
			t.Fatalf("request %d before the loss: %d %s", i, code, body)
		}
		admitted++
	}
	if admitted == 0 {
		t.Fatal("nothing admitted before the budget ran out")
	}

	f.st.FlushRedis()
	for i := range 5 {
		if code, _, body := f.chat(key, "gpt-4o", false); code != http.StatusServiceUnavailable {
			t.Fatalf("request %d after the loss, costs still in flight: %d %s; want 503 (fenced)", i, code, body)
		}
	}
	// The fence outlives its hold while pricing is down: the costs are
	// still in flight.
	time.Sleep(4 * time.Second)
	if code, _, body := f.chat(key, "gpt-4o", false); code != http.StatusServiceUnavailable {
		t.Fatalf("after the hold, with pricing still down: %d %s; want 503", code, body)
	}

	f.st.Service("pricing").Start()
	f.ledgerSpend(keyID, admitted)
	var code int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, _, _ = f.chat(key, "gpt-4o", false); code != http.StatusServiceUnavailable {
			break
		}
	}
	// Fence lifted: the counters now hold what was in flight. Settled costs
	// are below the estimates reserved for them, so there may be room left;
	// spend it all, then the ledger must be within the limit.
	for i := 0; code == http.StatusOK; i++ {
		if i > 500 {
			t.Fatal("still admitting after 500 requests")
		}
		admitted++
		code, _, _ = f.chat(key, "gpt-4o", false)
	}
	if code != http.StatusTooManyRequests {
		t.Fatalf("after the fence: %d; want 200s, then 429", code)
	}
	if spent := f.ledgerSpend(keyID, admitted); spent > 10_000_000 {
		t.Fatalf("the key spent %d nano-USD of a 10,000,000 budget", spent)
	}
	f.verify()
}
