package budgetclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
)

// fakeService answers each item with an admission whose reservation id is
// the request id, or with the error errs names for that id. While gate is
// open (non-nil), AdmitBatch waits on it, so a test holds batches in flight.
type fakeService struct {
	errs map[string]*connect.Error
	gate chan struct{}
	// batchErr fails AdmitBatch as a whole.
	batchErr error

	mu      sync.Mutex
	batches [][]string        // request ids of every AdmitBatch, in call order
	admits  []string          // request ids of every plain Admit
	ctxs    []context.Context // the context of every AdmitBatch
}

func (f *fakeService) answer(req *budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, *connect.Error) {
	if e := f.errs[req.GetRequestId()]; e != nil {
		return nil, e
	}
	return &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: &budgetv1.Admission{ReservationId: req.GetRequestId()}}}, nil
}

func (f *fakeService) Admit(_ context.Context, req *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	f.mu.Lock()
	f.admits = append(f.admits, req.Msg.GetRequestId())
	f.mu.Unlock()
	resp, err := f.answer(req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

func (f *fakeService) AdmitBatch(ctx context.Context, req *connect.Request[budgetv1.AdmitBatchRequest]) (*connect.Response[budgetv1.AdmitBatchResponse], error) {
	var ids []string
	for _, r := range req.Msg.GetRequests() {
		ids = append(ids, r.GetRequestId())
	}
	f.mu.Lock()
	f.batches = append(f.batches, ids)
	f.ctxs = append(f.ctxs, ctx)
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if f.batchErr != nil {
		return nil, f.batchErr
	}
	out := &budgetv1.AdmitBatchResponse{}
	for _, r := range req.Msg.GetRequests() {
		resp, err := f.answer(r)
		if err != nil {
			out.Results = append(out.Results, &budgetv1.AdmitBatchResult{Outcome: &budgetv1.AdmitBatchResult_Error{
				Error: &budgetv1.AdmitError{Code: uint32(err.Code()), Message: err.Message()}}})
			continue
		}
		out.Results = append(out.Results, &budgetv1.AdmitBatchResult{Outcome: &budgetv1.AdmitBatchResult_Response{Response: resp}})
	}
	return connect.NewResponse(out), nil
}

func (f *fakeService) batchIDs() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.batches...)
}

// queued waits until n items wait in c's queue.
func queued(t *testing.T, c *Coalescer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.queue)
		c.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d items queued; want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// inFlight waits until the service has received n batches.
func inFlight(t *testing.T, f *fakeService, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.batchIDs()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches sent; want %d", len(f.batchIDs()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func admitReq(id string) *budgetv1.AdmitRequest { return &budgetv1.AdmitRequest{RequestId: id} }

func reservation(resp *budgetv1.AdmitResponse) string { return resp.GetAdmitted().GetReservationId() }

func TestLoneCallGoesOutAtOnceInABatchOfOne(t *testing.T) {
	f := &fakeService{}
	c := New(f, Options{})
	resp, err := c.Admit(context.Background(), admitReq("r1"))
	if err != nil || reservation(resp) != "r1" {
		t.Fatalf("admit: %v, %v", resp, err)
	}
	if b := f.batchIDs(); len(b) != 1 || len(b[0]) != 1 {
		t.Fatalf("batches %v; want one batch of one", b)
	}
}

func TestCallsArrivingDuringABatchGoTogetherAndEachGetsItsOwnAnswer(t *testing.T) {
	f := &fakeService{gate: make(chan struct{})}
	c := New(f, Options{MaxInFlight: 1})
	const n = 50
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	call := func(i int) {
		wg.Go(func() {
			resp, err := c.Admit(context.Background(), admitReq(fmt.Sprintf("r%d", i)))
			got[i], errs[i] = reservation(resp), err
		})
	}
	call(0)
	inFlight(t, f, 1) // the first goes out alone and is held
	for i := 1; i < n; i++ {
		call(i)
	}
	queued(t, c, n-1)
	close(f.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != fmt.Sprintf("r%d", i) {
			t.Errorf("caller %d: reservation %q, err %v; want its own r%d", i, got[i], errs[i], i)
		}
	}
	if b := f.batchIDs(); len(b) != 2 || len(b[0]) != 1 || len(b[1]) != n-1 {
		t.Fatalf("batch sizes %d; want 2 calls: 1, then the %d that queued", len(b), n-1)
	}
}

func TestBatchesAreCappedInSizeAndInFlight(t *testing.T) {
	f := &fakeService{gate: make(chan struct{})}
	c := New(f, Options{MaxInFlight: 2, MaxBatch: 4})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { _, _ = c.Admit(context.Background(), admitReq(fmt.Sprintf("a%d", i))) })
		inFlight(t, f, i+1)
	}
	for i := range 10 {
		wg.Go(func() { _, _ = c.Admit(context.Background(), admitReq(fmt.Sprintf("b%d", i))) })
	}
	queued(t, c, 10) // two in flight: the rest wait
	close(f.gate)
	wg.Wait()
	total := 0
	for _, b := range f.batchIDs() {
		if len(b) > 4 {
			t.Errorf("batch of %d; MaxBatch is 4", len(b))
		}
		total += len(b)
	}
	if total != 12 {
		t.Fatalf("%d items sent; want 12, each once", total)
	}
}

func TestAnItemErrorReachesOnlyItsCaller(t *testing.T) {
	f := &fakeService{gate: make(chan struct{}), errs: map[string]*connect.Error{
		"blocked": connect.NewError(connect.CodePermissionDenied, errors.New(`end user "u" is blocked`)),
		"bad":     connect.NewError(connect.CodeInvalidArgument, errors.New("model_group: is required")),
	}}
	c := New(f, Options{MaxInFlight: 1})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = c.Admit(context.Background(), admitReq("first")) })
	inFlight(t, f, 1)
	results := map[string]error{}
	var mu sync.Mutex
	for _, id := range []string{"ok1", "blocked", "ok2", "bad"} {
		wg.Go(func() {
			resp, err := c.Admit(context.Background(), admitReq(id))
			if err == nil && reservation(resp) != id {
				err = fmt.Errorf("reservation %q", reservation(resp))
			}
			mu.Lock()
			results[id] = err
			mu.Unlock()
		})
	}
	queued(t, c, 4)
	close(f.gate)
	wg.Wait()
	if results["ok1"] != nil || results["ok2"] != nil {
		t.Fatalf("a neighbour's error leaked: %v", results)
	}
	for id, want := range map[string]connect.Code{"blocked": connect.CodePermissionDenied, "bad": connect.CodeInvalidArgument} {
		var ce *connect.Error
		if !errors.As(results[id], &ce) || ce.Code() != want || ce.Message() != f.errs[id].Message() {
			t.Errorf("%s: %v; want %v %q, as Admit would answer", id, results[id], want, f.errs[id].Message())
		}
	}
	if b := f.batchIDs(); len(b) != 2 {
		t.Fatalf("%d batches; want the four together after the first", len(b))
	}
}

func TestUnimplementedFallsBackToAdmitAndRetriesLater(t *testing.T) {
	f := &fakeService{batchErr: connect.NewError(connect.CodeUnimplemented, errors.New("no AdmitBatch")),
		errs: map[string]*connect.Error{"bad": connect.NewError(connect.CodeInvalidArgument, errors.New("nope"))}}
	c := New(f, Options{RetryBatchAfter: time.Minute})
	now := time.Unix(1_000, 0)
	c.now = func() time.Time { return now }
	resp, err := c.Admit(context.Background(), admitReq("r1"))
	if err != nil || reservation(resp) != "r1" {
		t.Fatalf("first admit after Unimplemented: %v, %v", resp, err)
	}
	if _, err := c.Admit(context.Background(), admitReq("bad")); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("plain Admit error: %v; want InvalidArgument passed through", err)
	}
	if b := f.batchIDs(); len(b) != 1 {
		t.Fatalf("%d AdmitBatch calls; want 1 until RetryBatchAfter", len(b))
	}
	if len(f.admits) != 2 {
		t.Fatalf("plain Admits %v; want r1 and bad", f.admits)
	}
	now = now.Add(2 * time.Minute)
	f.batchErr = nil
	if resp, err := c.Admit(context.Background(), admitReq("r3")); err != nil || reservation(resp) != "r3" {
		t.Fatalf("after the retry interval: %v, %v", resp, err)
	}
	if b := f.batchIDs(); len(b) != 2 || len(f.admits) != 2 {
		t.Fatalf("batches %v, admits %v; want AdmitBatch tried again", b, f.admits)
	}
}

func TestBatchWideErrorsFailEveryCallerWithoutBlamingTheirInput(t *testing.T) {
	f := &fakeService{batchErr: connect.NewError(connect.CodeUnavailable, errors.New("down"))}
	c := New(f, Options{})
	if _, err := c.Admit(context.Background(), admitReq("r1")); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("%v; want Unavailable", err)
	}
	f.batchErr = connect.NewError(connect.CodeInvalidArgument, errors.New("requests: 300 requests"))
	if _, err := c.Admit(context.Background(), admitReq("r2")); connect.CodeOf(err) != connect.CodeInternal || !strings.Contains(err.Error(), "300 requests") {
		t.Fatalf("%v; want Internal naming the batch's problem, not InvalidArgument", err)
	}
}

func TestACancelledCallerReturnsAtOnceAndOthersAreUnaffected(t *testing.T) {
	f := &fakeService{gate: make(chan struct{})}
	c := New(f, Options{MaxInFlight: 1})
	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() { _, firstErr = c.Admit(context.Background(), admitReq("first")) })
	inFlight(t, f, 1)

	// Queued, then cancelled: returns Canceled without waiting, and is
	// never sent.
	ctx, cancel := context.WithCancel(context.Background())
	queuedErr := make(chan error, 1)
	go func() {
		_, err := c.Admit(ctx, admitReq("gone"))
		queuedErr <- err
	}()
	queued(t, c, 1)
	var keptResp *budgetv1.AdmitResponse
	var keptErr error
	wg.Go(func() { keptResp, keptErr = c.Admit(context.Background(), admitReq("kept")) })
	queued(t, c, 2)
	cancel()
	select {
	case err := <-queuedErr:
		if connect.CodeOf(err) != connect.CodeCanceled {
			t.Fatalf("cancelled caller: %v; want Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled caller still waits for the batch in flight")
	}
	close(f.gate)
	wg.Wait()
	if firstErr != nil || keptErr != nil || reservation(keptResp) != "kept" {
		t.Fatalf("first %v; kept %v, %v", firstErr, keptResp, keptErr)
	}
	b := f.batchIDs()
	if len(b) != 2 || len(b[1]) != 1 || b[1][0] != "kept" {
		t.Fatalf("batches %v; the cancelled item must not be sent", b)
	}
}

func TestABatchInFlightEndsOnlyWhenAllItsCallersHaveGone(t *testing.T) {
	f := &fakeService{gate: make(chan struct{})}
	c := New(f, Options{MaxInFlight: 1})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = c.Admit(context.Background(), admitReq("first")) })
	inFlight(t, f, 1)
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	wg.Go(func() { _, _ = c.Admit(ctxA, admitReq("a")) })
	wg.Go(func() { _, _ = c.Admit(ctxB, admitReq("b")) })
	queued(t, c, 2)
	f.gate <- struct{}{} // the first batch answers; a and b go out together
	inFlight(t, f, 2)
	f.mu.Lock()
	batchCtx := f.ctxs[1]
	f.mu.Unlock()
	cancelA()
	select {
	case <-batchCtx.Done():
		t.Fatal("one caller's cancellation cancelled its neighbour's admission")
	case <-time.After(50 * time.Millisecond):
	}
	cancelB()
	select {
	case <-batchCtx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the batch goes on with no caller left")
	}
	close(f.gate)
	wg.Wait()
}

func TestBatchContextCarriesTheLatestDeadline(t *testing.T) {
	early, cancel1 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel1()
	late, cancel2 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel2()
	ctx, stop := batchContext([]*pending{{ctx: early}, {ctx: late}})
	d, ok := ctx.Deadline()
	want, _ := late.Deadline()
	stop()
	if !ok || !d.Equal(want) {
		t.Fatalf("deadline %v (%v); want the later caller's %v", d, ok, want)
	}
	ctx, stop = batchContext([]*pending{{ctx: early}, {ctx: context.Background()}})
	defer stop()
	if _, ok := ctx.Deadline(); ok {
		t.Fatal("a caller without a deadline must not get one from its neighbour")
	}
}
