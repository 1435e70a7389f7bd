package admin

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// kindInfo ties a principal kind to its budget scope kind and its LiteLLM
// names.
type kindInfo struct {
	principal budgetv1.PrincipalKind
	scope     eventsv1.ScopeKind
	perModel  eventsv1.ScopeKind // 0 when the kind has no per-model budgets
	name      string             // "team", for messages
}

var (
	teamKind     = kindInfo{budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM, eventsv1.ScopeKind_SCOPE_KIND_TEAM, 0, "team"}
	userKind     = kindInfo{budgetv1.PrincipalKind_PRINCIPAL_KIND_USER, eventsv1.ScopeKind_SCOPE_KIND_USER, 0, "user"}
	orgKind      = kindInfo{budgetv1.PrincipalKind_PRINCIPAL_KIND_ORG, eventsv1.ScopeKind_SCOPE_KIND_ORG, 0, "organization"}
	customerKind = kindInfo{budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER, eventsv1.ScopeKind_SCOPE_KIND_END_USER,
		eventsv1.ScopeKind_SCOPE_KIND_END_USER_MODEL, "customer"}
)

// summaryJSON is the budget part every principal shows, in LiteLLM's names.
type summaryJSON struct {
	Spend          json.Number  `json:"spend"`
	MaxBudget      *json.Number `json:"max_budget"`
	BudgetDuration *string      `json:"budget_duration"`
	BudgetResetAt  *string      `json:"budget_reset_at"`
	Budgets        []budgetJSON `json:"budgets"`
}

// budgetTableJSON is LiteLLM's litellm_budget_table, for the shapes that
// nest the budget there (customers, organizations).
type budgetTableJSON struct {
	BudgetID       *string      `json:"budget_id"`
	MaxBudget      *json.Number `json:"max_budget"`
	BudgetDuration *string      `json:"budget_duration"`
	BudgetResetAt  *string      `json:"budget_reset_at"`
	SoftBudget     *json.Number `json:"soft_budget"`
	TPMLimit       *int         `json:"tpm_limit"`
	RPMLimit       *int         `json:"rpm_limit"`
}

// principalView is a principal with its budgets.
type principalView struct {
	kind     kindInfo
	p        *budgetv1.Principal
	statuses []*budgetv1.BudgetStatus
	own      []*budgetv1.Budget
	perModel []*budgetv1.Budget
}

func (h *Handler) loadPrincipal(ctx context.Context, k kindInfo, id string) (*principalView, *openai.Error) {
	cctx, cancel := h.rpc(ctx)
	resp, err := h.Budget.GetPrincipal(cctx, connect.NewRequest(&budgetv1.GetPrincipalRequest{Kind: k.principal, Id: id}))
	cancel()
	if err != nil {
		return nil, fromConnect("budget", "get "+k.name, err)
	}
	v := &principalView{kind: k, p: resp.Msg.GetPrincipal(), statuses: resp.Msg.GetBudgets()}
	var oerr *openai.Error
	if v.own, oerr = h.listBudgets(ctx, scopeOf(k.scope, id, "")); oerr != nil {
		return nil, oerr
	}
	if k.perModel != 0 {
		if v.perModel, oerr = h.listBudgets(ctx, scopeOf(k.perModel, id, "")); oerr != nil {
			return nil, oerr
		}
	}
	return v, nil
}

func (v *principalView) primary() *budgetv1.Budget {
	if len(v.own) == 0 {
		return nil
	}
	return v.own[0]
}

// summary renders v's budgets; with withSpend, spend is the ledger's over the
// budget's current window (all time without one).
func (h *Handler) summary(ctx context.Context, v *principalView, withSpend bool) (summaryJSON, *openai.Error) {
	b := v.primary()
	rng, resetAt := h.spendRange(b)
	s := summaryJSON{
		Spend: usd(0), MaxBudget: usdPtr(limitOf(b)), BudgetResetAt: resetAt,
		Budgets: budgetsOut(v.statuses, byID(append(slices.Clone(v.own), v.perModel...))),
	}
	if b != nil {
		s.BudgetDuration = strPtr(b.GetSpec().GetDuration())
	}
	if withSpend {
		n, oerr := h.ledgerSpend(ctx, scopeOf(v.kind.scope, v.p.GetId(), ""), rng)
		if oerr != nil {
			return s, oerr
		}
		s.Spend = usd(n)
	}
	return s, nil
}

func (s summaryJSON) table(v *principalView) *budgetTableJSON {
	b := v.primary()
	if b == nil {
		return nil
	}
	return &budgetTableJSON{BudgetID: strPtr(b.GetSpec().GetBudgetId()), MaxBudget: s.MaxBudget, BudgetDuration: s.BudgetDuration, BudgetResetAt: s.BudgetResetAt}
}

// principalRequest is what every */new endpoint reads besides its own fields.
type principalRequest struct {
	p         *budgetv1.Principal
	maxBudget *money.Nanos
	duration  string
	perModel  map[string]modelBudget
}

// readPrincipal reads the fields shared by /team/new, /user/new,
// /customer/new and /organization/new: the id (generated when absent and
// generate is set), max_budget, budget_duration, metadata and blocked.
func readPrincipal(f fields, k kindInfo, idField string, generate bool) (*principalRequest, *openai.Error) {
	pr := &principalRequest{p: &budgetv1.Principal{Kind: k.principal}}
	id, oerr := f.str(idField)
	if oerr != nil {
		return nil, oerr
	}
	if id == "" {
		if !generate {
			return nil, badRequest(idField, idField+" is required")
		}
		u, err := uuid.NewV7()
		if err != nil {
			return nil, &openai.Error{Status: http.StatusInternalServerError, Type: openai.TypeAPI, Message: "generating an id: " + err.Error()}
		}
		id = u.String()
	}
	pr.p.Id = id
	if pr.maxBudget, oerr = f.limit("max_budget"); oerr != nil {
		return nil, oerr
	}
	if pr.duration, oerr = f.duration("budget_duration"); oerr != nil {
		return nil, oerr
	}
	if pr.p.Metadata, _, oerr = f.metadata("metadata"); oerr != nil {
		return nil, oerr
	}
	b, oerr := f.boolean("blocked")
	if oerr != nil {
		return nil, oerr
	}
	pr.p.Blocked = b != nil && *b
	return pr, nil
}

// create creates the principal with its budgets in one call.
func (h *Handler) create(ctx context.Context, k kindInfo, pr *principalRequest) *openai.Error {
	var specs []*budgetv1.BudgetSpec
	if pr.maxBudget != nil {
		specs = append(specs, &budgetv1.BudgetSpec{LimitUsd: pr.maxBudget.String(), Duration: pr.duration})
	} else if pr.duration != "" {
		h.Log.Warn("budget_duration without max_budget sets no budget; ignored", "kind", k.name, "id", pr.p.GetId())
	}
	for _, g := range sortedGroups(pr.perModel) {
		mb := pr.perModel[g]
		specs = append(specs, &budgetv1.BudgetSpec{Scope: scopeOf(k.perModel, "", g), LimitUsd: mb.Limit.String(), Duration: mb.Duration})
	}
	cctx, cancel := h.rpc(ctx)
	defer cancel()
	if _, err := h.Budget.CreatePrincipal(cctx, connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: pr.p, Budgets: specs})); err != nil {
		return fromConnect("budget", "create "+k.name, err)
	}
	h.Log.Info("principal created", "kind", k.name, "id", pr.p.GetId(), "budgets", len(specs))
	return nil
}

var principalRefused = func() map[string]string {
	m := maps.Clone(refusedLimits)
	m["model_max_budget"] = "per-model budgets exist for keys and customers only"
	return m
}()

const noModelsWhy = "model allow-lists are enforced on keys only; set models on the keys"

// keySummaryJSON is a key as team and user info list it.
type keySummaryJSON struct {
	Token    string   `json:"token"`
	KeyName  string   `json:"key_name"`
	KeyAlias *string  `json:"key_alias"`
	TeamID   *string  `json:"team_id"`
	UserID   *string  `json:"user_id"`
	Models   []string `json:"models"`
	Blocked  bool     `json:"blocked"`
	Expires  *string  `json:"expires"`
}

// listKeys lists every key of a team or user.
func (h *Handler) listKeys(ctx context.Context, teamID, userID string) ([]keySummaryJSON, *openai.Error) {
	keys, oerr := h.allKeys(ctx, teamID, userID)
	if oerr != nil {
		return nil, oerr
	}
	out := make([]keySummaryJSON, len(keys))
	for i, k := range keys {
		out[i] = keySummary(k)
	}
	return out, nil
}

func keySummary(k *budgetv1.Key) keySummaryJSON {
	return keySummaryJSON{Token: k.GetKeyId(), KeyName: k.GetKeyAliasHint(), KeyAlias: strPtr(k.GetKeyAlias()),
		TeamID: strPtr(k.GetTeamId()), UserID: strPtr(k.GetUserId()), Models: nonNil(k.GetModels()), Blocked: k.GetBlocked(),
		Expires: ts(k.GetExpiresAt())}
}

// ---- teams

type teamJSON struct {
	TeamID           string         `json:"team_id"`
	TeamAlias        *string        `json:"team_alias"`
	OrganizationID   *string        `json:"organization_id"`
	Metadata         map[string]any `json:"metadata"`
	Models           []string       `json:"models"`
	Blocked          bool           `json:"blocked"`
	CreatedAt        *string        `json:"created_at"`
	MembersWithRoles []any          `json:"members_with_roles"`
	TPMLimit         *int           `json:"tpm_limit"`
	RPMLimit         *int           `json:"rpm_limit"`
	summaryJSON
}

func (h *Handler) renderTeam(ctx context.Context, v *principalView, withSpend bool) (*teamJSON, *openai.Error) {
	s, oerr := h.summary(ctx, v, withSpend)
	if oerr != nil {
		return nil, oerr
	}
	p := v.p
	return &teamJSON{TeamID: p.GetId(), TeamAlias: strPtr(p.GetAlias()), OrganizationID: strPtr(p.GetOrgId()),
		Metadata: metadataOut(p.GetMetadata(), nil), Models: []string{}, Blocked: p.GetBlocked(), CreatedAt: ts(p.GetCreatedAt()),
		MembersWithRoles: []any{}, summaryJSON: s}, nil
}

// teamNew is POST /team/new.
func (h *Handler) teamNew(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	f, oerr := h.readFields(r)
	if oerr != nil {
		return nil, oerr
	}
	known := []string{"team_id", "team_alias", "organization_id", "metadata", "max_budget", "budget_duration", "models", "blocked"}
	if oerr := f.check(h.Log, r.URL.Path, known, principalRefused); oerr != nil {
		return nil, oerr
	}
	if oerr := f.noList("models", noModelsWhy); oerr != nil {
		return nil, oerr
	}
	pr, oerr := readPrincipal(f, teamKind, "team_id", true)
	if oerr != nil {
		return nil, oerr
	}
	if pr.p.Alias, oerr = f.str("team_alias"); oerr != nil {
		return nil, oerr
	}
	if pr.p.OrgId, oerr = f.str("organization_id"); oerr != nil {
		return nil, oerr
	}
	if oerr := h.create(ctx, teamKind, pr); oerr != nil {
		return nil, oerr
	}
	v, oerr := h.loadPrincipal(ctx, teamKind, pr.p.GetId())
	if oerr != nil {
		return nil, oerr
	}
	return h.renderTeam(ctx, v, false)
}

// teamInfo is GET /team/info?team_id=.
func (h *Handler) teamInfo(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	id := r.URL.Query().Get("team_id")
	if id == "" {
		return nil, badRequest("team_id", "team_id is required")
	}
	v, oerr := h.loadPrincipal(ctx, teamKind, id)
	if oerr != nil {
		return nil, oerr
	}
	t, oerr := h.renderTeam(ctx, v, true)
	if oerr != nil {
		return nil, oerr
	}
	keys, oerr := h.listKeys(ctx, id, "")
	if oerr != nil {
		return nil, oerr
	}
	return map[string]any{"team_id": id, "team_info": t, "keys": keys, "team_memberships": []any{}}, nil
}

// ---- users

type userJSON struct {
	UserID         string         `json:"user_id"`
	UserAlias      *string        `json:"user_alias"`
	UserEmail      *string        `json:"user_email"`
	UserRole       *string        `json:"user_role"`
	OrganizationID *string        `json:"organization_id"`
	Metadata       map[string]any `json:"metadata"`
	Models         []string       `json:"models"`
	Teams          []string       `json:"teams"`
	Blocked        bool           `json:"blocked"`
	CreatedAt      *string        `json:"created_at"`
	TPMLimit       *int           `json:"tpm_limit"`
	RPMLimit       *int           `json:"rpm_limit"`
	summaryJSON
}

// user_email and user_role have no field in the budget service; they are
// kept in the user's metadata under these keys.
const (
	metaUserEmail = "user_email"
	metaUserRole  = "user_role"
)

func (h *Handler) renderUser(ctx context.Context, v *principalView, withSpend bool) (*userJSON, *openai.Error) {
	s, oerr := h.summary(ctx, v, withSpend)
	if oerr != nil {
		return nil, oerr
	}
	p := v.p
	meta := maps.Clone(p.GetMetadata())
	email, role := meta[metaUserEmail], meta[metaUserRole]
	delete(meta, metaUserEmail)
	delete(meta, metaUserRole)
	return &userJSON{UserID: p.GetId(), UserAlias: strPtr(p.GetAlias()), UserEmail: strPtr(email), UserRole: strPtr(role),
		OrganizationID: strPtr(p.GetOrgId()), Metadata: metadataOut(meta, nil), Models: []string{}, Teams: []string{},
		Blocked: p.GetBlocked(), CreatedAt: ts(p.GetCreatedAt()), summaryJSON: s}, nil
}

// userNew is POST /user/new. As in LiteLLM, a key for the user is generated
// unless auto_create_key is false; models (and key_alias, duration) apply to
// that key, since the budget service keeps model allow-lists on keys only.
func (h *Handler) userNew(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	f, oerr := h.readFields(r)
	if oerr != nil {
		return nil, oerr
	}
	known := []string{"user_id", "user_alias", "user_email", "user_role", "organization_id", "metadata", "max_budget",
		"budget_duration", "models", "blocked", "auto_create_key", "key_alias", "duration", "teams", "send_invite_email"}
	if oerr := f.check(h.Log, r.URL.Path, known, principalRefused); oerr != nil {
		return nil, oerr
	}
	if f.meaningful("teams") {
		return nil, unsupported("teams", "team membership is not modelled; create the user's keys with team_id")
	}
	pr, oerr := readPrincipal(f, userKind, "user_id", true)
	if oerr != nil {
		return nil, oerr
	}
	if pr.p.Alias, oerr = f.str("user_alias"); oerr != nil {
		return nil, oerr
	}
	if pr.p.OrgId, oerr = f.str("organization_id"); oerr != nil {
		return nil, oerr
	}
	for _, m := range []string{metaUserEmail, metaUserRole} {
		v, oerr := f.str(m)
		if oerr != nil {
			return nil, oerr
		}
		if v != "" {
			if pr.p.Metadata == nil {
				pr.p.Metadata = map[string]string{}
			}
			pr.p.Metadata[m] = v
		}
	}
	auto, oerr := f.boolean("auto_create_key")
	if oerr != nil {
		return nil, oerr
	}
	createKey := auto == nil || *auto
	key := &budgetv1.Key{UserId: pr.p.GetId(), OrgId: pr.p.GetOrgId()}
	if key.Models, oerr = f.strs("models"); oerr != nil {
		return nil, oerr
	}
	if !createKey && f.meaningful("models") {
		return nil, unsupported("models", noModelsWhy+" (auto_create_key is false, so there is no key to set them on)")
	}
	if key.KeyAlias, oerr = f.str("key_alias"); oerr != nil {
		return nil, oerr
	}
	exp, oerr := f.expiry("duration", h.Now())
	if oerr != nil {
		return nil, oerr
	}
	if exp != nil {
		key.ExpiresAt = timestamppb.New(*exp)
	}

	if oerr := h.create(ctx, userKind, pr); oerr != nil {
		return nil, oerr
	}
	v, oerr := h.loadPrincipal(ctx, userKind, pr.p.GetId())
	if oerr != nil {
		return nil, oerr
	}
	u, oerr := h.renderUser(ctx, v, false)
	if oerr != nil {
		return nil, oerr
	}
	out := struct {
		*userJSON
		Key     *string `json:"key"`
		Token   *string `json:"token"`
		KeyName *string `json:"key_name"`
		Expires *string `json:"expires"`
	}{userJSON: u}
	if createKey {
		if len(key.Models) > 0 {
			u.Models = key.Models
		}
		cctx, cancel := h.rpc(ctx)
		resp, err := h.Budget.CreateKey(cctx, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: key}))
		cancel()
		if err != nil {
			return nil, fromConnect("budget", "create the user's key", err)
		}
		clear, k := resp.Msg.GetClearKey(), resp.Msg.GetKey()
		out.Key, out.Token, out.KeyName, out.Expires = &clear, strPtr(k.GetKeyId()), strPtr(k.GetKeyAliasHint()), ts(k.GetExpiresAt())
		h.Log.Info("key generated for new user", "user_id", pr.p.GetId(), "key_id", k.GetKeyId())
	}
	return out, nil
}

// userInfo is GET /user/info?user_id=.
func (h *Handler) userInfo(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	id := r.URL.Query().Get("user_id")
	if id == "" {
		return nil, badRequest("user_id", "user_id is required")
	}
	v, oerr := h.loadPrincipal(ctx, userKind, id)
	if oerr != nil {
		return nil, oerr
	}
	u, oerr := h.renderUser(ctx, v, true)
	if oerr != nil {
		return nil, oerr
	}
	keys, oerr := h.listKeys(ctx, "", id)
	if oerr != nil {
		return nil, oerr
	}
	return map[string]any{"user_id": id, "user_info": u, "keys": keys, "teams": []any{}}, nil
}

// ---- customers (end users)

type customerJSON struct {
	UserID             string                     `json:"user_id"`
	Alias              *string                    `json:"alias"`
	Blocked            bool                       `json:"blocked"`
	Metadata           map[string]any             `json:"metadata"`
	AllowedModelRegion *string                    `json:"allowed_model_region"`
	DefaultModel       *string                    `json:"default_model"`
	LiteLLMBudgetTable *budgetTableJSON           `json:"litellm_budget_table"`
	ModelMaxBudget     map[string]modelBudgetJSON `json:"model_max_budget"`
	CreatedAt          *string                    `json:"created_at"`
	summaryJSON
}

func (h *Handler) renderCustomer(ctx context.Context, v *principalView, withSpend bool) (*customerJSON, *openai.Error) {
	s, oerr := h.summary(ctx, v, withSpend)
	if oerr != nil {
		return nil, oerr
	}
	p := v.p
	c := &customerJSON{UserID: p.GetId(), Alias: strPtr(p.GetAlias()), Blocked: p.GetBlocked(), Metadata: metadataOut(p.GetMetadata(), nil),
		LiteLLMBudgetTable: s.table(v), ModelMaxBudget: map[string]modelBudgetJSON{}, CreatedAt: ts(p.GetCreatedAt()), summaryJSON: s}
	for _, b := range v.perModel {
		c.ModelMaxBudget[b.GetSpec().GetScope().GetModelGroup()] = modelBudgetJSON{
			BudgetLimit: usdNanos(b.GetLimitNanos()), TimePeriod: strPtr(b.GetSpec().GetDuration()),
		}
	}
	return c, nil
}

// customerNew is POST /customer/new (also /end_user/new). user_id is the
// end user's id: the `user` field of their requests. Without max_budget, the
// budget is litellm_settings.max_end_user_budget when configured.
func (h *Handler) customerNew(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	f, oerr := h.readFields(r)
	if oerr != nil {
		return nil, oerr
	}
	known := []string{"user_id", "alias", "blocked", "max_budget", "budget_duration", "model_max_budget", "metadata"}
	refused := maps.Clone(refusedLimits)
	refused["allowed_model_region"] = "region-restricted routing is not implemented"
	refused["default_model"] = "a customer's default model is not implemented"
	if oerr := f.check(h.Log, r.URL.Path, known, refused); oerr != nil {
		return nil, oerr
	}
	pr, oerr := readPrincipal(f, customerKind, "user_id", false)
	if oerr != nil {
		return nil, oerr
	}
	if pr.p.Alias, oerr = f.str("alias"); oerr != nil {
		return nil, oerr
	}
	if pr.perModel, oerr = f.modelMaxBudget("model_max_budget"); oerr != nil {
		return nil, oerr
	}
	if pr.maxBudget == nil && h.DefaultEndUserBudget != nil {
		d := *h.DefaultEndUserBudget
		pr.maxBudget = &d
	}
	if oerr := h.create(ctx, customerKind, pr); oerr != nil {
		return nil, oerr
	}
	v, oerr := h.loadPrincipal(ctx, customerKind, pr.p.GetId())
	if oerr != nil {
		return nil, oerr
	}
	return h.renderCustomer(ctx, v, false)
}

// customerInfo is GET /customer/info?end_user_id= (also /end_user/info).
func (h *Handler) customerInfo(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	id := r.URL.Query().Get("end_user_id")
	if id == "" {
		return nil, badRequest("end_user_id", "end_user_id is required")
	}
	v, oerr := h.loadPrincipal(ctx, customerKind, id)
	if oerr != nil {
		return nil, oerr
	}
	return h.renderCustomer(ctx, v, true)
}

// ---- organizations

type orgJSON struct {
	OrganizationID     string           `json:"organization_id"`
	OrganizationAlias  *string          `json:"organization_alias"`
	BudgetID           *string          `json:"budget_id"`
	Metadata           map[string]any   `json:"metadata"`
	Models             []string         `json:"models"`
	Blocked            bool             `json:"blocked"`
	CreatedAt          *string          `json:"created_at"`
	LiteLLMBudgetTable *budgetTableJSON `json:"litellm_budget_table"`
	summaryJSON
}

func (h *Handler) renderOrg(ctx context.Context, v *principalView, withSpend bool) (*orgJSON, *openai.Error) {
	s, oerr := h.summary(ctx, v, withSpend)
	if oerr != nil {
		return nil, oerr
	}
	p := v.p
	o := &orgJSON{OrganizationID: p.GetId(), OrganizationAlias: strPtr(p.GetAlias()), Metadata: metadataOut(p.GetMetadata(), nil),
		Models: []string{}, Blocked: p.GetBlocked(), CreatedAt: ts(p.GetCreatedAt()), LiteLLMBudgetTable: s.table(v), summaryJSON: s}
	if b := v.primary(); b != nil {
		o.BudgetID = strPtr(b.GetSpec().GetBudgetId())
	}
	return o, nil
}

// orgNew is POST /organization/new.
func (h *Handler) orgNew(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	f, oerr := h.readFields(r)
	if oerr != nil {
		return nil, oerr
	}
	known := []string{"organization_id", "organization_alias", "metadata", "max_budget", "budget_duration", "models", "blocked"}
	if oerr := f.check(h.Log, r.URL.Path, known, principalRefused); oerr != nil {
		return nil, oerr
	}
	if oerr := f.noList("models", noModelsWhy); oerr != nil {
		return nil, oerr
	}
	pr, oerr := readPrincipal(f, orgKind, "organization_id", true)
	if oerr != nil {
		return nil, oerr
	}
	if pr.p.Alias, oerr = f.str("organization_alias"); oerr != nil {
		return nil, oerr
	}
	if oerr := h.create(ctx, orgKind, pr); oerr != nil {
		return nil, oerr
	}
	v, oerr := h.loadPrincipal(ctx, orgKind, pr.p.GetId())
	if oerr != nil {
		return nil, oerr
	}
	return h.renderOrg(ctx, v, false)
}

// orgInfo is GET /organization/info?organization_id=.
func (h *Handler) orgInfo(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	id := r.URL.Query().Get("organization_id")
	if id == "" {
		return nil, badRequest("organization_id", "organization_id is required")
	}
	v, oerr := h.loadPrincipal(ctx, orgKind, id)
	if oerr != nil {
		return nil, oerr
	}
	return h.renderOrg(ctx, v, true)
}
