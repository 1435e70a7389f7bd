package admission

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/ledger/redisstore"
)

// fakeCounters is one Redis counter set for the lease logic: reservations
// checked against one limit, releases of parts taken off their lease.
type fakeCounters struct {
	mu       sync.Mutex
	limit    int64
	reserved map[string]int64 // lease id -> what it holds
	reserves int
}

func (f *fakeCounters) reserve(_ context.Context, r redisstore.ReserveRequest) (redisstore.ReserveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves++
	var sum int64
	for _, v := range f.reserved {
		sum += v
	}
	st := []redisstore.State{{Exists: true, Live: sum}}
	if sum+r.Amount > f.limit {
		return redisstore.ReserveResult{Denied: 0, States: st}, nil
	}
	f.reserved[r.ID] = r.Amount
	st[0].Live += r.Amount
	return redisstore.ReserveResult{Admitted: true, States: st, ExpiresAt: time.Now().Add(time.Minute)}, nil
}

func (f *fakeCounters) release(_ context.Context, id string, _ []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	lease, amount, ok := redisstore.ParseLeasePart(id)
	if !ok {
		return fmt.Errorf("not a part: %s", id)
	}
	f.reserved[lease] -= amount
	return nil
}

func (f *fakeCounters) held() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum int64
	for _, v := range f.reserved {
		sum += v
	}
	return sum
}

func newTestLeases(f *fakeCounters, maxAge time.Duration) *leases {
	return newLeases(LeaseConfig{MaxAge: maxAge}, time.Minute, slog.New(slog.DiscardHandler),
		prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}), f.reserve, f.release)
}

// Concurrent admissions on one counter set never hand out more than the
// limit, a retried request id gets its part again, and once the leases
// close what the counters hold is exactly the parts handed out.
func TestLeasesHandOutNoMoreThanReserved(t *testing.T) {
	const amount, limit = 1_000, 100_000_000
	f := &fakeCounters{limit: limit, reserved: map[string]int64{}}
	l := newTestLeases(f, 50*time.Millisecond)
	keys, limits := []string{"k"}, []int64{limit}
	var mu sync.Mutex
	parts := map[string]bool{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				d, err := l.admit(context.Background(), fmt.Sprintf("r%d-%d", g, i), amount, keys, limits, time.Now(), 1)
				if err != nil || !d.admitted {
					t.Errorf("admit: %+v %v", d, err)
					return
				}
				mu.Lock()
				if parts[d.reservation] {
					t.Errorf("part %s handed out twice", d.reservation)
				}
				parts[d.reservation] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	again, err := l.admit(context.Background(), "r3-99", amount, keys, limits, time.Now(), 1)
	if err != nil || !parts[again.reservation] {
		t.Fatalf("retried request id: %+v %v; want its part again", again, err)
	}
	if len(parts) != 1600 {
		t.Fatalf("%d parts for 1600 admissions", len(parts))
	}
	if f.reserves >= 1600/4 {
		t.Fatalf("%d reservations for 1600 admissions: leases did not grow", f.reserves)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.held() != 1600*amount {
		if time.Now().After(deadline) {
			t.Fatalf("counters hold %d after the leases closed; want the parts, %d", f.held(), 1600*amount)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Near the limit, leases shrink to the estimate and the budget fills
// exactly; a denied lease does not deny a request that fits.
func TestLeasesFillTheLimitExactly(t *testing.T) {
	const amount, limit = 1_000, 100_500
	f := &fakeCounters{limit: limit, reserved: map[string]int64{}}
	l := newTestLeases(f, time.Hour) // no closing by age: only by need
	keys, limits := []string{"k"}, []int64{limit}
	n := 0
	for i := range 200 {
		d, err := l.admit(context.Background(), fmt.Sprint(i), amount, keys, limits, time.Now(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !d.admitted {
			break
		}
		n++
	}
	if n != 100 {
		t.Fatalf("admitted %d; the limit holds 100", n)
	}
}

func TestLeaseSize(t *testing.T) {
	l := &leases{cfg: LeaseConfig{MaxAge: 200 * time.Millisecond, MaxParts: 1024}}
	now := time.Now()
	old := func(size, used int64, age time.Duration, limit, spent, live int64) *lease {
		return &lease{size: size, used: used, opened: now.Add(-age), limits: []int64{limit},
			states: []redisstore.State{{Spent: spent, Live: live}}}
	}
	const huge = int64(1) << 50
	for _, tc := range []struct {
		name string
		old  *lease
		want int64
	}{
		{"first lease: the estimate", nil, 10},
		{"twice the demand over the max age", old(100, 100, 100*time.Millisecond, huge, 0, 100), 400},
		{"at most MaxParts estimates", old(1_000, 1_000, time.Millisecond, huge, 0, 1_000), 10 * 1024},
		{"at most an eighth of the headroom", old(100, 100, 10*time.Millisecond, 8_100, 0, 100), 1_000},
		{"its own rest counts back", old(100, 50, 10*time.Millisecond, 8_100, 0, 100), 1_006},
		{"under two estimates: the estimate", old(100, 100, 10*time.Millisecond, 250, 0, 100), 10},
		{"no headroom: the estimate", old(100, 100, 10*time.Millisecond, 90, 0, 100), 10},
	} {
		if got := l.size(tc.old, 10, now); got != tc.want {
			t.Errorf("%s: size %d, want %d", tc.name, got, tc.want)
		}
	}
}

// A lease closed by age still sizes the next one: the counter set's next
// lease is not the bare estimate again.
func TestLeaseClosedByAgeSizesTheNext(t *testing.T) {
	const amount, limit = 1_000, 1_000_000_000
	f := &fakeCounters{limit: limit, reserved: map[string]int64{}}
	l := newTestLeases(f, 30*time.Millisecond)
	keys, limits := []string{"k"}, []int64{limit}
	for i := range 50 {
		if d, err := l.admit(context.Background(), fmt.Sprint("a", i), amount, keys, limits, time.Now(), 1); err != nil || !d.admitted {
			t.Fatalf("admit: %+v %v", d, err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the lease closes by age
	before := f.reserves
	for i := range 10 {
		if d, err := l.admit(context.Background(), fmt.Sprint("b", i), amount, keys, limits, time.Now(), 1); err != nil || !d.admitted {
			t.Fatalf("admit: %+v %v", d, err)
		}
	}
	if n := f.reserves - before; n != 1 {
		t.Fatalf("%d reservations for 10 admissions after an aged-out lease; want one lease sized by the last", n)
	}
}

// closeAll gives every open lease's rest back.
func TestLeasesCloseAll(t *testing.T) {
	const amount, limit = 1_000, 1_000_000_000
	f := &fakeCounters{limit: limit, reserved: map[string]int64{}}
	l := newTestLeases(f, time.Hour)
	for _, k := range []string{"a", "b"} {
		for i := range 20 { // grows past the bare estimate
			if d, err := l.admit(context.Background(), fmt.Sprint(k, i), amount, []string{k}, []int64{limit}, time.Now(), 1); err != nil || !d.admitted {
				t.Fatalf("admit: %+v %v", d, err)
			}
		}
	}
	l.closeAll()
	if got := f.held(); got != 40*amount {
		t.Fatalf("counters hold %d after closeAll; want the 40 parts handed out, %d", got, 40*amount)
	}
}
