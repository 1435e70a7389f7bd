package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
)

// MaxAdmitBatch is the most requests one AdmitBatch may carry. It bounds the
// goroutines and memory a single call can claim; a coalescing client sends
// far fewer (its batches are what arrived during one round trip).
const MaxAdmitBatch = 256

// batchWorkerIdle is how long a goroutine that ran a batch item waits for
// another before it exits (workers.go).
const batchWorkerIdle = 10 * time.Second

// AdmitBatch implements BudgetServiceHandler: every item goes through Admit,
// all of them at once, so they arrive together at admission's group commit
// and share its Redis script calls. An item's error is returned as that
// item's result with the code and message Admit would have answered, so
// idempotency, denials, PermissionDenied, InvalidArgument and Unavailable
// mean per item exactly what they mean for Admit, and one bad item never
// fails the others.
func (h *Handler) AdmitBatch(ctx context.Context, req *connect.Request[budgetv1.AdmitBatchRequest]) (*connect.Response[budgetv1.AdmitBatchResponse], error) {
	if h.admitter == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoAdmission)
	}
	items := req.Msg.GetRequests()
	if len(items) == 0 {
		return nil, invalid("requests", "at least one request is required")
	}
	if len(items) > MaxAdmitBatch {
		return nil, invalid("requests", "%d requests; at most %d per batch", len(items), MaxAdmitBatch)
	}
	results := make([]*budgetv1.AdmitBatchResult, len(items))
	var wg sync.WaitGroup
	wg.Add(len(items))
	for i, item := range items {
		h.batchItems.run(func() {
			defer wg.Done()
			resp, err := h.Admit(ctx, connect.NewRequest(item))
			results[i] = batchResult(resp, err)
		})
	}
	wg.Wait()
	return connect.NewResponse(&budgetv1.AdmitBatchResponse{Results: results}), nil
}

// batchResult is one item's answer as data. A plain (non-Connect) error is
// carried as Unknown with its text, as Connect itself would send it.
func batchResult(resp *connect.Response[budgetv1.AdmitResponse], err error) *budgetv1.AdmitBatchResult {
	if err == nil {
		return &budgetv1.AdmitBatchResult{Outcome: &budgetv1.AdmitBatchResult_Response{Response: resp.Msg}}
	}
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	return &budgetv1.AdmitBatchResult{Outcome: &budgetv1.AdmitBatchResult_Error{Error: &budgetv1.AdmitError{
		Code: uint32(connect.CodeOf(err)), Message: msg,
	}}}
}
