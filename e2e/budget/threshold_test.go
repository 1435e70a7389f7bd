package budget_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
)

// TestSoftThresholdsOnceAcrossInstances: two budget service instances
// watch one team budget of $1 with soft thresholds 0.5 and 0.8, on real
// Redis, Postgres and NATS, both passing every 50ms. Spend settled (as the
// ledger's projection settles it) exactly onto each threshold publishes one
// BudgetThresholdCrossed per threshold on the BUDGET stream and makes one
// delivered webhook call per threshold; a receiver that is down at first
// gets its call later, once. A new window crosses again; a freshly started
// instance announces nothing twice.
func TestSoftThresholdsOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newThresholdEnv(t)
	a, b := e.newInstance(), e.newInstance()
	a.createTeam(t, "th-team")
	harness.OK[budgetv1.CreateKeyResponse](t, "create key")(a.client.CreateKey(harness.Context(t), req(&budgetv1.CreateKeyRequest{
		Key: &budgetv1.Key{KeyId: "th-key", TeamId: "th-team"}})))
	budget := a.setBudget(t, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "th-team", ""),
		LimitUsd: "1", Duration: "1d", SoftThresholds: []string{"0.80", "0.5"}})
	anchor := budget.Anchor.AsTime()

	// Below the first threshold: nothing, however many passes.
	e.hook.down.Store(true)
	e.spend(a.client, "th-key", 300_000_000)
	time.Sleep(500 * time.Millisecond)
	if evs := e.events(); len(evs) != 0 {
		t.Fatalf("events at $0.30 of $1: %v", evs)
	}

	// Exactly half: "0.5" once, though both instances see it.
	e.spend(b.client, "th-key", 200_000_000)
	half := e.waitEvents(1)[0]
	e.wantEvent(half, budget.Spec.BudgetId, "0.5", 500_000_000, 0, anchor)
	// The receiver is down: the call is retried (with backoff), not lost.
	harness.Eventually(t, 10*time.Second, "webhook retried while down", func() (bool, string) {
		all, delivered := e.hook.count(half.EventId)
		return all >= 2 && delivered == 0, fmt.Sprintf("%d calls, %d delivered", all, delivered)
	})
	e.hook.down.Store(false)
	e.waitDelivered(half.EventId)

	// Exactly 0.8: one more event, one more call.
	e.spend(a.client, "th-key", 300_000_000)
	eighty := e.waitEvents(2)[1]
	e.wantEvent(eighty, budget.Spec.BudgetId, "0.8", 800_000_000, 0, anchor)
	e.waitDelivered(eighty.EventId)
	body := e.hook.deliveredBody(eighty.EventId)
	if body["threshold"] != "0.8" || body["limit_usd"] != "1" || body["spent_usd"] != "0.8" ||
		body["spent_nanos"] != "800000000" || body["budget_id"] != budget.Spec.BudgetId {
		t.Fatalf("webhook body %v", body)
	}

	// Many passes later, on both instances and a fresh one: still exactly
	// one event and one delivered call per threshold.
	_ = e.newInstance()
	time.Sleep(time.Second)
	if evs := e.events(); len(evs) != 2 {
		t.Fatalf("%d events after more passes: %v", len(evs), evs)
	}
	for _, id := range []string{half.EventId, eighty.EventId} {
		if _, delivered := e.hook.count(id); delivered != 1 {
			t.Fatalf("event %s delivered %d times", id, delivered)
		}
	}
	if all, _ := e.hook.count(eighty.EventId); all != 1 {
		t.Fatalf("%d calls for the 0.8 crossing with the receiver up; want 1", all)
	}

	// The next window (a day and an hour later, on every instance's clock)
	// crosses again: 90% reaches both thresholds in one settle.
	e.offset.Store(int64(25 * time.Hour))
	e.spend(b.client, "th-key", 900_000_000)
	evs := e.waitEvents(4)
	next := evs[2:]
	slices.SortFunc(next, func(x, y *eventsv1.BudgetThresholdCrossed) int { return strings.Compare(x.Threshold, y.Threshold) })
	e.wantEvent(next[0], budget.Spec.BudgetId, "0.5", 900_000_000, 1, anchor)
	e.wantEvent(next[1], budget.Spec.BudgetId, "0.8", 900_000_000, 1, anchor)
	for _, ev := range next {
		e.waitDelivered(ev.EventId)
	}
}

// waitEvents waits until the BUDGET stream holds n events and returns them.
func (e *thresholdEnv) waitEvents(n int) []*eventsv1.BudgetThresholdCrossed {
	e.t.Helper()
	var evs []*eventsv1.BudgetThresholdCrossed
	harness.Eventually(e.t, 30*time.Second, fmt.Sprintf("%d threshold events", n), func() (bool, string) {
		var err error
		if evs, err = e.readEvents(); err != nil {
			return false, err.Error()
		}
		return len(evs) >= n, fmt.Sprintf("%d events", len(evs))
	})
	if len(evs) != n {
		e.t.Fatalf("%d events; want %d: %v", len(evs), n, evs)
	}
	return evs
}

// waitDelivered waits until the receiver answered 2xx to event id's call.
func (e *thresholdEnv) waitDelivered(id string) {
	e.t.Helper()
	harness.Eventually(e.t, 10*time.Second, "webhook delivered "+id, func() (bool, string) {
		all, delivered := e.hook.count(id)
		return delivered == 1, fmt.Sprintf("%d calls, %d delivered", all, delivered)
	})
}

// wantEvent checks an event of the $1 daily team budget anchored at anchor.
func (e *thresholdEnv) wantEvent(ev *eventsv1.BudgetThresholdCrossed, budgetID, threshold string, spent, index int64, anchor time.Time) {
	e.t.Helper()
	start := anchor.Add(time.Duration(index) * 24 * time.Hour)
	if ev.BudgetId != budgetID || ev.Threshold != threshold || ev.LimitNanos != 1_000_000_000 || ev.SpentNanos != spent ||
		ev.WindowIndex != index || !ev.WindowStart.AsTime().Equal(start) || !ev.WindowEnd.AsTime().Equal(start.Add(24*time.Hour)) ||
		ev.Scope.GetKind() != eventsv1.ScopeKind_SCOPE_KIND_TEAM || ev.Scope.GetId() != "th-team" ||
		ev.EventId == "" || ev.OccurredAt.AsTime().Before(start) {
		e.t.Fatalf("event %v; want budget %s, threshold %s, spent %d of 1000000000, window %d [%v, +1d)",
			ev, budgetID, threshold, spent, index, start)
	}
}

// TestThresholdEventsWaitForNATS: with NATS down, admission goes on, the
// crossing is recorded and its webhook called; the event is published once
// NATS is back, once.
func TestThresholdEventsWaitForNATS(t *testing.T) {
	t.Parallel()
	e := newThresholdEnv(t)
	a, b := e.newInstance(), e.newInstance()
	harness.OK[budgetv1.CreateKeyResponse](t, "create key")(a.client.CreateKey(harness.Context(t), req(&budgetv1.CreateKeyRequest{
		Key:     &budgetv1.Key{KeyId: "nats-key"},
		Budgets: []*budgetv1.BudgetSpec{{LimitUsd: "1", Duration: "1h", SoftThresholds: []string{"0.5"}}},
	})))

	e.in.StopNATS()
	e.spend(a.client, "nats-key", 400_000_000)
	e.spend(b.client, "nats-key", 200_000_000) // admitted without NATS
	harness.Eventually(t, 10*time.Second, "crossing recorded, unpublished", func() (bool, string) {
		n := count(t, e.pool, `SELECT count(*) FROM threshold_crossings WHERE published_at IS NULL AND webhook_delivered_at IS NOT NULL`)
		return n == 1, fmt.Sprintf("%d rows recorded and delivered but unpublished", n)
	})

	e.in.StartNATS()
	ev := e.waitEvents(1)[0]
	if ev.Threshold != "0.5" || ev.SpentNanos != 600_000_000 || ev.Scope.GetId() != "nats-key" {
		t.Fatalf("event %v", ev)
	}
	harness.Eventually(t, 10*time.Second, "crossing marked published", func() (bool, string) {
		n := count(t, e.pool, `SELECT count(*) FROM threshold_crossings WHERE published_at IS NOT NULL`)
		return n == 1, fmt.Sprintf("%d published", n)
	})
	time.Sleep(500 * time.Millisecond)
	if evs := e.events(); len(evs) != 1 {
		t.Fatalf("%d events after NATS came back; want 1: %v", len(evs), evs)
	}
	if all, delivered := e.hook.count(ev.EventId); all != 1 || delivered != 1 {
		t.Fatalf("%d webhook calls (%d delivered); want 1", all, delivered)
	}
}

// TestBinaryAnnouncesThresholds: the built budget binary, configured by its
// flags, runs the watcher once its migrations are applied, and announces a
// crossing on the BUDGET stream and to the webhook.
func TestBinaryAnnouncesThresholds(t *testing.T) {
	t.Parallel()
	hook := newWebhookReceiver(t)
	st := harness.StartStack(t, harness.WithServiceArgs("budget",
		"--threshold-interval", "100ms", "--threshold-webhook-url", hook.srv.URL))
	e := thresholdEnvOn(t, st.Infra, hook)
	c := budgetv1connect.NewBudgetServiceClient(&http.Client{Timeout: 10 * time.Second}, st.BudgetURL)
	harness.OK[budgetv1.CreateKeyResponse](t, "create key")(c.CreateKey(harness.Context(t), req(&budgetv1.CreateKeyRequest{
		Key:     &budgetv1.Key{KeyId: "bin-key"},
		Budgets: []*budgetv1.BudgetSpec{{LimitUsd: "2", SoftThresholds: []string{"0.75"}}}, // lifetime
	})))
	e.spend(c, "bin-key", 1_500_000_000)
	ev := e.waitEvents(1)[0]
	if ev.Threshold != "0.75" || ev.SpentNanos != 1_500_000_000 || ev.LimitNanos != 2_000_000_000 ||
		ev.WindowIndex != 0 || ev.Scope.GetKind() != eventsv1.ScopeKind_SCOPE_KIND_KEY || ev.Scope.GetId() != "bin-key" {
		t.Fatalf("event %v", ev)
	}
	e.waitDelivered(ev.EventId)
}
