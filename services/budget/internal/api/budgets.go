package api

import (
	"context"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

// SetBudget implements BudgetServiceHandler: insert or replace.
//
//   - With budget_id: replaces that budget (NotFound if there is none); its
//     scope cannot change (InvalidArgument).
//   - Without: creates a budget, or replaces the one already on the same scope
//     and duration ("24h" and "1d" are the same duration), keeping its id.
//
// Replacing keeps the window anchor unless the duration or alignment changes,
// so raising a limit never resets the current window's spend. The owner of
// the scope must exist for keys, teams and orgs (FailedPrecondition); users,
// end users and tags are created on first reference; provider and deployment
// scopes have no owner.
func (h *Handler) SetBudget(ctx context.Context, req *connect.Request[budgetv1.SetBudgetRequest]) (*connect.Response[budgetv1.SetBudgetResponse], error) {
	in, err := parseBudgetSpec("spec", req.Msg.GetSpec(), nil)
	if err != nil {
		return nil, err
	}
	b, err := h.store.SetBudget(ctx, in)
	if err != nil {
		return nil, h.fromStore(ctx, "set budget", err)
	}
	h.log.InfoContext(ctx, "budget set", "budget_id", b.ID, "scope", b.Scope.String(), "limit_nanos", int64(b.Limit),
		"duration", b.Duration.String())
	return connect.NewResponse(&budgetv1.SetBudgetResponse{Budget: budgetProto(b)}), nil
}

// DeleteBudget implements BudgetServiceHandler.
func (h *Handler) DeleteBudget(ctx context.Context, req *connect.Request[budgetv1.DeleteBudgetRequest]) (*connect.Response[budgetv1.DeleteBudgetResponse], error) {
	id := req.Msg.GetBudgetId()
	if id == "" {
		return nil, invalid("budget_id", "is required")
	}
	if err := checkLine("budget_id", id); err != nil {
		return nil, err
	}
	if err := h.store.DeleteBudget(ctx, id); err != nil {
		return nil, h.fromStore(ctx, "delete budget", err)
	}
	h.log.InfoContext(ctx, "budget deleted", "budget_id", id)
	return connect.NewResponse(&budgetv1.DeleteBudgetResponse{}), nil
}

// budgetFilter validates ListBudgets' scope: absent or empty lists every
// budget; otherwise kind and id are required, and a per-model kind may leave
// model_group empty to list every model group.
func budgetFilter(p *eventsv1.Scope) (store.BudgetFilter, error) {
	if p == nil || (p.GetKind() == eventsv1.ScopeKind_SCOPE_KIND_UNSPECIFIED && p.GetId() == "" && p.GetModelGroup() == "") {
		return store.BudgetFilter{}, nil
	}
	probe := &eventsv1.Scope{Kind: p.GetKind(), Id: p.GetId(), ModelGroup: p.GetModelGroup()}
	perModelWildcard := false
	if probe.ModelGroup == "" && (probe.Kind == eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL || probe.Kind == eventsv1.ScopeKind_SCOPE_KIND_END_USER_MODEL) {
		probe.ModelGroup, perModelWildcard = "m", true // validate kind and id only
	}
	s, err := protoconv.Scope(probe)
	if err != nil {
		return store.BudgetFilter{}, invalid("scope", "%v", err)
	}
	f := store.BudgetFilter{Kind: s.Kind, ID: s.ID, ModelGroup: s.ModelGroup}
	if perModelWildcard {
		f.ModelGroup = ""
	}
	return f, nil
}

// ListBudgets implements BudgetServiceHandler: budgets in creation order
// (budget ids are UUIDv7).
func (h *Handler) ListBudgets(ctx context.Context, req *connect.Request[budgetv1.ListBudgetsRequest]) (*connect.Response[budgetv1.ListBudgetsResponse], error) {
	f, err := budgetFilter(req.Msg.GetScope())
	if err != nil {
		return nil, err
	}
	limit, err := pageSize(req.Msg.GetPageSize())
	if err != nil {
		return nil, err
	}
	filter := []string{"budgets", scopeKindName(f.Kind), f.ID, f.ModelGroup}
	after, err := decodePageToken(req.Msg.GetPageToken(), 1, filter...)
	if err != nil {
		return nil, err
	}
	bs, err := h.store.ListBudgets(ctx, f, store.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, h.fromStore(ctx, "list budgets", err)
	}
	bs, next := page(bs, limit, func(b store.Budget) []string { return []string{b.ID} }, filter...)
	out := &budgetv1.ListBudgetsResponse{NextPageToken: next}
	for _, b := range bs {
		out.Budgets = append(out.Budgets, budgetProto(b))
	}
	return connect.NewResponse(out), nil
}

func scopeKindName(k scope.Kind) string {
	if k == 0 {
		return ""
	}
	return k.String()
}
