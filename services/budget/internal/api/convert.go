package api

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

var principalKindToScope = map[budgetv1.PrincipalKind]scope.Kind{
	budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM:     scope.KindTeam,
	budgetv1.PrincipalKind_PRINCIPAL_KIND_USER:     scope.KindUser,
	budgetv1.PrincipalKind_PRINCIPAL_KIND_ORG:      scope.KindOrg,
	budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER: scope.KindEndUser,
	budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG:      scope.KindTag,
}

var scopeToPrincipalKind = func() map[scope.Kind]budgetv1.PrincipalKind {
	m := make(map[scope.Kind]budgetv1.PrincipalKind, len(principalKindToScope))
	for p, s := range principalKindToScope {
		m[s] = p
	}
	return m
}()

// principalKind converts a required wire kind.
func principalKind(field string, k budgetv1.PrincipalKind) (scope.Kind, error) {
	if sk, ok := principalKindToScope[k]; ok {
		return sk, nil
	}
	if k == budgetv1.PrincipalKind_PRINCIPAL_KIND_UNSPECIFIED {
		return 0, invalid(field, "is required (team, user, org, end user or tag)")
	}
	return 0, invalid(field, "%v is not a principal kind", k)
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func keyProto(k store.Key) *budgetv1.Key {
	return &budgetv1.Key{
		KeyId:        k.ID,
		KeyAliasHint: k.AliasHint,
		KeyAlias:     k.Alias,
		TeamId:       k.TeamID,
		UserId:       k.UserID,
		OrgId:        k.OrgID,
		Models:       k.Models,
		Tags:         k.Tags,
		Metadata:     k.Metadata,
		Blocked:      k.Blocked,
		ExpiresAt:    timestamp(k.ExpiresAt),
		CreatedAt:    timestamp(k.CreatedAt),
	}
}

func principalProto(p store.Principal) *budgetv1.Principal {
	return &budgetv1.Principal{
		Kind:      scopeToPrincipalKind[p.Kind],
		Id:        p.ID,
		Alias:     p.Alias,
		OrgId:     p.OrgID,
		Metadata:  p.Metadata,
		Blocked:   p.Blocked,
		CreatedAt: timestamp(p.CreatedAt),
	}
}

func budgetSpecProto(b store.Budget) *budgetv1.BudgetSpec {
	d := ""
	if !b.Duration.IsLifetime() {
		d = b.Duration.String()
	}
	return &budgetv1.BudgetSpec{
		BudgetId:        b.ID,
		Scope:           protoconv.ScopeProto(b.Scope),
		LimitUsd:        b.Limit.String(),
		Duration:        d,
		CalendarAligned: b.Calendar,
		SoftThresholds:  b.SoftThresholds,
	}
}

func budgetProto(b store.Budget) *budgetv1.Budget {
	return &budgetv1.Budget{
		Spec:       budgetSpecProto(b),
		LimitNanos: int64(b.Limit),
		Anchor:     timestamppb.New(b.Anchor),
		CreatedAt:  timestamp(b.CreatedAt),
		UpdatedAt:  timestamp(b.UpdatedAt),
	}
}

// statuses reports budgets in the window containing now, with spend from the
// SpendReader when one is wired (see SpendReader for what nil means).
func (h *Handler) statuses(ctx context.Context, budgets []store.Budget) ([]*budgetv1.BudgetStatus, error) {
	now := h.now()
	spends := make([]Spend, len(budgets))
	if h.spend != nil && len(budgets) > 0 {
		got, err := h.spend.Spend(ctx, budgets, now)
		if err != nil {
			h.log.WarnContext(ctx, "reading spend failed", "err", err)
			return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("reading spend: %w", err))
		}
		if len(got) != len(budgets) {
			return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("spend reader returned %d results for %d budgets", len(got), len(budgets)))
		}
		spends = got
	}
	out := make([]*budgetv1.BudgetStatus, len(budgets))
	for i, b := range budgets {
		st := &budgetv1.BudgetStatus{
			BudgetId:       b.ID,
			Scope:          protoconv.ScopeProto(b.Scope),
			LimitNanos:     int64(b.Limit),
			SpentNanos:     int64(spends[i].Spent),
			ReservedNanos:  int64(spends[i].Reserved),
			RemainingNanos: int64(remaining(b.Limit, spends[i])),
		}
		// A lifetime budget has no window to report: it never resets.
		if !b.Duration.IsLifetime() {
			spec := b.Window()
			start, end := spec.Bounds(spec.Index(now))
			st.WindowStart, st.ResetsAt = timestamppb.New(start), timestamppb.New(end)
		}
		out[i] = st
	}
	return out, nil
}

// remaining is limit - spent - reserved, never below zero nor above the limit
// (a negative spend, from corrections, does not lend headroom), without overflow.
func remaining(limit money.Nanos, s Spend) money.Nanos {
	used, err := money.Sum(s.Spent, s.Reserved)
	switch {
	case err != nil || used >= limit:
		return 0
	case used <= 0:
		return limit
	}
	return limit - used
}
