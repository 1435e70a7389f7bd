package admission_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/services/budget/budgetclient"
)

// admitBatch runs AdmitBatch and fails the test if the call as a whole fails.
func admitBatch(t *testing.T, in *instance, reqs ...*budgetv1.AdmitRequest) []*budgetv1.AdmitBatchResult {
	t.Helper()
	r := harness.OK[budgetv1.AdmitBatchResponse](t, "admit batch")(in.client.AdmitBatch(harness.Context(t), connect.NewRequest(&budgetv1.AdmitBatchRequest{Requests: reqs})))
	if len(r.Results) != len(reqs) {
		t.Fatalf("%d results for %d requests", len(r.Results), len(reqs))
	}
	return r.Results
}

// wantItemError fails the test unless r is an error with code whose message
// contains part.
func wantItemError(t *testing.T, what string, r *budgetv1.AdmitBatchResult, code connect.Code, part string) {
	t.Helper()
	e := r.GetError()
	if e == nil || connect.Code(e.Code) != code || !strings.Contains(e.Message, part) {
		t.Fatalf("%s: %v; want %v containing %q", what, r, code, part)
	}
}

// TestAdmitBatchKeepsAdmitsSemanticsPerItem: one AdmitBatch holding an
// admission, its retry under the same request id, a blocked end user, a
// malformed request and one over the budget answers each as Admit would:
// the admission and its retry share one reservation ($0.065 held once), the
// blocked end user is PermissionDenied, the malformed one InvalidArgument,
// the big one denied naming the key budget; none disturbs the others. With
// Redis stopped (fail_closed), a budgeted item is Unavailable while an
// unbudgeted one in the same batch is still admitted. A batch of 257 is
// refused as a whole.
func TestAdmitBatchKeepsAdmitsSemanticsPerItem(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	createKey(t, in.client, "k-batch", "", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
	createKey(t, in.client, "k-batch-free", "")
	harness.OK[budgetv1.CreatePrincipalResponse](t, "create blocked end user")(in.client.CreatePrincipal(harness.Context(t), connect.NewRequest(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER, Id: "cust-blocked", Blocked: true}})))

	blocked := admitReq("b-blocked", "k-batch", 1_000, 1_000)
	blocked.EndUserId = "cust-blocked"
	malformed := admitReq("b-bad", "k-batch", 1_000, 1_000)
	malformed.ModelGroup = ""
	// 400,000 × 2,500 + 10,000 × 10,000 = $1.10: over the $1 budget alone.
	big := admitReq("b-big", "k-batch", 400_000, 10_000)
	res := admitBatch(t, in,
		admitReq("b-ok", "k-batch", 10_000, 4_000),
		admitReq("b-ok", "k-batch", 10_000, 4_000),
		blocked, malformed, big)

	var counter string
	for i := range 2 {
		a := admitted(t, res[i].GetResponse())
		if a.ReservedNanos != est10k4k || len(a.CounterKeys) != 1 || a.ReservationId != admitted(t, res[0].GetResponse()).ReservationId {
			t.Fatalf("results[%d]: %v", i, a)
		}
		wantReservation(t, a, "b-ok")
		counter = a.CounterKeys[0]
	}
	wantItemError(t, "blocked end user", res[2], connect.CodePermissionDenied, `end user "cust-blocked" is blocked`)
	wantItemError(t, "malformed", res[3], connect.CodeInvalidArgument, "model_group")
	d := denied(t, res[4].GetResponse(), budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED)
	if d.Budget.Scope.Id != "k-batch" || d.Budget.LimitNanos != usd {
		t.Fatalf("denial: %v", d)
	}
	e.wantState(counter, 0, est10k4k) // the retry held nothing more

	// A retry in a later batch is the same decision, and holds nothing more.
	again := admitted(t, admitBatch(t, in, admitReq("b-ok", "k-batch", 10_000, 4_000))[0].GetResponse())
	if again.ReservationId != admitted(t, res[0].GetResponse()).ReservationId {
		t.Fatalf("retry: %v", again)
	}
	e.wantState(counter, 0, est10k4k)

	var tooMany []*budgetv1.AdmitRequest
	for i := range 257 {
		tooMany = append(tooMany, admitReq(fmt.Sprintf("b-many-%d", i), "k-batch", 1, 1))
	}
	_, err := in.client.AdmitBatch(harness.Context(t), connect.NewRequest(&budgetv1.AdmitBatchRequest{Requests: tooMany}))
	harness.WantCode(t, "257 requests", err, connect.CodeInvalidArgument)
	_, err = in.client.AdmitBatch(harness.Context(t), connect.NewRequest(&budgetv1.AdmitBatchRequest{}))
	harness.WantCode(t, "no requests", err, connect.CodeInvalidArgument)
	e.wantState(counter, 0, est10k4k) // a refused batch admitted nothing

	e.in.StopRedis()
	free := admitReq("b-free", "k-batch-free", 10, 10)
	res = admitBatch(t, in, admitReq("b-down", "k-batch", 10_000, 4_000), free)
	wantItemError(t, "Redis down, fail_closed", res[0], connect.CodeUnavailable, "")
	if a := admitted(t, res[1].GetResponse()); len(a.CounterKeys) != 0 {
		t.Fatalf("unbudgeted beside an outage: %v", a)
	}
	e.in.StartRedis()
}

// countingAdmitter counts the AdmitBatch calls a Coalescer makes.
type countingAdmitter struct {
	budgetclient.Admitter
	batches atomic.Int64
}

func (c *countingAdmitter) AdmitBatch(ctx context.Context, req *connect.Request[budgetv1.AdmitBatchRequest]) (*connect.Response[budgetv1.AdmitBatchResponse], error) {
	c.batches.Add(1)
	return c.Admitter.AdmitBatch(ctx, req)
}

// coalesced is a budgetAPI whose Admit goes through a Coalescer.
type coalesced struct {
	budgetAPI
	c *budgetclient.Coalescer
}

func (c coalesced) Admit(ctx context.Context, req *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	resp, err := c.c.Admit(ctx, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// TestBatchedAdmitsNeverPassTheLimit: TestConcurrentAdmitsNeverPassTheLimit
// through AdmitBatch. 64 concurrent admissions of $0.065 against a $1 key
// budget, sent by the gateway's coalescing client (budgetclient) and, in
// the other subtest, as four concurrent AdmitBatch calls of 16: exactly
// floor($1 / $0.065) = 15 are admitted, 975,000,000 nanos held, the other 49
// denied naming the key budget.
func TestBatchedAdmitsNeverPassTheLimit(t *testing.T) {
	e := newEnv(t)
	in := e.newInstance(nil)
	check := func(t *testing.T, key string, results []*budgetv1.AdmitResponse) {
		t.Helper()
		var counter string
		n := 0
		for _, r := range results {
			if a := r.GetAdmitted(); a != nil {
				if a.ReservedNanos != est10k4k || a.ReservationId == "" || len(a.CounterKeys) != 1 {
					t.Fatalf("admission: %v", a)
				}
				counter = a.CounterKeys[0]
				n++
				continue
			}
			if d := denied(t, r, budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED); d.Budget.Scope.Id != key || d.Budget.ReservedNanos+est10k4k <= usd {
				t.Fatalf("denial: %v", d)
			}
		}
		if want := int(usd / est10k4k); n != want {
			t.Fatalf("admitted %d; want %d", n, want)
		}
		e.withT(t).wantState(counter, 0, 15*est10k4k)
	}
	requests := func(key string) []*budgetv1.AdmitRequest {
		var reqs []*budgetv1.AdmitRequest
		for i := range 64 {
			reqs = append(reqs, admitReq(fmt.Sprintf("%s-%d", key, i), key, 10_000, 4_000))
		}
		return reqs
	}

	t.Run("coalescer", func(t *testing.T) {
		const key = "k-coalesced"
		createKey(t, in.client, key, "", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
		counting := &countingAdmitter{Admitter: in.client}
		c := budgetclient.New(counting, budgetclient.Options{})
		out := admitAll(t, []budgetAPI{coalesced{in.client, c}}, requests(key))
		check(t, key, out)
		if n := counting.batches.Load(); n >= 64 {
			t.Fatalf("%d AdmitBatch calls for 64 concurrent admissions; want them coalesced", n)
		}
		t.Logf("64 admissions in %d AdmitBatch calls", counting.batches.Load())
	})

	t.Run("explicit_batches", func(t *testing.T) {
		const key = "k-batches"
		createKey(t, in.client, key, "", &budgetv1.BudgetSpec{LimitUsd: "1", Duration: "1d"})
		reqs := requests(key)
		// Four concurrent batches of 16; checked here, not in the
		// goroutines (t.Fatal belongs to the test's own goroutine).
		batches := make([]*connect.Response[budgetv1.AdmitBatchResponse], 4)
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for b := range 4 {
			wg.Go(func() {
				batches[b], errs[b] = in.client.AdmitBatch(harness.Context(t), connect.NewRequest(&budgetv1.AdmitBatchRequest{Requests: reqs[b*16 : (b+1)*16]}))
			})
		}
		wg.Wait()
		var out []*budgetv1.AdmitResponse
		for b := range 4 {
			if errs[b] != nil || len(batches[b].Msg.Results) != 16 {
				t.Fatalf("batch %d: %v, %v", b, batches[b], errs[b])
			}
			for i, r := range batches[b].Msg.Results {
				if r.GetError() != nil {
					t.Fatalf("item %d: %v", b*16+i, r.GetError())
				}
				out = append(out, r.GetResponse())
			}
		}
		check(t, key, out)
	})
}
