package budget

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	"github.com/spendledger/spendledger/ledger/money"
)

// budgetsHandler keeps budgets by end user id.
type budgetsHandler struct {
	budgetv1connect.UnimplementedBudgetServiceHandler
	mu    sync.Mutex
	specs map[string]*budgetv1.BudgetSpec
	lists int
	fail  bool
}

func (h *budgetsHandler) ListBudgets(_ context.Context, r *connect.Request[budgetv1.ListBudgetsRequest]) (*connect.Response[budgetv1.ListBudgetsResponse], error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lists++
	if h.fail {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("down"))
	}
	out := &budgetv1.ListBudgetsResponse{}
	if s, ok := h.specs[r.Msg.GetScope().GetId()]; ok {
		out.Budgets = append(out.Budgets, &budgetv1.Budget{Spec: s})
	}
	return connect.NewResponse(out), nil
}

func (h *budgetsHandler) SetBudget(_ context.Context, r *connect.Request[budgetv1.SetBudgetRequest]) (*connect.Response[budgetv1.SetBudgetResponse], error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.specs[r.Msg.GetSpec().GetScope().GetId()] = r.Msg.GetSpec()
	return connect.NewResponse(&budgetv1.SetBudgetResponse{}), nil
}

func TestEndUserDefaultsSetOnlyMissingBudgetsOnce(t *testing.T) {
	h := &budgetsHandler{specs: map[string]*budgetv1.BudgetSpec{"vip": {LimitUsd: "500"}}}
	path, hd := budgetv1connect.NewBudgetServiceHandler(h)
	mux := http.NewServeMux()
	mux.Handle(path, hd)
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	d := NewEndUserDefaults(s.Client(), s.URL, money.Nanos(2_500_000_000), "")
	ctx := context.Background()

	if err := d.Ensure(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := h.specs["alice"]; got == nil || got.GetLimitUsd() != "2.5" || got.GetDuration() != "" ||
		got.GetScope().GetKind().String() != "SCOPE_KIND_END_USER" {
		t.Fatalf("alice's default budget: %v", got)
	}
	if err := d.Ensure(ctx, "vip"); err != nil {
		t.Fatal(err)
	}
	if got := h.specs["vip"].GetLimitUsd(); got != "500" {
		t.Fatalf("an end user's own budget was replaced: %s", got)
	}
	lists := h.lists
	if err := d.Ensure(ctx, "alice"); err != nil || h.lists != lists {
		t.Fatalf("a known end user was checked again (%d lists, %v)", h.lists-lists, err)
	}

	h.fail = true
	if err := d.Ensure(ctx, "bob"); kind(err) != KindUnavailable {
		t.Fatalf("budget service down: %v; want KindUnavailable (the request is not admitted)", err)
	}
	if _, ok := h.specs["bob"]; ok {
		t.Fatal("bob got a budget although the check failed")
	}
}
