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
