package api

import (
	"context"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// principalFields validates a principal message's writable fields for a
// principal of kind; only limits validation as in keyFields.
func principalFields(kind scope.Kind, p *budgetv1.Principal, only map[string]bool) (store.Principal, error) {
	has := func(f string) bool { return only == nil || only[f] }
	out := store.Principal{Kind: kind, ID: p.GetId(), Alias: p.GetAlias(), OrgID: p.GetOrgId(),
		Metadata: p.GetMetadata(), Blocked: p.GetBlocked()}
	if has("alias") {
		if err := checkLine("principal.alias", out.Alias); err != nil {
			return store.Principal{}, err
		}
	}
	if has("org_id") && out.OrgID != "" {
		if kind != scope.KindTeam && kind != scope.KindUser {
			return store.Principal{}, invalid("principal.org_id", "only teams and users belong to an org")
		}
		if err := checkID("principal.org_id", scope.KindOrg, out.OrgID); err != nil {
			return store.Principal{}, err
		}
	}
	if has("metadata") {
		if err := checkMetadata("principal.metadata", out.Metadata); err != nil {
			return store.Principal{}, err
		}
	}
	return out, nil
}

// principalOwners are the (kind, id) pairs of a principal's budgets: its own
// scope, and for an end user its per-model budgets too.
func principalOwners(kind scope.Kind, id string) []scope.Scope {
	owners := []scope.Scope{{Kind: kind, ID: id}}
	if kind == scope.KindEndUser {
		owners = append(owners, scope.Scope{Kind: scope.KindEndUserModel, ID: id})
	}
	return owners
}

func principalBudgetKinds(kind scope.Kind) []scope.Kind {
	if kind == scope.KindEndUser {
		return []scope.Kind{scope.KindEndUser, scope.KindEndUserModel}
	}
	return []scope.Kind{kind}
}

// CreatePrincipal implements BudgetServiceHandler. Teams and orgs must be
// created before keys or budgets reference them; users, end users and tags
// are also created implicitly on first reference, so creating one that a key
// or budget already named is AlreadyExists (use UpdatePrincipal). A team or
// user's org must exist. Budgets given here are on the principal (scope
// absent, or its kind with an empty or equal id; an end user's may be
// END_USER_MODEL) and are created in the same transaction.
func (h *Handler) CreatePrincipal(ctx context.Context, req *connect.Request[budgetv1.CreatePrincipalRequest]) (*connect.Response[budgetv1.CreatePrincipalResponse], error) {
	in := req.Msg.GetPrincipal()
	if in == nil {
		return nil, invalid("principal", "is required")
	}
	kind, err := principalKind("principal.kind", in.GetKind())
	if err != nil {
		return nil, err
	}
	if err := checkID("principal.id", kind, in.GetId()); err != nil {
		return nil, err
	}
	p, err := principalFields(kind, in, nil)
	if err != nil {
		return nil, err
	}
	budgets, err := parseOwnedBudgets(req.Msg.GetBudgets(), ownedScopeFixer(p.ID, principalBudgetKinds(kind)...))
	if err != nil {
		return nil, err
	}
	created, _, err := h.store.CreatePrincipal(ctx, p, budgets)
	if err != nil {
		return nil, h.fromStore(ctx, "create principal", err)
	}
	h.log.InfoContext(ctx, "principal created", "kind", kind.String(), "id", p.ID, "budgets", len(budgets))
	return connect.NewResponse(&budgetv1.CreatePrincipalResponse{Principal: principalProto(created)}), nil
}

// GetPrincipal implements BudgetServiceHandler, with every budget the
// principal owns. Like GetKey it reads Postgres, not the cache.
func (h *Handler) GetPrincipal(ctx context.Context, req *connect.Request[budgetv1.GetPrincipalRequest]) (*connect.Response[budgetv1.GetPrincipalResponse], error) {
	kind, err := principalKind("kind", req.Msg.GetKind())
	if err != nil {
		return nil, err
	}
	id := req.Msg.GetId()
	if err := checkID("id", kind, id); err != nil {
		return nil, err
	}
	p, err := h.store.GetPrincipal(ctx, kind, id)
	if err != nil {
		return nil, h.fromStore(ctx, "get principal", err)
	}
	budgets, err := h.store.BudgetsOwnedBy(ctx, principalOwners(kind, id))
	if err != nil {
		return nil, h.fromStore(ctx, "get principal budgets", err)
	}
	st, err := h.statuses(ctx, budgets)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&budgetv1.GetPrincipalResponse{Principal: principalProto(p), Budgets: st}), nil
}

var (
	updatablePrincipalFields = []string{"alias", "org_id", "metadata", "blocked"}
	readOnlyPrincipalFields  = []string{"kind", "id", "created_at"}
)

// UpdatePrincipal implements BudgetServiceHandler with update_fields as in
// UpdateKey. Blocking a team, user or org refuses its keys at Authenticate on
// every instance at once.
func (h *Handler) UpdatePrincipal(ctx context.Context, req *connect.Request[budgetv1.UpdatePrincipalRequest]) (*connect.Response[budgetv1.UpdatePrincipalResponse], error) {
	in := req.Msg.GetPrincipal()
	if in == nil {
		return nil, invalid("principal", "is required")
	}
	kind, err := principalKind("principal.kind", in.GetKind())
	if err != nil {
		return nil, err
	}
	if err := checkID("principal.id", kind, in.GetId()); err != nil {
		return nil, err
	}
	mask, err := checkMask(req.Msg.GetUpdateFields(), updatablePrincipalFields, readOnlyPrincipalFields)
	if err != nil {
		return nil, err
	}
	v, err := principalFields(kind, in, mask)
	if err != nil {
		return nil, err
	}
	updated, err := h.store.UpdatePrincipal(ctx, kind, in.GetId(), func(p *store.Principal) error {
		for f := range mask {
			switch f {
			case "alias":
				p.Alias = v.Alias
			case "org_id":
				p.OrgID = v.OrgID
			case "metadata":
				p.Metadata = v.Metadata
			case "blocked":
				p.Blocked = v.Blocked
			}
		}
		return nil
	})
	if err != nil {
		return nil, h.fromStore(ctx, "update principal", err)
	}
	h.log.InfoContext(ctx, "principal updated", "kind", kind.String(), "id", updated.ID, "fields", req.Msg.GetUpdateFields())
	return connect.NewResponse(&budgetv1.UpdatePrincipalResponse{Principal: principalProto(updated)}), nil
}

// DeletePrincipal implements BudgetServiceHandler. The principal's budgets
// are deleted with it. While keys (or, for an org, teams and users) still
// reference it the answer is FailedPrecondition: deleting a team must not
// silently free its keys from the team budget.
func (h *Handler) DeletePrincipal(ctx context.Context, req *connect.Request[budgetv1.DeletePrincipalRequest]) (*connect.Response[budgetv1.DeletePrincipalResponse], error) {
	kind, err := principalKind("kind", req.Msg.GetKind())
	if err != nil {
		return nil, err
	}
	id := req.Msg.GetId()
	if err := checkID("id", kind, id); err != nil {
		return nil, err
	}
	if err := h.store.DeletePrincipal(ctx, kind, id); err != nil {
		return nil, h.fromStore(ctx, "delete principal", err)
	}
	h.log.InfoContext(ctx, "principal deleted", "kind", kind.String(), "id", id)
	return connect.NewResponse(&budgetv1.DeletePrincipalResponse{}), nil
}

// ListPrincipals implements BudgetServiceHandler: principals of one kind, or
// of every kind when kind is unspecified, ordered by kind and id.
func (h *Handler) ListPrincipals(ctx context.Context, req *connect.Request[budgetv1.ListPrincipalsRequest]) (*connect.Response[budgetv1.ListPrincipalsResponse], error) {
	var kind scope.Kind
	if k := req.Msg.GetKind(); k != budgetv1.PrincipalKind_PRINCIPAL_KIND_UNSPECIFIED {
		var err error
		if kind, err = principalKind("kind", k); err != nil {
			return nil, err
		}
	}
	limit, err := pageSize(req.Msg.GetPageSize())
	if err != nil {
		return nil, err
	}
	filter := []string{"principals", req.Msg.GetKind().String()}
	after, err := decodePageToken(req.Msg.GetPageToken(), 2, filter...)
	if err != nil {
		return nil, err
	}
	ps, err := h.store.ListPrincipals(ctx, kind, store.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, h.fromStore(ctx, "list principals", err)
	}
	ps, next := page(ps, limit, func(p store.Principal) []string { return []string{p.Kind.String(), p.ID} }, filter...)
	out := &budgetv1.ListPrincipalsResponse{NextPageToken: next}
	for _, p := range ps {
		out.Principals = append(out.Principals, principalProto(p))
	}
	return connect.NewResponse(out), nil
}
