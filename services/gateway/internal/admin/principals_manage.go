package admin

import (
	"context"
	"maps"
	"net/http"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// principalAPI is what differs between the principal kinds in LiteLLM's
// update, delete and block endpoints; one implementation serves all four.
type principalAPI struct {
	kind       kindInfo
	idField    string   // "team_id"
	idsField   string   // "team_ids": delete (and customer block) bodies
	aliasField string   // "team_alias"
	withOrg    bool     // organization_id may change
	metaFields []string // fields LiteLLM has that live in our metadata
	deleted    string   // the delete answer's list
	// wrap answers an update as LiteLLM does: {"team_id", "data"} for teams
	// and users, the row itself for customers and organizations.
	wrap   bool
	render func(h *Handler, ctx context.Context, v *principalView) (any, *openai.Error)
}

var (
	teamAPI = principalAPI{kind: teamKind, idField: "team_id", idsField: "team_ids", aliasField: "team_alias", withOrg: true,
		deleted: "deleted_teams", wrap: true,
		render: func(h *Handler, ctx context.Context, v *principalView) (any, *openai.Error) {
			return h.renderTeam(ctx, v, true)
		}}
	userAPI = principalAPI{kind: userKind, idField: "user_id", idsField: "user_ids", aliasField: "user_alias", withOrg: true,
		metaFields: []string{metaUserEmail, metaUserRole}, deleted: "deleted_users", wrap: true,
		render: func(h *Handler, ctx context.Context, v *principalView) (any, *openai.Error) {
			return h.renderUser(ctx, v, true)
		}}
	customerAPI = principalAPI{kind: customerKind, idField: "user_id", idsField: "user_ids", aliasField: "alias",
		deleted: "deleted_customers",
		render: func(h *Handler, ctx context.Context, v *principalView) (any, *openai.Error) {
			return h.renderCustomer(ctx, v, true)
		}}
	orgAPI = principalAPI{kind: orgKind, idField: "organization_id", idsField: "organization_ids", aliasField: "organization_alias",
		deleted: "deleted_organizations",
		render: func(h *Handler, ctx context.Context, v *principalView) (any, *openai.Error) {
			return h.renderOrg(ctx, v, true)
		}}
)

// update is POST /<kind>/update: it changes only the fields the body names
// (null is "not given"), then answers with the principal as /<kind>/info
// shows it.
func (a principalAPI) update(h *Handler) endpoint {
	return func(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
		f, oerr := h.readFields(r)
		if oerr != nil {
			return nil, oerr
		}
		known := append([]string{a.idField, a.aliasField, "metadata", "blocked", "max_budget", "budget_duration"}, a.metaFields...)
		refused := principalRefused
		if a.withOrg {
			known = append(known, "organization_id")
		}
		if a.kind.perModel != 0 {
			known = append(known, "model_max_budget")
			refused = refusedLimits
		}
		if oerr := f.check(h.Log, r.URL.Path, known, refused); oerr != nil {
			return nil, oerr
		}
		id, oerr := f.str(a.idField)
		if oerr != nil {
			return nil, oerr
		}
		if id == "" {
			return nil, badRequest(a.idField, a.idField+" is required")
		}
		v, oerr := h.loadPrincipal(ctx, a.kind, id)
		if oerr != nil {
			return nil, oerr
		}
		p, mask, oerr := a.changes(f, v.p)
		if oerr != nil {
			return nil, oerr
		}
		bu, oerr := readBudgetUpdate(f, a.kind.perModel != 0)
		if oerr != nil {
			return nil, oerr
		}

		if len(mask) > 0 {
			cctx, cancel := h.rpc(ctx)
			_, err := h.Budget.UpdatePrincipal(cctx, connect.NewRequest(&budgetv1.UpdatePrincipalRequest{Principal: p, UpdateFields: mask}))
			cancel()
			if err != nil {
				return nil, fromConnect("budget", "update "+a.kind.name, err)
			}
		}
		if oerr := h.applyBudgetUpdate(ctx, a.kind.scope, a.kind.perModel, id, bu); oerr != nil {
			return nil, oerr
		}
		h.Log.Info("principal updated", "kind", a.kind.name, "id", id, "fields", mask, "max_budget", bu.maxBudget != nil)
		if v, oerr = h.loadPrincipal(ctx, a.kind, id); oerr != nil {
			return nil, oerr
		}
		out, oerr := a.render(h, ctx, v)
		if oerr != nil || !a.wrap {
			return out, oerr
		}
		return map[string]any{a.idField: id, "data": out}, nil
	}
}

// changes reads the principal's own fields from f into a Principal and the
// update mask that names them. old supplies the metadata entries an update
// of a metadata-backed field (user_email) must keep.
func (a principalAPI) changes(f fields, old *budgetv1.Principal) (*budgetv1.Principal, []string, *openai.Error) {
	p := &budgetv1.Principal{Kind: a.kind.principal, Id: old.GetId()}
	var mask []string
	if f.set(a.aliasField) {
		v, oerr := f.str(a.aliasField)
		if oerr != nil {
			return nil, nil, oerr
		}
		p.Alias, mask = v, append(mask, "alias")
	}
	if a.withOrg && f.set("organization_id") {
		v, oerr := f.str("organization_id")
		if oerr != nil {
			return nil, nil, oerr
		}
		p.OrgId, mask = v, append(mask, "org_id")
	}
	b, oerr := f.boolean("blocked")
	if oerr != nil {
		return nil, nil, oerr
	}
	if b != nil {
		p.Blocked, mask = *b, append(mask, "blocked")
	}
	meta, _, oerr := f.metadata("metadata")
	if oerr != nil {
		return nil, nil, oerr
	}
	metaChanged := meta != nil
	if meta == nil {
		meta = maps.Clone(old.GetMetadata())
	}
	for _, m := range a.metaFields {
		if !f.set(m) {
			if v, ok := old.GetMetadata()[m]; ok && metaChanged {
				meta[m] = v // a new metadata map keeps user_email
			}
			continue
		}
		v, oerr := f.str(m)
		if oerr != nil {
			return nil, nil, oerr
		}
		if meta == nil {
			meta = map[string]string{}
		}
		if v == "" {
			delete(meta, m)
		} else {
			meta[m] = v
		}
		metaChanged = true
	}
	if metaChanged {
		p.Metadata, mask = meta, append(mask, "metadata")
	}
	return p, mask, nil
}

// ids reads the list of principal ids of a delete or block body; every one
// must exist before any is changed, so a typo changes nothing.
func (a principalAPI) ids(ctx context.Context, h *Handler, r *http.Request, field string) ([]string, *openai.Error) {
	f, oerr := h.readFields(r)
	if oerr != nil {
		return nil, oerr
	}
	if oerr := f.check(h.Log, r.URL.Path, []string{field}, nil); oerr != nil {
		return nil, oerr
	}
	var ids []string
	if field == a.idField {
		id, oerr := f.str(field)
		if oerr != nil {
			return nil, oerr
		}
		if id != "" {
			ids = []string{id}
		}
	} else if ids, oerr = f.strs(field); oerr != nil {
		return nil, oerr
	}
	if len(ids) == 0 {
		return nil, badRequest(field, field+" is required")
	}
	for _, id := range ids {
		cctx, cancel := h.rpc(ctx)
		_, err := h.Budget.GetPrincipal(cctx, connect.NewRequest(&budgetv1.GetPrincipalRequest{Kind: a.kind.principal, Id: id}))
		cancel()
		if err != nil {
			return nil, fromConnect("budget", "get "+a.kind.name, err)
		}
	}
	return ids, nil
}

// delete is POST /<kind>/delete {"<kind>_ids": [...]}. The budget service
// refuses to delete a principal that keys or other principals still
// reference (400 failed_precondition): a team's keys must not silently lose
// the team budget that capped them.
func (a principalAPI) delete(h *Handler) endpoint {
	return func(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
		ids, oerr := a.ids(ctx, h, r, a.idsField)
		if oerr != nil {
			return nil, oerr
		}
		for _, id := range ids {
			cctx, cancel := h.rpc(ctx)
			_, err := h.Budget.DeletePrincipal(cctx, connect.NewRequest(&budgetv1.DeletePrincipalRequest{Kind: a.kind.principal, Id: id}))
			cancel()
			if err != nil {
				return nil, fromConnect("budget", "delete "+a.kind.name, err)
			}
			h.Log.Info("principal deleted", "kind", a.kind.name, "id", id)
		}
		return map[string]any{a.deleted: ids}, nil
	}
}

// block is POST /<kind>/block and /<kind>/unblock: field names the id (teams,
// {"team_id"}) or the ids (customers, {"user_ids": [...]}). A blocked
// principal's requests are refused on every gateway at once.
func (a principalAPI) block(h *Handler, field string, blocked bool) endpoint {
	return func(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
		ids, oerr := a.ids(ctx, h, r, field)
		if oerr != nil {
			return nil, oerr
		}
		for _, id := range ids {
			cctx, cancel := h.rpc(ctx)
			_, err := h.Budget.UpdatePrincipal(cctx, connect.NewRequest(&budgetv1.UpdatePrincipalRequest{
				Principal: &budgetv1.Principal{Kind: a.kind.principal, Id: id, Blocked: blocked}, UpdateFields: []string{"blocked"}}))
			cancel()
			if err != nil {
				return nil, fromConnect("budget", "block "+a.kind.name, err)
			}
			h.Log.Info("principal block changed", "kind", a.kind.name, "id", id, "blocked", blocked)
		}
		if len(ids) == 1 && field == a.idField {
			v, oerr := h.loadPrincipal(ctx, a.kind, ids[0])
			if oerr != nil {
				return nil, oerr
			}
			return a.render(h, ctx, v)
		}
		verb := "blocked_users"
		if !blocked {
			verb = "unblocked_users"
		}
		return map[string]any{verb: ids}, nil
	}
}
