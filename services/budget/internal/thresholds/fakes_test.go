package thresholds

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// clock is a settable time shared by the fakes and the watchers under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type fakeBudgets struct{ budgets []store.Budget }

func (f *fakeBudgets) BudgetsWithThresholds(context.Context) ([]store.Budget, error) {
	return f.budgets, nil
}

// fakeCounters holds settled spend by counter key; keys not set are missing.
type fakeCounters struct {
	mu    sync.Mutex
	spent map[string]int64
}

func (f *fakeCounters) set(key string, spent int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spent[key] = spent
}

func (f *fakeCounters) Read(_ context.Context, keys []string) ([]redisstore.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]redisstore.State, len(keys))
	for i, k := range keys {
		if s, ok := f.spent[k]; ok {
			// Reservations are there to prove they are not counted.
			out[i] = redisstore.State{Exists: true, Spent: s, Reserved: 1 << 40, Held: 1 << 40, Live: 1 << 40}
		}
	}
	return out, nil
}

// fakeOutbox is the table in memory: a row per event id (the primary key's
// stand-in, as the id derives from it), shared by every watcher of a test
// like the real table is by every instance.
type fakeOutbox struct {
	mu    sync.Mutex
	clock *clock
	rows  map[string]*fakeRow
	order []string
	// inserts counts Record's attempted inserts, to prove the per-instance memory.
	inserts int
}

type fakeRow struct {
	c         Crossing
	published bool
	due       *time.Time
	delivered bool
	attempts  int
	lastErr   string
}

func newFakeOutbox(c *clock) *fakeOutbox { return &fakeOutbox{clock: c, rows: map[string]*fakeRow{}} }

func (o *fakeOutbox) Record(_ context.Context, cs []Crossing, webhook bool) ([]Crossing, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Crossing
	for _, c := range cs {
		o.inserts++
		if _, ok := o.rows[c.EventID]; ok {
			continue
		}
		r := &fakeRow{c: c}
		if webhook {
			due := o.clock.now()
			r.due = &due
		}
		o.rows[c.EventID] = r
		o.order = append(o.order, c.EventID)
		out = append(out, c)
	}
	return out, nil
}

func (o *fakeOutbox) PublishNext(ctx context.Context, publish func(context.Context, Crossing) error) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range o.order {
		if r := o.rows[id]; !r.published {
			if err := publish(ctx, r.c); err != nil {
				return true, err
			}
			r.published = true
			return true, nil
		}
	}
	return false, nil
}

func (o *fakeOutbox) DeliverNext(ctx context.Context, deliver func(context.Context, Crossing, int) WebhookOutcome) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range o.order {
		r := o.rows[id]
		if r.due == nil || r.due.After(o.clock.now()) {
			continue
		}
		out := deliver(ctx, r.c, r.attempts)
		r.attempts++
		switch {
		case out.Delivered:
			r.due, r.delivered, r.lastErr = nil, true, ""
		case out.Abandon:
			r.due, r.lastErr = nil, out.Err
		default:
			next := o.clock.now().Add(out.RetryIn)
			r.due, r.lastErr = &next, out.Err
		}
		return true, nil
	}
	return false, nil
}

func (o *fakeOutbox) Pending(context.Context) (int64, int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var unpublished, owed int64
	for _, r := range o.rows {
		if !r.published {
			unpublished++
		}
		if r.due != nil {
			owed++
		}
	}
	return unpublished, owed, nil
}

func (o *fakeOutbox) row(id string) fakeRow {
	o.mu.Lock()
	defer o.mu.Unlock()
	return *o.rows[id]
}

// fakePublisher records what it published; while down it fails.
type fakePublisher struct {
	mu     sync.Mutex
	down   bool
	events []Crossing
}

func (p *fakePublisher) Publish(_ context.Context, c Crossing) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("nats: no responders available for request")
	}
	p.events = append(p.events, c)
	return nil
}

func (p *fakePublisher) setDown(down bool) { p.mu.Lock(); defer p.mu.Unlock(); p.down = down }

func (p *fakePublisher) thresholds() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, c := range p.events {
		out = append(out, c.Threshold)
	}
	return out
}

// fakeNotifier records its calls; it fails while failing > 0, counting down.
type fakeNotifier struct {
	mu      sync.Mutex
	failing int
	calls   []string // event ids, failed calls included
}

func (n *fakeNotifier) Notify(_ context.Context, c Crossing) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, c.EventID)
	if n.failing > 0 {
		n.failing--
		return errors.New("webhook answered 503 Service Unavailable")
	}
	return nil
}

func (n *fakeNotifier) callCount() int { n.mu.Lock(); defer n.mu.Unlock(); return len(n.calls) }

func (n *fakeNotifier) callsOf(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(slices.DeleteFunc(slices.Clone(n.calls), func(c string) bool { return c != id }))
}
