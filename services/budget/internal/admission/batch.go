package admission

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/ledger/redisstore"
)

// BatchConfig tunes the group commit of Reserve calls.
//
// Every admission with a budget runs one Reserve script, and Redis runs
// scripts one at a time: one Reserve over six counters costs Redis about
// 60-100 µs on the reference machine (BENCHMARKS.md), which capped
// admission near 10k/s however many budget instances ran. Concurrent
// admissions are therefore sent together: redisstore.ReserveBatch decides a
// batch in one script call, request by request in order with Reserve's
// exact semantics, reading and writing each shared counter once.
//
// Batching is natural, not timed: a request that finds fewer than
// MaxInFlight calls running is sent at once (alone, at low load: no added
// latency), and requests arriving while the calls are busy queue and go
// together in the next call. So batches grow exactly when Redis is the
// bottleneck, and no request waits for a timer.
type BatchConfig struct {
	// Disabled sends every Reserve in its own script call (as before group
	// commit); also the behaviour on Redis Cluster, where one script cannot
	// span a request's slots.
	Disabled bool
	// MaxSize bounds the requests in one call; default 64. Redis runs
	// nothing else during a call, so this bounds the wait it imposes.
	MaxSize int
	// MaxInFlight bounds the calls in flight from this instance; default 2,
	// so that one call is on the wire while Redis runs the other.
	MaxInFlight int
}

const (
	defaultBatchSize     = 64
	defaultBatchInFlight = 2
	// batchCallTimeout bounds one batch call. It does not come from any one
	// request's context: the call serves many.
	batchCallTimeout = 10 * time.Second
)

// batcher is the group commit in front of redisstore.ReserveBatch.
type batcher struct {
	st       *redisstore.Store
	size     int
	inFlight int
	sizes    prometheus.Observer

	mu      sync.Mutex
	queue   []*pending
	running int
}

// pending is one Reserve waiting for its batch.
type pending struct {
	req  redisstore.ReserveRequest
	res  redisstore.ReserveBatchResult
	done chan struct{}
}

func newBatcher(st *redisstore.Store, cfg BatchConfig, sizes prometheus.Observer) *batcher {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = defaultBatchSize
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = defaultBatchInFlight
	}
	return &batcher{st: st, size: min(cfg.MaxSize, redisstore.MaxReserveBatch), inFlight: cfg.MaxInFlight, sizes: sizes}
}

// reserve is Reserve through the group commit. If ctx ends first, the
// request may still be decided by its batch, exactly as a Reserve call cut
// short may still run in Redis; a reservation it gets then expires at its
// TTL. (It is not released: the ID may be a retry whose first attempt was
// admitted and is in use.)
func (b *batcher) reserve(ctx context.Context, req redisstore.ReserveRequest) (redisstore.ReserveResult, error) {
	p := &pending{req: req, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	start := b.running < b.inFlight
	if start {
		b.running++
	}
	b.mu.Unlock()
	if start {
		go b.run()
	}
	select {
	case <-p.done:
		return p.res.ReserveResult, p.res.Err
	case <-ctx.Done():
		return redisstore.ReserveResult{}, ctx.Err()
	}
}

// run sends batches until the queue is empty.
func (b *batcher) run() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.size)
		if n == 0 {
			b.running--
			b.queue = nil // let a burst's backing array go
			b.mu.Unlock()
			return
		}
		batch := make([]*pending, n)
		copy(batch, b.queue)
		clear(b.queue[:n])
		b.queue = b.queue[n:]
		b.mu.Unlock()

		reqs := make([]redisstore.ReserveRequest, n)
		for i, p := range batch {
			reqs[i] = p.req
		}
		b.sizes.Observe(float64(n))
		ctx, cancel := context.WithTimeout(context.Background(), batchCallTimeout)
		res := b.st.ReserveBatch(ctx, reqs)
		cancel()
		for i, p := range batch {
			p.res = res[i]
			close(p.done)
		}
	}
}
