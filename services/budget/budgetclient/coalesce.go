// Package budgetclient is a client of the budget service's admission that
// coalesces concurrent Admit calls into AdmitBatch calls.
//
// Each Admit over Connect costs both ends an HTTP request's worth of CPU
// (headers, framing, a goroutine, a connection's turn) whatever its size,
// and at gateway concurrency that overhead, not the decision, dominates.
// Coalescer sends one AdmitBatch for the calls that arrived while earlier
// batches were in flight:
//
//   - No timer: when fewer than MaxInFlight batches are in flight, a call
//     goes out at once (a batch of one), so a lone caller pays no added
//     latency. Only calls that would have waited on a busy service anyway
//     are grouped, and under load batches grow by themselves.
//   - Each caller gets its own answer: the service decides every item as its
//     own Admit would (idempotency, denials, errors), and an item's error is
//     returned to that caller alone as the *connect.Error Admit would have
//     returned.
//   - A caller whose context ends returns at once with its context's error;
//     its item is dropped if it has not been sent. A batch in flight is
//     cancelled only when every caller in it has given up.
//   - A budget service that answers AdmitBatch with Unimplemented (an older
//     release, during a rolling upgrade) gets plain Admit calls, and is asked
//     again after RetryBatchAfter.
//
// The package is exported (not internal) so that the benchmarks in e2e, a
// separate module, measure the very client the gateway runs.
package budgetclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
)

// Admitter is the part of the generated BudgetServiceClient the coalescer
// calls.
type Admitter interface {
	Admit(context.Context, *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error)
	AdmitBatch(context.Context, *connect.Request[budgetv1.AdmitBatchRequest]) (*connect.Response[budgetv1.AdmitBatchResponse], error)
}

// Defaults of Options.
const (
	// DefaultMaxInFlight batches at once: enough to keep the service busy
	// while a batch's answer travels back, few enough that calls queue and
	// group under load.
	DefaultMaxInFlight = 3
	// DefaultMaxBatch is the service's own limit (api.MaxAdmitBatch).
	DefaultMaxBatch = 256
	// DefaultRetryBatchAfter is how long an Unimplemented answer sends
	// plain Admits before AdmitBatch is tried again.
	DefaultRetryBatchAfter = 30 * time.Second
)

// Options tune a Coalescer; zero values take the defaults.
type Options struct {
	MaxInFlight     int
	MaxBatch        int
	RetryBatchAfter time.Duration
}

// Coalescer sends concurrent Admit calls as AdmitBatch calls (package doc).
type Coalescer struct {
	c    Admitter
	opts Options
	now  func() time.Time

	mu       sync.Mutex
	queue    []*pending
	inFlight int

	// unbatchedUntil (unix nanos) is when AdmitBatch is tried again after
	// the service answered Unimplemented; zero while batches work.
	unbatchedUntil atomic.Int64
}

// pending is one caller's item, from Admit to its answer.
type pending struct {
	ctx  context.Context
	req  *budgetv1.AdmitRequest
	done chan outcome // buffered: the sender never waits on a caller
}

type outcome struct {
	resp *budgetv1.AdmitResponse
	err  error
}

// New returns a Coalescer over c.
func New(c Admitter, opts Options) *Coalescer {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxBatch <= 0 || opts.MaxBatch > DefaultMaxBatch {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.RetryBatchAfter <= 0 {
		opts.RetryBatchAfter = DefaultRetryBatchAfter
	}
	return &Coalescer{c: c, opts: opts, now: time.Now}
}

// Admit returns what the budget service's Admit answers for req, or the
// *connect.Error it fails with.
func (c *Coalescer) Admit(ctx context.Context, req *budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error) {
	if c.now().UnixNano() < c.unbatchedUntil.Load() {
		return c.admitOne(ctx, req)
	}
	p := &pending{ctx: ctx, req: req, done: make(chan outcome, 1)}
	c.mu.Lock()
	if len(c.queue) == 0 && c.inFlight < c.opts.MaxInFlight {
		// Nothing to wait for and no one to group with: send a batch of
		// one on this goroutine, as a plain Admit would, without a
		// hand-off to another.
		c.inFlight++
		c.mu.Unlock()
		c.send([]*pending{p})
		o := <-p.done
		return o.resp, o.err
	}
	c.queue = append(c.queue, p)
	c.dispatchLocked()
	c.mu.Unlock()
	select {
	case o := <-p.done:
		return o.resp, o.err
	case <-ctx.Done():
		return nil, contextError(ctx.Err())
	}
}

// contextError is the error a plain Admit fails with when its context ends.
func contextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return connect.NewError(connect.CodeCanceled, err)
}

// batchError is what each caller gets when the AdmitBatch call as a whole
// fails. Codes that would blame the caller's own request (InvalidArgument,
// PermissionDenied) are not about any one item here, so they become Internal.
func batchError(err error) error {
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument, connect.CodePermissionDenied:
		return connect.NewError(connect.CodeInternal, fmt.Errorf("admit batch: %w", err))
	}
	return err
}

func (c *Coalescer) admitOne(ctx context.Context, req *budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error) {
	resp, err := c.c.Admit(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// dispatchLocked starts batches of the queued items while fewer than
// MaxInFlight are in flight. Items whose caller has gone are dropped.
func (c *Coalescer) dispatchLocked() {
	for c.inFlight < c.opts.MaxInFlight && len(c.queue) > 0 {
		var batch []*pending
		n := 0
		for ; n < len(c.queue) && len(batch) < c.opts.MaxBatch; n++ {
			if c.queue[n].ctx.Err() == nil {
				batch = append(batch, c.queue[n])
			}
		}
		c.queue = c.queue[n:]
		if len(c.queue) == 0 {
			c.queue = nil // let the backing array go
		}
		if len(batch) == 0 {
			continue
		}
		c.inFlight++
		go c.send(batch)
	}
}

// send makes one AdmitBatch call and hands every caller its answer.
func (c *Coalescer) send(batch []*pending) {
	ctx, stop := batchContext(batch)
	defer stop()
	reqs := make([]*budgetv1.AdmitRequest, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	resp, err := c.c.AdmitBatch(ctx, connect.NewRequest(&budgetv1.AdmitBatchRequest{Requests: reqs}))
	switch {
	case connect.CodeOf(err) == connect.CodeUnimplemented:
		c.unbatchedUntil.Store(c.now().Add(c.opts.RetryBatchAfter).UnixNano())
		for _, p := range batch {
			go func() {
				r, err := c.admitOne(p.ctx, p.req)
				p.done <- outcome{r, err}
			}()
		}
	case err != nil:
		err = batchError(err)
		for _, p := range batch {
			p.done <- outcome{err: err}
		}
	case len(resp.Msg.GetResults()) != len(batch):
		err := connect.NewError(connect.CodeInternal, fmt.Errorf("admit batch: %d results for %d requests", len(resp.Msg.GetResults()), len(batch)))
		for _, p := range batch {
			p.done <- outcome{err: err}
		}
	default:
		for i, r := range resp.Msg.GetResults() {
			batch[i].done <- itemOutcome(r)
		}
	}
	c.mu.Lock()
	c.inFlight--
	c.dispatchLocked()
	c.mu.Unlock()
}

// itemOutcome turns one result back into what Admit would have returned.
func itemOutcome(r *budgetv1.AdmitBatchResult) outcome {
	if e := r.GetError(); e != nil {
		code := connect.Code(e.GetCode())
		if code < connect.CodeCanceled || code > connect.CodeUnauthenticated {
			code = connect.CodeUnknown
		}
		return outcome{err: connect.NewError(code, errors.New(e.GetMessage()))}
	}
	if resp := r.GetResponse(); resp != nil {
		return outcome{resp: resp}
	}
	return outcome{err: connect.NewError(connect.CodeInternal, errors.New("admit batch: a result with neither a response nor an error"))}
}

// batchContext is the context of one AdmitBatch call: it ends when every
// caller's context has ended (no one is left to answer), and carries the
// latest of their deadlines, or none if any caller has none, so that no
// caller's deadline cuts another's admission short.
func batchContext(batch []*pending) (context.Context, context.CancelFunc) {
	if len(batch) == 1 {
		// The lone caller's own context ends exactly when the batch should.
		return batch[0].ctx, func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			latest = time.Time{}
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	if !latest.IsZero() {
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadline(ctx, latest)
		cancelAll := cancel
		cancel = func() { cancelDeadline(); cancelAll() }
	}
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, p := range batch {
		stops[i] = context.AfterFunc(p.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
