package budget

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
)

type handler struct {
	budgetv1connect.UnimplementedBudgetServiceHandler
	authCode connect.Code
	calls    atomic.Int64
}

func (h *handler) Authenticate(_ context.Context, r *connect.Request[budgetv1.AuthenticateRequest]) (*connect.Response[budgetv1.AuthenticateResponse], error) {
	h.calls.Add(1)
	if h.authCode != 0 {
		return nil, connect.NewError(h.authCode, errors.New("nope"))
	}
	return connect.NewResponse(&budgetv1.AuthenticateResponse{Key: &budgetv1.Key{KeyId: "k-" + r.Msg.KeyHash[:4]}}), nil
}

func startBudget(t *testing.T, h budgetv1connect.BudgetServiceHandler) *Client {
	t.Helper()
	path, hd := budgetv1connect.NewBudgetServiceHandler(h)
	mux := http.NewServeMux()
	mux.Handle(path, hd)
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return NewClient(s.Client(), s.URL)
}

func kind(err error) Kind {
	var e *Error
	if !errors.As(err, &e) {
		return -1
	}
	return e.Kind
}

func TestClientMapsConnectErrors(t *testing.T) {
	h := &handler{}
	c := startBudget(t, h)
	key, err := c.Authenticate(context.Background(), "abcdef")
	if err != nil || key.KeyId != "k-abcd" {
		t.Fatalf("%v %v", key, err)
	}
	// The budget service of today answers Unimplemented: fail closed, 503.
	if _, err := c.Admit(context.Background(), &budgetv1.AdmitRequest{}); kind(err) != KindUnavailable {
		t.Fatalf("Unimplemented: %v", err)
	}
	for code, want := range map[connect.Code]Kind{
		connect.CodeNotFound:         KindInvalidKey,
		connect.CodePermissionDenied: KindInvalidKey,
		connect.CodeUnauthenticated:  KindInvalidKey,
		connect.CodeInvalidArgument:  KindBadRequest,
		connect.CodeUnavailable:      KindUnavailable,
		connect.CodeInternal:         KindUnavailable,
	} {
		h.authCode = code
		if _, err := c.Authenticate(context.Background(), "abcdef"); kind(err) != want {
			t.Errorf("%v: kind %v; want %v", code, kind(err), want)
		}
	}
	// At admission the key is valid: a blocked end user or tag, or a model
	// the key may not call, is a 403, not an invalid key or an outage.
	if k := Classify("admit", connect.NewError(connect.CodePermissionDenied, errors.New(`end user "u" is blocked`))).Kind; k != KindForbidden {
		t.Errorf("admit PermissionDenied: kind %v; want KindForbidden", k)
	}
	dead := NewClient(http.DefaultClient, "http://127.0.0.1:1")
	if _, err := dead.Admit(context.Background(), &budgetv1.AdmitRequest{}); kind(err) != KindUnavailable {
		t.Fatalf("unreachable: %v", err)
	}
}

type countingService struct {
	Service
	mu    sync.Mutex
	calls int
	err   error
}

func (c *countingService) Authenticate(context.Context, string) (*budgetv1.Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	return &budgetv1.Key{KeyId: "k"}, nil
}

func TestCachedAuthenticate(t *testing.T) {
	now := time.Unix(0, 0)
	inner := &countingService{}
	c := NewCached(inner, 5*time.Second, time.Second)
	c.now = func() time.Time { return now }
	for i := 0; i < 10; i++ {
		if k, err := c.Authenticate(context.Background(), "h"); err != nil || k.KeyId != "k" {
			t.Fatal(k, err)
		}
	}
	if inner.calls != 1 {
		t.Fatalf("%d calls within the TTL; want 1", inner.calls)
	}
	now = now.Add(6 * time.Second)
	_, _ = c.Authenticate(context.Background(), "h")
	if inner.calls != 2 {
		t.Fatalf("%d calls; the entry expired", inner.calls)
	}

	inner.err = &Error{Kind: KindUnavailable, Op: "authenticate", Err: errors.New("down")}
	_, _ = c.Authenticate(context.Background(), "other")
	_, _ = c.Authenticate(context.Background(), "other")
	if inner.calls != 4 {
		t.Fatalf("%d calls; an unavailable answer must never be cached", inner.calls)
	}
	inner.err = &Error{Kind: KindInvalidKey, Op: "authenticate", Err: errors.New("unknown")}
	_, _ = c.Authenticate(context.Background(), "bad")
	_, err := c.Authenticate(context.Background(), "bad")
	if inner.calls != 5 || kind(err) != KindInvalidKey {
		t.Fatalf("%d calls, err %v; an invalid key is cached briefly", inner.calls, err)
	}
	now = now.Add(2 * time.Second)
	_, _ = c.Authenticate(context.Background(), "bad")
	if inner.calls != 6 {
		t.Fatalf("%d calls; the negative TTL is shorter", inner.calls)
	}
}

// batchHandler implements AdmitBatch only: it refuses the request id
// "blocked" as Admit would (PermissionDenied) and admits the rest.
type batchHandler struct {
	budgetv1connect.UnimplementedBudgetServiceHandler
	batches atomic.Int64
}

func (h *batchHandler) AdmitBatch(_ context.Context, r *connect.Request[budgetv1.AdmitBatchRequest]) (*connect.Response[budgetv1.AdmitBatchResponse], error) {
	h.batches.Add(1)
	out := &budgetv1.AdmitBatchResponse{}
	for _, req := range r.Msg.Requests {
		if req.RequestId == "blocked" {
			out.Results = append(out.Results, &budgetv1.AdmitBatchResult{Outcome: &budgetv1.AdmitBatchResult_Error{
				Error: &budgetv1.AdmitError{Code: uint32(connect.CodePermissionDenied), Message: `end user "u" is blocked`}}})
			continue
		}
		out.Results = append(out.Results, &budgetv1.AdmitBatchResult{Outcome: &budgetv1.AdmitBatchResult_Response{
			Response: &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: &budgetv1.Admission{ReservationId: req.RequestId}}}}})
	}
	return connect.NewResponse(out), nil
}

func TestAdmitGoesOutAsAdmitBatchAndMapsItemErrorsAsAdmitDid(t *testing.T) {
	h := &batchHandler{}
	c := startBudget(t, h)
	resp, err := c.Admit(context.Background(), &budgetv1.AdmitRequest{RequestId: "r1"})
	if err != nil || resp.GetAdmitted().GetReservationId() != "r1" {
		t.Fatalf("admit: %v, %v", resp, err)
	}
	_, err = c.Admit(context.Background(), &budgetv1.AdmitRequest{RequestId: "blocked"})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindForbidden || e.Message() != `end user "u" is blocked` {
		t.Fatalf("blocked item: %v; want KindForbidden with the service's message", err)
	}
	if n := h.batches.Load(); n != 2 {
		t.Fatalf("%d AdmitBatch calls; want every Admit sent as one", n)
	}
}
