package thresholds

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

const usd = money.PerDollar

// rig is one test's shared world (the fakes standing for Postgres, Redis,
// NATS and the webhook receiver) and the instances watching it.
type rig struct {
	t        *testing.T
	clock    *clock
	budgets  *fakeBudgets
	counters *fakeCounters
	outbox   *fakeOutbox
	pub      *fakePublisher
	hook     *fakeNotifier
}

func newRig(t *testing.T, budgets ...store.Budget) *rig {
	c := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	return &rig{t: t, clock: c, budgets: &fakeBudgets{budgets: budgets},
		counters: &fakeCounters{spent: map[string]int64{}}, outbox: newFakeOutbox(c),
		pub: &fakePublisher{}, hook: &fakeNotifier{}}
}

// instance is one budget-service instance's watcher on the rig.
func (r *rig) instance(tune func(*Config)) *Watcher {
	r.t.Helper()
	cfg := Config{Budgets: r.budgets, Counters: r.counters, Outbox: r.outbox, Publisher: r.pub,
		Notifier: r.hook, Now: r.clock.now}
	if tune != nil {
		tune(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return w
}

// pass runs one pass of each watcher, failing the test on an error.
func (r *rig) pass(ws ...*Watcher) {
	r.t.Helper()
	for _, w := range ws {
		if err := w.Pass(context.Background()); err != nil {
			r.t.Fatalf("pass: %v", err)
		}
	}
}

// spend sets the settled spend of b's window at the rig's current time.
func (r *rig) spend(b store.Budget, n money.Nanos) string {
	key := scope.CounterKey(b.Scope, b.Window(), b.Window().Index(r.clock.now()))
	r.counters.set(key, int64(n))
	return key
}

func (r *rig) wantPublished(want ...string) {
	r.t.Helper()
	if got := r.pub.thresholds(); !slices.Equal(got, want) {
		r.t.Fatalf("published thresholds %v; want %v", got, want)
	}
}

func teamBudget(id string, limit money.Nanos, d string, thresholds ...string) store.Budget {
	b := store.Budget{ID: id, Scope: scope.Scope{Kind: scope.KindTeam, ID: "team-" + id}, Limit: limit,
		Duration: window.MustParse(d), Calendar: true, Anchor: time.Unix(0, 0).UTC(), SoftThresholds: thresholds}
	if d == "lifetime" {
		b.Calendar = true
	}
	return b
}

func TestEachThresholdFiresOnceAcrossInstances(t *testing.T) {
	b := teamBudget("b1", 10*usd, "1d", "0.5", "0.8")
	r := newRig(t, b)
	w1, w2 := r.instance(nil), r.instance(nil)

	r.spend(b, 5*usd-1)
	r.pass(w1, w2)
	r.wantPublished()

	// Both thresholds reached by one settle: each fires, once, though both
	// instances see them.
	key := r.spend(b, 8*usd)
	r.pass(w1, w2)
	r.wantPublished("0.5", "0.8")
	r.pass(w2, w1, w2)
	r.spend(b, 10*usd) // 1.0 is not one of this budget's thresholds
	r.pass(w1, w2)
	r.wantPublished("0.5", "0.8")

	got := r.pub.events[1]
	start := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	want := Crossing{
		EventID: EventID("b1", key, "0.8"), BudgetID: "b1", Scope: b.Scope, Threshold: "0.8",
		WindowKey: key, Duration: window.MustParse("1d"), WindowIndex: b.Window().Index(start),
		WindowStart: start, WindowEnd: start.AddDate(0, 0, 1),
		Limit: 10 * usd, Spent: 8 * usd, DetectedAt: r.clock.now(),
	}
	if got != want {
		t.Fatalf("event\n got %+v\nwant %+v", got, want)
	}
	// Each instance tried each insert once, not once per pass.
	if r.outbox.inserts != 4 {
		t.Fatalf("%d inserts; want 4 (2 thresholds × 2 instances)", r.outbox.inserts)
	}
	// The webhook was called once per threshold too.
	if n := r.hook.callCount(); n != 2 {
		t.Fatalf("%d webhook calls; want 2", n)
	}
}

func TestANewWindowCrossesAgain(t *testing.T) {
	daily := teamBudget("daily", 10*usd, "1d", "0.8")
	forever := teamBudget("forever", 10*usd, "lifetime", "0.8")
	forever.Duration = window.Lifetime
	r := newRig(t, daily, forever)
	w := r.instance(nil)

	firstDay := r.spend(daily, 9*usd)
	r.spend(forever, 9*usd)
	r.pass(w)
	r.wantPublished("0.8", "0.8")

	r.clock.advance(24 * time.Hour)
	r.pass(w)
	r.wantPublished("0.8", "0.8") // the new day has spent nothing yet
	nextDay := r.spend(daily, 8*usd)
	r.spend(forever, 10*usd) // a lifetime budget has one window: nothing new
	r.pass(w)
	r.wantPublished("0.8", "0.8", "0.8")
	first, lifetime, second := r.pub.events[0], r.pub.events[1], r.pub.events[2]
	if first.BudgetID != "daily" || first.WindowKey != firstDay || lifetime.BudgetID != "forever" || lifetime.WindowIndex != 0 {
		t.Fatalf("first day's crossings %+v, %+v", first, lifetime)
	}
	if second.BudgetID != "daily" || second.WindowKey != nextDay || second.WindowIndex != first.WindowIndex+1 ||
		second.EventID == first.EventID {
		t.Fatalf("the second day's crossing is %+v", second)
	}
}

func TestLateSettlesLandInThePreviousWindow(t *testing.T) {
	b := teamBudget("b1", 10*usd, "1d", "0.8")
	other := teamBudget("b2", 10*usd, "1d", "0.8")
	r := newRig(t, b, other)
	w := r.instance(func(c *Config) { c.LateWindow = 10 * time.Minute })
	r.clock.t = time.Date(2026, 3, 10, 23, 59, 0, 0, time.UTC)
	yesterday := r.spend(b, 0)
	yesterdayOther := r.spend(other, 0)
	r.pass(w)

	// A request admitted at 23:59 settles at 00:05 into the window it was
	// admitted in, which is still watched.
	r.clock.advance(6 * time.Minute)
	r.counters.set(yesterday, int64(9*usd))
	r.pass(w)
	r.wantPublished("0.8")
	if got := r.pub.events[0]; got.WindowKey != yesterday || !got.WindowEnd.Equal(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("late crossing %+v; want yesterday's window", got)
	}
	// Past LateWindow yesterday is no longer read.
	r.clock.advance(5 * time.Minute)
	r.counters.set(yesterdayOther, int64(9*usd))
	r.pass(w)
	r.wantPublished("0.8")
}

func TestUnpublishedEventsWaitForNATS(t *testing.T) {
	b := teamBudget("b1", 10*usd, "1h", "0.5", "0.8")
	r := newRig(t, b)
	w := r.instance(nil)
	r.pub.setDown(true)
	r.spend(b, 9*usd)
	if err := w.Pass(context.Background()); err == nil {
		t.Fatal("a pass with NATS down reported no error")
	}
	r.wantPublished()
	if unpublished, _, _ := r.outbox.Pending(context.Background()); unpublished != 2 {
		t.Fatalf("%d unpublished; want both crossings recorded and waiting", unpublished)
	}
	r.pub.setDown(false)
	r.pass(w, w)
	r.wantPublished("0.5", "0.8")
}

func TestWebhookRetriesWithBackoffThenDeliversOnce(t *testing.T) {
	b := teamBudget("b1", 10*usd, "1d", "0.8")
	r := newRig(t, b)
	w := r.instance(func(c *Config) { c.Backoff = Backoff{Min: time.Second, Max: time.Minute, GiveUpAfter: time.Hour} })
	r.hook.failing = 2
	key := r.spend(b, 8*usd)
	id := EventID("b1", key, "0.8")

	r.pass(w) // attempt 1 fails (a scheduled retry, not a failed pass): retry in 1s
	r.pass(w) // not due yet
	if n := r.hook.callCount(); n != 1 {
		t.Fatalf("%d calls; want 1 (the retry is not due)", n)
	}
	r.clock.advance(time.Second)
	r.pass(w) // attempt 2 fails: retry in 2s
	r.clock.advance(time.Second)
	r.pass(w) // not due
	if row := r.outbox.row(id); row.attempts != 2 || row.delivered || row.lastErr == "" {
		t.Fatalf("after two failures: %+v", row)
	}
	r.clock.advance(time.Second)
	r.pass(w) // attempt 3 delivered
	r.clock.advance(time.Hour)
	r.pass(w, w)
	if n := r.hook.callsOf(id); n != 3 {
		t.Fatalf("%d calls; want 3 (two failures, one delivery)", n)
	}
	if row := r.outbox.row(id); !row.delivered || row.due != nil {
		t.Fatalf("after delivery: %+v", row)
	}
	r.wantPublished("0.8") // the event went out once, whatever the webhook did
}

func TestWebhookIsAbandonedAfterGiveUp(t *testing.T) {
	b := teamBudget("b1", 10*usd, "1d", "0.8")
	r := newRig(t, b)
	w := r.instance(func(c *Config) { c.Backoff = Backoff{Min: time.Second, Max: time.Second, GiveUpAfter: 3 * time.Second} })
	r.hook.failing = 1000
	key := r.spend(b, 8*usd)
	for range 10 {
		r.pass(w)
		r.clock.advance(time.Second)
	}
	// Attempts at 0s, 1s, 2s and 3s (GiveUpAfter itself); one at 4s would
	// be past it, so the call is abandoned after the fourth.
	if n := r.hook.callCount(); n != 4 {
		t.Fatalf("%d calls; want 4", n)
	}
	if row := r.outbox.row(EventID("b1", key, "0.8")); row.due != nil || row.delivered || row.attempts != 4 {
		t.Fatalf("abandoned row %+v", row)
	}
}

func TestWithoutAWebhookNothingIsOwed(t *testing.T) {
	b := teamBudget("b1", 10*usd, "1d", "0.8")
	r := newRig(t, b)
	w := r.instance(func(c *Config) { c.Notifier = nil })
	r.spend(b, 8*usd)
	r.pass(w)
	r.wantPublished("0.8")
	if _, owed, _ := r.outbox.Pending(context.Background()); owed != 0 {
		t.Fatalf("%d webhook calls owed with no webhook configured", owed)
	}
}

func TestABadBudgetDoesNotSilenceTheOthers(t *testing.T) {
	bad := teamBudget("bad", 10*usd, "1d", "eighty percent")
	good := teamBudget("good", 10*usd, "1d", "0.8")
	r := newRig(t, bad, good)
	w := r.instance(nil)
	r.spend(bad, 9*usd)
	r.spend(good, 9*usd)
	r.pass(w)
	if len(r.pub.events) != 1 || r.pub.events[0].BudgetID != "good" {
		t.Fatalf("published %+v; want only good's crossing", r.pub.events)
	}
}
