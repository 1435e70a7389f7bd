package admission

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/ledger/redisstore"
)

// LeaseConfig tunes admission leases.
//
// Redis runs one script at a time, and a reservation over six counters
// costs it tens of microseconds: with one reservation per request, Redis
// alone capped admission far below what the budget instances could serve.
// So an instance reserves for many requests at once: a lease is one
// reservation on a request's counters, sized to the demand the instance saw
// for those counters, and the requests that follow take parts of it in
// memory (redisstore's leases: each part is settled or released on its
// own, and the unused rest is released when the lease closes).
//
// The promise is unchanged: a lease is reserved with the same check as a
// request (spent + reserved + lease ≤ limit on every counter, in one
// script), and parts never exceed it, so spend never passes a limit. What a
// lease costs is earliness: until it closes, its unused rest counts as in
// flight, so near a limit another instance (or another counter set sharing
// a counter) may be refused up to MaxAge early. Leases therefore stay
// small near a limit — never more than an eighth of the headroom the last
// reservation left, and exactly the request's estimate when that is less —
// and grow only with demand: a counter set's first lease is exactly its
// first request's estimate.
//
// What a lease changes for a caller: the reservation id is a part id
// (redisstore.LeasePart), the budgets' spend is as of the lease's
// reservation (at most MaxAge old), and a retried request id gets its first
// answer while its lease (or the one before) is this instance's.
type LeaseConfig struct {
	// MaxAge is how long a lease hands out parts; 0 turns leases off (one
	// reservation per request). Default 200ms in the service.
	MaxAge time.Duration
	// MaxParts bounds a lease at that many times the request's estimate;
	// default 1024.
	MaxParts int64
}

const (
	defaultLeaseParts = 1024
	// headroomShare: a lease takes at most 1/headroomShare of what the
	// last reservation on its counters left.
	headroomShare = 8
	// leaseReserveTimeout bounds reserving a lease (reseeds included).
	leaseReserveTimeout = 10 * time.Second
)

// leases hands out admissions from leases, one open lease per counter set.
type leases struct {
	cfg     LeaseConfig
	ttl     time.Duration
	prefix  string // unique to this process, so lease ids never collide
	reserve func(context.Context, redisstore.ReserveRequest) (redisstore.ReserveResult, error)
	release func(ctx context.Context, id string, keys []string) error
	log     *slog.Logger
	opened  prometheus.Counter

	mu     sync.Mutex
	seq    uint64
	shapes map[string]*shape
}

// shape is one counter set (keys in admission's order, window included, so
// a rolled-over window is a new shape).
type shape struct {
	cur     *lease
	prev    *lease        // the one before, for retried request ids
	opening chan struct{} // closed when the lease being reserved is in
	used    time.Time     // last admission
	// closing are this set's leases whose rest is being released, each
	// with a channel closed when it is.
	closing map[*lease]chan struct{}
}

type lease struct {
	id      string
	keys    []string
	size    int64
	used    int64 // handed out in parts
	n       uint64
	opened  time.Time
	expires time.Time
	// states are the counters as the lease's reservation left them.
	states []redisstore.State
	limits []int64
	parts  map[string]string // part id by request id
}

// decision is what reserving decided: admitted under a reservation (a
// request's own, or a lease part), or denied by counter denied; states are
// the counters as admission reports them.
type decision struct {
	admitted    bool
	denied      int
	reservation string
	expires     time.Time
	states      []redisstore.State
	grant       grant // parts for the caller to hand out; none when grant.parts is 0
}

// grant is a block of a lease's parts given to the caller (LeaseGrant).
type grant struct {
	lease      string
	first      uint64
	parts      uint64
	handOutFor time.Duration
}

func newLeases(cfg LeaseConfig, ttl time.Duration, log *slog.Logger, opened prometheus.Counter,
	reserve func(context.Context, redisstore.ReserveRequest) (redisstore.ReserveResult, error),
	release func(context.Context, string, []string) error) *leases {
	if cfg.MaxParts <= 0 {
		cfg.MaxParts = defaultLeaseParts
	}
	u := uuid.Must(uuid.NewV7())
	return &leases{
		cfg: cfg, ttl: ttl, log: log, opened: opened, reserve: reserve, release: release,
		prefix: strings.ReplaceAll(u.String(), "-", "") + ".",
		shapes: map[string]*shape{},
	}
}

// admit admits request id for amount on counters keys (limits parallel),
// from the counter set's open lease or a new one; with want > 1, it also
// grants the caller up to want-1 more parts of the lease, if it has them.
func (l *leases) admit(ctx context.Context, id string, amount int64, keys []string, limits []int64, now time.Time, want uint64) (decision, error) {
	sk := strings.Join(keys, "\x00")
	for {
		l.mu.Lock()
		sh := l.shapes[sk]
		if sh == nil {
			sh = &shape{}
			l.shapes[sk] = sh
		}
		sh.used = now
		if g, ok := sh.take(id, amount, now, l.cfg.MaxAge, want); ok {
			l.mu.Unlock()
			return g, nil
		}
		if wait := sh.opening; wait != nil {
			l.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return decision{}, ctx.Err()
			}
		}
		old := sh.cur
		basis := old
		if basis == nil {
			// Closed by age: its demand still sizes the next one (sizing
			// from nothing would make it the bare estimate, and the one
			// after it would follow at once).
			basis = sh.prev
		}
		if old != nil {
			sh.prev = old
		}
		sh.cur = nil
		size := l.size(basis, amount, now)
		leaseID := l.nextID()
		done := make(chan struct{})
		sh.opening = done
		l.mu.Unlock()

		// The old lease's rest goes back after the new lease is in, off the
		// path of the requests waiting for it — unless the new one is
		// denied: the rest, still held, may be what denied it, so it goes
		// back first and the estimate is asked for again.
		le, res, err := l.open(ctx, leaseID, size, amount, keys, limits, now)
		if err == nil && !res.Admitted {
			if l.settle(sh, old) {
				l.mu.Lock()
				leaseID = l.nextID()
				l.mu.Unlock()
				le, res, err = l.open(ctx, leaseID, amount, amount, keys, limits, now)
			}
			old = nil
		}
		if old != nil {
			l.closeAsync(sh, old)
		}

		l.mu.Lock()
		sh.opening = nil
		close(done)
		if err != nil || !res.Admitted {
			l.mu.Unlock()
			return decision{states: res.States, denied: res.Denied}, err
		}
		sh.cur = le
		l.closeLater(sk, le)
		if err := ctx.Err(); err != nil {
			// The caller is gone: a part it took would be held until the
			// lease expires, as no event or release would come for it.
			l.mu.Unlock()
			return decision{}, err
		}
		g, _ := sh.take(id, amount, now, l.cfg.MaxAge, want)
		l.mu.Unlock()
		return g, nil
	}
}

// nextID is a new lease id, unique to this process. l.mu is held.
func (l *leases) nextID() string {
	l.seq++
	return redisstore.LeaseID(l.prefix + strconv.FormatUint(l.seq, 10))
}

// take hands out a part of the open lease (and a grant of up to want-1 more
// that fit), or the part a retried request id already has (no grant: the
// first answer had it). l.mu is held.
func (sh *shape) take(id string, amount int64, now time.Time, maxAge time.Duration, want uint64) (decision, bool) {
	for _, le := range []*lease{sh.cur, sh.prev} {
		if le == nil {
			continue
		}
		if p, ok := le.parts[id]; ok {
			return le.admission(p), true
		}
	}
	le := sh.cur
	if le == nil || now.Sub(le.opened) >= maxAge || le.size-le.used < amount {
		return decision{}, false
	}
	le.n++
	le.used += amount
	p := redisstore.LeasePart(le.id, le.n, amount)
	le.parts[id] = p
	d := le.admission(p)
	if want > 1 {
		if more := min(want-1, uint64((le.size-le.used)/amount)); more > 0 {
			d.grant = grant{lease: le.id, first: le.n + 1, parts: more, handOutFor: maxAge - now.Sub(le.opened)}
			le.n += more
			le.used += int64(more) * amount
		}
	}
	return d, true
}

// admission reports an admission with part partID: the counters as the
// lease's reservation left them, less the rest nobody holds yet (it is not
// in flight).
func (le *lease) admission(partID string) decision {
	rest := le.size - le.used
	states := make([]redisstore.State, len(le.states))
	for i, st := range le.states {
		st.Live = max(st.Live-rest, 0)
		states[i] = st
	}
	return decision{admitted: true, reservation: partID, expires: le.expires, states: states}
}

// size is the next lease's amount: twice the demand the old lease saw, for
// MaxAge; at least amount, at most MaxParts estimates and an eighth of the
// headroom the old lease's reservation left (its own rest counted back).
func (l *leases) size(old *lease, amount int64, now time.Time) int64 {
	if old == nil {
		return amount
	}
	ratio := 2 * max(l.cfg.MaxAge.Milliseconds(), 1)
	elapsed := max(now.Sub(old.opened).Milliseconds(), 1)
	want := math.MaxInt64 / ratio // demand beyond this is capped below anyway
	if old.used < want {
		want = old.used * ratio / elapsed
	}
	if amount <= math.MaxInt64/l.cfg.MaxParts {
		want = min(want, amount*l.cfg.MaxParts)
	}
	want = min(want, redisstore.MaxPartAmount) // the rest is released as one part
	for i, st := range old.states {
		want = min(want, (old.limits[i]-st.Spent-st.Live+old.size-old.used)/headroomShare)
	}
	if want < 2*amount {
		// Room for one part only: a lease would cost a release of its
		// rest and gain nothing.
		return amount
	}
	return want
}

// open reserves a lease of size; if that is denied and size is more than
// amount, it tries amount, which is what a request without leases would.
func (l *leases) open(ctx context.Context, id string, size, amount int64, keys []string, limits []int64, now time.Time) (*lease, redisstore.ReserveResult, error) {
	req := redisstore.ReserveRequest{ID: id, Amount: size, TTL: l.ttl, Counters: make([]redisstore.Counter, len(keys))}
	for i, k := range keys {
		req.Counters[i] = redisstore.Counter{Key: k, Limit: limits[i]}
	}
	// The lease serves the requests waiting for it too, so it does not end
	// with the caller that reserves it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseReserveTimeout)
	defer cancel()
	res, err := l.reserve(ctx, req)
	if err == nil && !res.Admitted && size > amount {
		l.mu.Lock()
		req.ID = l.nextID()
		l.mu.Unlock()
		req.Amount, size = amount, amount
		res, err = l.reserve(ctx, req)
	}
	if err != nil || !res.Admitted {
		return nil, res, err
	}
	l.opened.Inc()
	return &lease{id: req.ID, keys: keys, size: size, opened: now, expires: res.ExpiresAt,
		states: res.States, limits: limits, parts: map[string]string{}}, res, nil
}

// close releases what nobody took of a lease that hands out no more
// parts. If Redis cannot take it back, it expires with the lease.
func (l *leases) close(le *lease) {
	if le == nil || le.size == le.used {
		return
	}
	rest := le.size - le.used
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.release(ctx, redisstore.LeasePart(le.id, 0, rest), le.keys); err != nil {
		l.log.Warn("releasing a lease's unused rest failed; it expires with the lease", "lease", le.id, "rest_nanos", rest, "err", err)
	}
}

// closeLater closes le MaxAge after it opened, unless it was replaced by
// then, and forgets its counter set if nothing used it since: without it,
// the rest of a lease nobody asks for again would stay held until its TTL.
func (l *leases) closeLater(sk string, le *lease) {
	time.AfterFunc(l.cfg.MaxAge, func() {
		l.mu.Lock()
		sh := l.shapes[sk]
		if sh == nil || sh.cur != le {
			l.mu.Unlock()
			return
		}
		// Taken under the lock, so no part is handed out after the rest is
		// computed.
		sh.cur, sh.prev = nil, le
		if sh.opening == nil && !sh.used.After(le.opened) {
			delete(l.shapes, sk)
		}
		done := sh.closingAdd(le)
		l.mu.Unlock()
		l.close(le)
		l.closed(sh, le, done)
	})
}

// closeAll closes every open lease, releasing its rest: on shutdown.
func (l *leases) closeAll() {
	l.mu.Lock()
	var open []*lease
	for _, sh := range l.shapes {
		if le := sh.cur; le != nil {
			// Taken under the lock: no part is handed out after this.
			sh.cur, sh.prev = nil, le
			open = append(open, le)
		}
	}
	l.mu.Unlock()
	for _, le := range open {
		l.close(le)
	}
}

// closeAsync releases le's rest off the caller's path.
func (l *leases) closeAsync(sh *shape, le *lease) {
	l.mu.Lock()
	done := sh.closingAdd(le)
	l.mu.Unlock()
	go func() {
		l.close(le)
		l.closed(sh, le, done)
	}()
}

// closingAdd records that le's rest is being released. l.mu is held.
func (sh *shape) closingAdd(le *lease) chan struct{} {
	if sh.closing == nil {
		sh.closing = map[*lease]chan struct{}{}
	}
	done := make(chan struct{})
	sh.closing[le] = done
	return done
}

func (l *leases) closed(sh *shape, le *lease, done chan struct{}) {
	l.mu.Lock()
	delete(sh.closing, le)
	l.mu.Unlock()
	close(done)
}

// settle gives back every rest of sh's leases still held — old's, and the
// ones being released — and reports whether there was any: a new lease
// denied while they were held may fit once they are not.
func (l *leases) settle(sh *shape, old *lease) bool {
	l.mu.Lock()
	var waits []chan struct{}
	for _, done := range sh.closing {
		waits = append(waits, done)
	}
	l.mu.Unlock()
	for _, done := range waits {
		<-done
	}
	if old != nil && old.size > old.used {
		l.close(old)
		return true
	}
	return len(waits) > 0
}
