package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
)

// scriptedAdmitter answers by request id: "blocked" PermissionDenied, "bad"
// InvalidArgument, "plain" a non-Connect error, anything else an admission
// reserved under its id.
type scriptedAdmitter struct{ fakeAdmitter }

func (a *scriptedAdmitter) Admit(_ context.Context, req *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	switch id := req.Msg.GetRequestId(); id {
	case "blocked":
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New(`end user "u" is blocked`))
	case "bad":
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("model_group: is required"))
	case "plain":
		return nil, errors.New("boom")
	default:
		return connect.NewResponse(&budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: &budgetv1.Admission{ReservationId: id}}}), nil
	}
}

func batchOf(ids ...string) *connect.Request[budgetv1.AdmitBatchRequest] {
	m := &budgetv1.AdmitBatchRequest{}
	for _, id := range ids {
		m.Requests = append(m.Requests, &budgetv1.AdmitRequest{RequestId: id})
	}
	return connect.NewRequest(m)
}

func TestAdmitBatchAnswersEachItemAsAdmitWould(t *testing.T) {
	a := &scriptedAdmitter{}
	h := New(Config{Admitter: a})
	r, err := h.AdmitBatch(ctx(t), batchOf("r1", "blocked", "r2", "bad", "plain"))
	if err != nil {
		t.Fatal(err)
	}
	res := r.Msg.GetResults()
	if len(res) != 5 {
		t.Fatalf("%d results for 5 requests", len(res))
	}
	for i, id := range []string{"r1", "r2"} {
		if got := res[i*2].GetResponse().GetAdmitted().GetReservationId(); got != id {
			t.Errorf("results[%d]: %v; want %s's own admission", i*2, res[i*2], id)
		}
	}
	for i, want := range map[int]struct {
		code connect.Code
		msg  string
	}{
		1: {connect.CodePermissionDenied, `end user "u" is blocked`},
		3: {connect.CodeInvalidArgument, "model_group: is required"},
		4: {connect.CodeUnknown, "boom"},
	} {
		e := res[i].GetError()
		if e == nil || connect.Code(e.GetCode()) != want.code || e.GetMessage() != want.msg {
			t.Errorf("results[%d]: %v; want %v %q", i, res[i], want.code, want.msg)
		}
	}
}

func TestAdmitBatchRunsItsItemsConcurrently(t *testing.T) {
	// Items that arrive one after another would each get their own group
	// commit; the point of the batch is that they arrive together.
	release := make(chan struct{})
	a := &gatedAdmitter{release: release, started: make(chan struct{}, 8)}
	h := New(Config{Admitter: a})
	done := make(chan error, 1)
	go func() {
		_, err := h.AdmitBatch(ctx(t), batchOf("a", "b", "c", "d"))
		done <- err
	}()
	for range 4 {
		<-a.started // all four are inside Admit before any returns
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type gatedAdmitter struct {
	fakeAdmitter
	release chan struct{}
	started chan struct{}
}

func (a *gatedAdmitter) Admit(context.Context, *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	a.started <- struct{}{}
	<-a.release
	return connect.NewResponse(&budgetv1.AdmitResponse{}), nil
}

func TestAdmitBatchRefusesEmptyAndOversizedBatches(t *testing.T) {
	h := New(Config{Admitter: &scriptedAdmitter{}})
	_, err := h.AdmitBatch(ctx(t), batchOf())
	wantCode(t, "empty batch", err, connect.CodeInvalidArgument)
	ids := make([]string, MaxAdmitBatch+1)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	_, err = h.AdmitBatch(ctx(t), batchOf(ids...))
	wantCode(t, "oversized batch", err, connect.CodeInvalidArgument)
	if _, err := h.AdmitBatch(ctx(t), batchOf(ids[:MaxAdmitBatch]...)); err != nil {
		t.Fatalf("a full batch: %v", err)
	}
	// Without admission the whole call is Unimplemented, so a coalescing
	// client falls back to Admit (which answers the same).
	_, err = New(Config{}).AdmitBatch(ctx(t), batchOf("r1"))
	wantCode(t, "no admitter", err, connect.CodeUnimplemented)
}
