package admin

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

// listBudgets returns every budget on sc, in creation order (for a per-model
// kind with no model group: every model group's).
func (h *Handler) listBudgets(ctx context.Context, sc *eventsv1.Scope) ([]*budgetv1.Budget, *openai.Error) {
	var out []*budgetv1.Budget
	token := ""
	for {
		cctx, cancel := h.rpc(ctx)
		resp, err := h.Budget.ListBudgets(cctx, connect.NewRequest(&budgetv1.ListBudgetsRequest{Scope: sc, PageSize: 1000, PageToken: token}))
		cancel()
		if err != nil {
			return nil, fromConnect("budget", "list budgets", err)
		}
		out = append(out, resp.Msg.GetBudgets()...)
		if token = resp.Msg.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// sameDuration compares durations as windows ("24h" is "1d"); "" is lifetime.
func sameDuration(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	da, errA := window.Parse(a)
	db, errB := window.Parse(b)
	return errA == nil && errB == nil && da == db
}

// pickBudget is the budget of existing that a new (limit, duration) for the
// scope replaces: the one with the same duration, else the first. LiteLLM
// has one max_budget per principal, so changing budget_duration moves that
// budget to the new duration instead of adding a second one beside it.
func pickBudget(existing []*budgetv1.Budget, duration string) *budgetv1.Budget {
	for _, b := range existing {
		if sameDuration(b.GetSpec().GetDuration(), duration) {
			return b
		}
	}
	if len(existing) > 0 {
		return existing[0]
	}
	return nil
}

// setBudget makes (limit, duration) the budget of sc: it replaces the budget
// pickBudget chooses, keeping its id, alignment and soft thresholds, or
// creates one. SetBudget keeps the window anchor when only the limit changes,
// so raising a limit never resets the window's spend.
func (h *Handler) setBudget(ctx context.Context, sc *eventsv1.Scope, limit money.Nanos, duration string) (*budgetv1.Budget, *openai.Error) {
	existing, oerr := h.listBudgets(ctx, sc)
	if oerr != nil {
		return nil, oerr
	}
	spec := &budgetv1.BudgetSpec{Scope: sc}
	if old := pickBudget(existing, duration); old != nil {
		spec = proto.Clone(old.GetSpec()).(*budgetv1.BudgetSpec)
	}
	spec.LimitUsd, spec.Duration = limit.String(), duration
	cctx, cancel := h.rpc(ctx)
	defer cancel()
	resp, err := h.Budget.SetBudget(cctx, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec}))
	if err != nil {
		return nil, fromConnect("budget", "set budget", err)
	}
	return resp.Msg.GetBudget(), nil
}

// budgetUpdate is what an update body says about budgets.
type budgetUpdate struct {
	maxBudget   *money.Nanos
	duration    string
	durationSet bool                   // budget_duration given (a new limit otherwise keeps the duration)
	perModel    map[string]modelBudget // nil: no change
}

// readBudgetUpdate reads max_budget, budget_duration and, withModels,
// model_max_budget.
func readBudgetUpdate(f fields, withModels bool) (bu budgetUpdate, oerr *openai.Error) {
	if bu.maxBudget, oerr = f.limit("max_budget"); oerr != nil {
		return bu, oerr
	}
	if bu.duration, oerr = f.duration("budget_duration"); oerr != nil {
		return bu, oerr
	}
	bu.durationSet = f.set("budget_duration")
	if withModels {
		bu.perModel, oerr = f.modelMaxBudget("model_max_budget")
	}
	return bu, oerr
}

// applyBudgetUpdate applies bu to the budgets of id: its own budget on kind
// (a new limit keeps the current duration unless budget_duration is given; a
// duration alone moves the existing budget and sets nothing when there is
// none), then its per-model budgets on modelKind.
func (h *Handler) applyBudgetUpdate(ctx context.Context, kind, modelKind eventsv1.ScopeKind, id string, bu budgetUpdate) *openai.Error {
	if bu.maxBudget != nil || bu.duration != "" {
		sc := scopeOf(kind, id, "")
		own, oerr := h.listBudgets(ctx, sc)
		if oerr != nil {
			return oerr
		}
		dur := bu.duration
		switch {
		case bu.maxBudget != nil:
			if !bu.durationSet && len(own) > 0 {
				dur = own[0].GetSpec().GetDuration()
			}
			_, oerr = h.setBudget(ctx, sc, *bu.maxBudget, dur)
		case len(own) > 0:
			_, oerr = h.setBudget(ctx, sc, money.Nanos(own[0].GetLimitNanos()), dur)
		default:
			h.Log.Warn("budget_duration without max_budget where there is no budget sets no budget; ignored", "scope", scopeName(sc), "id", id)
		}
		if oerr != nil {
			return oerr
		}
	}
	return h.replaceModelBudgets(ctx, modelKind, id, bu.perModel)
}

// replaceModelBudgets makes perModel (nil: no change) the per-model budgets
// of id: each group's is set, and the groups it no longer names are deleted,
// as LiteLLM's model_max_budget replaces the whole map.
func (h *Handler) replaceModelBudgets(ctx context.Context, kind eventsv1.ScopeKind, id string, perModel map[string]modelBudget) *openai.Error {
	if perModel == nil {
		return nil
	}
	existing, oerr := h.listBudgets(ctx, scopeOf(kind, id, ""))
	if oerr != nil {
		return oerr
	}
	for _, g := range sortedGroups(perModel) {
		if _, oerr := h.setBudget(ctx, scopeOf(kind, id, g), perModel[g].Limit, perModel[g].Duration); oerr != nil {
			return oerr
		}
	}
	for _, b := range existing {
		if _, keep := perModel[b.GetSpec().GetScope().GetModelGroup()]; !keep {
			if oerr := h.deleteBudget(ctx, b.GetSpec().GetBudgetId()); oerr != nil {
				return oerr
			}
		}
	}
	return nil
}

func (h *Handler) deleteBudget(ctx context.Context, id string) *openai.Error {
	cctx, cancel := h.rpc(ctx)
	defer cancel()
	if _, err := h.Budget.DeleteBudget(cctx, connect.NewRequest(&budgetv1.DeleteBudgetRequest{BudgetId: id})); err != nil {
		return fromConnect("budget", "delete budget", err)
	}
	return nil
}

// currentWindow is the window of b containing now; lifetime budgets (no
// duration) have none: ok is false.
func currentWindow(b *budgetv1.Budget, now time.Time) (start, end time.Time, ok bool, err error) {
	sp := b.GetSpec()
	if sp.GetDuration() == "" || (b.GetAnchor() == nil && !sp.GetCalendarAligned()) {
		// Lifetime; or a budget not read back from the service (no anchor).
		return time.Time{}, time.Time{}, false, nil
	}
	d, err := window.Parse(sp.GetDuration())
	if err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("budget %s: %w", b.GetSpec().GetBudgetId(), err)
	}
	spec := window.Spec{Duration: d, Anchor: b.GetAnchor().AsTime(), Calendar: sp.GetCalendarAligned()}
	if err := spec.Validate(); err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("budget %s: %w", b.GetSpec().GetBudgetId(), err)
	}
	start, end = spec.Bounds(spec.Index(now))
	return start, end, true, nil
}

// spendRange is the ledger range LiteLLM's "spend" of a principal covers:
// the current window of its budget b (LiteLLM resets spend when the budget
// resets), or all time when there is no budget or it is a lifetime one.
// resetAt is when the window ends (nil: never).
func (h *Handler) spendRange(b *budgetv1.Budget) (rng *ledgerv1.TimeRange, resetAt *string) {
	if b == nil {
		return nil, nil
	}
	start, end, ok, err := currentWindow(b, h.Now())
	if err != nil {
		h.Log.Warn("budget window not understood; reporting all-time spend", "err", err)
		return nil, nil
	}
	if !ok {
		return nil, nil
	}
	s := timeText(end)
	return &ledgerv1.TimeRange{Start: timestamppb.New(start)}, &s
}

// ledgerSpend is the ledger's spend of sc over rng (nil: all time).
func (h *Handler) ledgerSpend(ctx context.Context, sc *eventsv1.Scope, rng *ledgerv1.TimeRange) (money.Nanos, *openai.Error) {
	cctx, cancel := h.rpc(ctx)
	defer cancel()
	resp, err := h.Ledger.GetSpend(cctx, connect.NewRequest(&ledgerv1.GetSpendRequest{Scope: sc, Range: rng}))
	if err != nil {
		return 0, fromConnect("ledger", "get spend", err)
	}
	return money.Nanos(resp.Msg.GetSpentNanos()), nil
}

func byID(bs []*budgetv1.Budget) map[string]*budgetv1.Budget {
	m := make(map[string]*budgetv1.Budget, len(bs))
	for _, b := range bs {
		m[b.GetSpec().GetBudgetId()] = b
	}
	return m
}

const (
	kindDeployment = eventsv1.ScopeKind_SCOPE_KIND_DEPLOYMENT
	kindProvider   = eventsv1.ScopeKind_SCOPE_KIND_PROVIDER
	kindTag        = eventsv1.ScopeKind_SCOPE_KIND_TAG
)

func scopeOf(kind eventsv1.ScopeKind, id, group string) *eventsv1.Scope {
	return &eventsv1.Scope{Kind: kind, Id: id, ModelGroup: group}
}

// scopeName is the scope's kind as operators write it ("provider").
func scopeName(sc *eventsv1.Scope) string {
	if s, err := protoconv.Scope(sc); err == nil {
		return s.Kind.String()
	}
	return sc.GetKind().String()
}

// limitOf is a stored budget's limit.
func limitOf(b *budgetv1.Budget) *money.Nanos {
	if b == nil {
		return nil
	}
	n := money.Nanos(b.GetLimitNanos())
	return &n
}
