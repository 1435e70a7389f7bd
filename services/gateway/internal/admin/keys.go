package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

const (
	kindKey      = eventsv1.ScopeKind_SCOPE_KIND_KEY
	kindKeyModel = eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL
)

// keyFields are the /key/generate and /key/update fields this gateway maps.
var keyFields = []string{"key", "key_alias", "team_id", "user_id", "organization_id", "models", "tags", "metadata",
	"max_budget", "budget_duration", "model_max_budget", "duration", "blocked", "spend"}

// refusedLimits are LiteLLM fields that set a limit this gateway does not
// enforce; a request setting one is refused rather than silently unenforced.
var refusedLimits = map[string]string{
	"tpm_limit":             "token-per-minute limits are not enforced; budgets are",
	"rpm_limit":             "request-per-minute limits are not enforced; budgets are",
	"max_parallel_requests": "parallel-request limits are not enforced",
	"model_rpm_limit":       "per-model rate limits are not enforced",
	"model_tpm_limit":       "per-model rate limits are not enforced",
	"soft_budget":           "soft budgets are soft_thresholds of a budget in the budget service",
	"budget_id":             "LiteLLM budget tables are not modelled; set max_budget and budget_duration",
	"guardrails":            "guardrails are not implemented",
	"enforced_params":       "enforced_params are not implemented",
	"allowed_routes":        "route allow-lists are not implemented (a virtual key may call the OpenAI API and read its own /key/info)",
	"aliases":               "per-key model aliases are not implemented; use router_settings.model_group_alias",
	"team_member_budget":    "per-member team budgets are not implemented",
}

// modelBudgetJSON is a model_max_budget entry as LiteLLM writes it.
type modelBudgetJSON struct {
	BudgetLimit json.Number `json:"budget_limit"`
	TimePeriod  *string     `json:"time_period"`
}

// keyInfoJSON is a key as /key/info's "info" (and /key/generate, flattened)
// shows it, in LiteLLM's field names.
type keyInfoJSON struct {
	Token          string                     `json:"token"`
	TokenID        string                     `json:"token_id"`
	KeyName        string                     `json:"key_name"`
	KeyAlias       *string                    `json:"key_alias"`
	Spend          json.Number                `json:"spend"`
	MaxBudget      *json.Number               `json:"max_budget"`
	BudgetDuration *string                    `json:"budget_duration"`
	BudgetResetAt  *string                    `json:"budget_reset_at"`
	Expires        *string                    `json:"expires"`
	Models         []string                   `json:"models"`
	Tags           []string                   `json:"tags"`
	Metadata       map[string]any             `json:"metadata"`
	TeamID         *string                    `json:"team_id"`
	UserID         *string                    `json:"user_id"`
	OrganizationID *string                    `json:"organization_id"`
	OrgID          *string                    `json:"org_id"`
	Blocked        bool                       `json:"blocked"`
	ModelMaxBudget map[string]modelBudgetJSON `json:"model_max_budget"`
	ModelSpend     map[string]json.Number     `json:"model_spend"`
	CreatedAt      *string                    `json:"created_at"`
	// LiteLLM fields for limits this gateway does not have: always null.
	TPMLimit            *int `json:"tpm_limit"`
	RPMLimit            *int `json:"rpm_limit"`
	MaxParallelRequests *int `json:"max_parallel_requests"`
	// Budgets is every budget on the key's chain (key, key × model group,
	// team, user, organization) in its current window.
	Budgets []budgetJSON `json:"budgets"`
}

// keyView is what renderKey needs about a key.
type keyView struct {
	key      *budgetv1.Key
	statuses []*budgetv1.BudgetStatus
	own      []*budgetv1.Budget // key scope, creation order
	perModel []*budgetv1.Budget // key × model group
}

// loadKey reads a key, its chain's budget statuses and its own budgets.
func (h *Handler) loadKey(ctx context.Context, id string) (*keyView, *openai.Error) {
	cctx, cancel := h.rpc(ctx)
	resp, err := h.Budget.GetKey(cctx, connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: id}))
	cancel()
	if err != nil {
		return nil, fromConnect("budget", "get key", err)
	}
	v := &keyView{key: resp.Msg.GetKey(), statuses: resp.Msg.GetBudgets()}
	var oerr *openai.Error
	if v.own, oerr = h.listBudgets(ctx, scopeOf(kindKey, id, "")); oerr != nil {
		return nil, oerr
	}
	if v.perModel, oerr = h.listBudgets(ctx, scopeOf(kindKeyModel, id, "")); oerr != nil {
		return nil, oerr
	}
	return v, nil
}

// renderKey renders v; with withSpend, spend and model_spend come from the
// ledger (over the key budget's current window, or all time).
func (h *Handler) renderKey(ctx context.Context, v *keyView, withSpend bool) (*keyInfoJSON, *openai.Error) {
	k := v.key
	var primary *budgetv1.Budget
	if len(v.own) > 0 {
		primary = v.own[0]
	}
	rng, resetAt := h.spendRange(primary)
	out := &keyInfoJSON{
		Token: k.GetKeyId(), TokenID: k.GetKeyId(), KeyName: k.GetKeyAliasHint(), KeyAlias: strPtr(k.GetKeyAlias()),
		Spend: usd(0), MaxBudget: usdPtr(limitOf(primary)), BudgetResetAt: resetAt,
		Expires: ts(k.GetExpiresAt()), Models: nonNil(k.GetModels()), Tags: nonNil(k.GetTags()),
		Metadata: metadataOut(k.GetMetadata(), k.GetTags()),
		TeamID:   strPtr(k.GetTeamId()), UserID: strPtr(k.GetUserId()),
		OrganizationID: strPtr(k.GetOrgId()), OrgID: strPtr(k.GetOrgId()),
		Blocked: k.GetBlocked(), CreatedAt: ts(k.GetCreatedAt()),
		ModelMaxBudget: map[string]modelBudgetJSON{}, ModelSpend: map[string]json.Number{},
	}
	if primary != nil {
		out.BudgetDuration = strPtr(primary.GetSpec().GetDuration())
	}
	for _, b := range v.perModel {
		out.ModelMaxBudget[b.GetSpec().GetScope().GetModelGroup()] = modelBudgetJSON{
			BudgetLimit: usdNanos(b.GetLimitNanos()), TimePeriod: strPtr(b.GetSpec().GetDuration()),
		}
	}
	out.Budgets = budgetsOut(v.statuses, byID(append(slices.Clone(v.own), v.perModel...)))
	if !withSpend {
		return out, nil
	}
	sc := scopeOf(kindKey, k.GetKeyId(), "")
	spend, oerr := h.ledgerSpend(ctx, sc, rng)
	if oerr != nil {
		return nil, oerr
	}
	out.Spend = usd(spend)
	cctx, cancel := h.rpc(ctx)
	defer cancel()
	resp, err := h.Ledger.SpendByModelGroup(cctx, connect.NewRequest(&ledgerv1.SpendByModelGroupRequest{Scope: sc, Range: rng}))
	if err != nil {
		return nil, fromConnect("ledger", "spend by model group", err)
	}
	for _, row := range resp.Msg.GetRows() {
		out.ModelSpend[row.GetModelGroup()] = usdNanos(row.GetSpentNanos())
	}
	return out, nil
}

// resolveKey turns a key reference into a key id. LiteLLM accepts the clear
// key or its token; here the token is the key id. A clear key ("sk-...") is
// looked up by its hash; if no key has that hash the text is tried as an id
// (a caller-chosen key id may start with sk- too).
func (h *Handler) resolveKey(ctx context.Context, ref string) (string, *openai.Error) {
	if ref == "" {
		return "", badRequest("key", "key is required: the clear key (sk-...) or its token (key id)")
	}
	if !strings.HasPrefix(ref, "sk-") {
		return ref, nil
	}
	sum := sha256.Sum256([]byte(ref))
	cctx, cancel := h.rpc(ctx)
	defer cancel()
	// GetKey by hash, not Authenticate: an administrator must be able to
	// unblock a blocked key by the clear text they hold.
	resp, err := h.Budget.GetKey(cctx, connect.NewRequest(&budgetv1.GetKeyRequest{KeyHash: hex.EncodeToString(sum[:])}))
	switch {
	case err == nil:
		return resp.Msg.GetKey().GetKeyId(), nil
	case connect.CodeOf(err) == connect.CodeNotFound:
		return ref, nil
	}
	return "", fromConnect("budget", "look up key", err)
}

// keyInfoEndpoint is GET /key/info?key=. The master key may read any key; a
// virtual key only itself (with or without ?key=).
func (h *Handler) keyInfoEndpoint(ctx context.Context, c *caller, r *http.Request) (any, *openai.Error) {
	ref := r.URL.Query().Get("key")
	var id string
	if !c.master {
		if ref != "" && ref != c.token && ref != c.key.GetKeyId() {
			return nil, &openai.Error{Status: http.StatusForbidden, Type: openai.TypePermission, Code: "admin_only", Param: "key",
				Message: "a virtual key may only read its own /key/info; reading another key needs the master key"}
		}
		id = c.key.GetKeyId()
	} else {
		var oerr *openai.Error
		if id, oerr = h.resolveKey(ctx, ref); oerr != nil {
			return nil, oerr
		}
	}
	info, oerr := h.keyInfo(ctx, id)
	if oerr != nil {
		return nil, oerr
	}
	return struct {
		Key  string       `json:"key"`
		Info *keyInfoJSON `json:"info"`
	}{id, info}, nil
}

// keyTags merges the top-level tags and metadata.tags. present is false when
// neither was given (an update then leaves the tags alone).
func keyTags(f fields, metaTags []string) (tags []string, present bool, oerr *openai.Error) {
	top, oerr := f.strs("tags")
	if oerr != nil {
		return nil, false, oerr
	}
	present = top != nil || metaTags != nil
	for _, t := range append(top, metaTags...) {
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags, present, nil
}

// checkSpend refuses an initial spend: spend is the ledger's sum of entries
// and cannot be set.
func checkSpend(f fields) *openai.Error {
	if !f.set("spend") {
		return nil
	}
	n, err := parseLimit(f["spend"])
	if err != nil || n != 0 {
		return unsupported("spend", "spend is the ledger's sum of the key's entries and cannot be set")
	}
	return nil
}

func sortedGroups(m map[string]modelBudget) []string {
	gs := make([]string, 0, len(m))
	for g := range m {
		gs = append(gs, g)
	}
	sort.Strings(gs)
	return gs
}

// keyGenerate is POST /key/generate.
func (h *Handler) keyGenerate(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	f, oerr := h.readFields(r)
	if oerr != nil {
		return nil, oerr
	}
	if oerr := f.check(h.Log, r.URL.Path, keyFields, refusedLimits); oerr != nil {
		return nil, oerr
	}
	if oerr := checkSpend(f); oerr != nil {
		return nil, oerr
	}
	k := &budgetv1.Key{}
	var clear, dur string
	var maxBudget *money.Nanos
	var perModel map[string]modelBudget
	steps := []func() *openai.Error{
		func() (e *openai.Error) { k.KeyAlias, e = f.str("key_alias"); return },
		func() (e *openai.Error) { k.TeamId, e = f.str("team_id"); return },
		func() (e *openai.Error) { k.UserId, e = f.str("user_id"); return },
		func() (e *openai.Error) { k.OrgId, e = f.str("organization_id"); return },
		func() (e *openai.Error) { k.Models, e = f.strs("models"); return },
		func() (e *openai.Error) { clear, e = f.str("key"); return },
		func() (e *openai.Error) { maxBudget, e = f.limit("max_budget"); return },
		func() (e *openai.Error) { dur, e = f.duration("budget_duration"); return },
		func() (e *openai.Error) { perModel, e = f.modelMaxBudget("model_max_budget"); return },
		func() *openai.Error {
			b, e := f.boolean("blocked")
			k.Blocked = b != nil && *b
			return e
		},
		func() *openai.Error {
			exp, e := f.expiry("duration", h.Now())
			if exp != nil {
				k.ExpiresAt = timestamppb.New(*exp)
			}
			return e
		},
		func() *openai.Error {
			meta, metaTags, e := f.metadata("metadata")
			if e != nil {
				return e
			}
			k.Metadata = meta
			k.Tags, _, e = keyTags(f, metaTags)
			return e
		},
	}
	for _, s := range steps {
		if oerr := s(); oerr != nil {
			return nil, oerr
		}
	}
	var specs []*budgetv1.BudgetSpec
	if maxBudget != nil {
		specs = append(specs, &budgetv1.BudgetSpec{LimitUsd: maxBudget.String(), Duration: dur})
	} else if dur != "" {
		h.Log.Warn("budget_duration without max_budget sets no budget; ignored", "path", r.URL.Path)
	}
	for _, g := range sortedGroups(perModel) {
		mb := perModel[g]
		specs = append(specs, &budgetv1.BudgetSpec{Scope: scopeOf(kindKeyModel, "", g), LimitUsd: mb.Limit.String(), Duration: mb.Duration})
	}
	cctx, cancel := h.rpc(ctx)
	resp, err := h.Budget.CreateKey(cctx, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: k, ClearKey: clear, Budgets: specs}))
	cancel()
	if err != nil {
		return nil, fromConnect("budget", "create key", err)
	}
	created := resp.Msg.GetKey()
	h.Log.Info("key generated", "key_id", created.GetKeyId(), "team_id", created.GetTeamId(), "user_id", created.GetUserId(), "budgets", len(specs))
	// The clear key is shown once: if reading the key back fails, answer from
	// what was created rather than lose it.
	v, oerr := h.loadKey(ctx, created.GetKeyId())
	if oerr != nil {
		h.Log.Warn("reading a generated key back failed; answering from the create response", "key_id", created.GetKeyId(), "err", oerr.Message)
		v = &keyView{key: created}
		for _, s := range specs {
			b := &budgetv1.Budget{Spec: s}
			if n, err := money.ParseLimit(s.GetLimitUsd()); err == nil {
				b.LimitNanos = int64(n)
			}
			if s.GetScope() == nil {
				v.own = append(v.own, b)
			} else {
				v.perModel = append(v.perModel, b)
			}
		}
	}
	info, oerr := h.renderKey(ctx, v, false)
	if oerr != nil {
		return nil, oerr
	}
	return struct {
		Key string `json:"key"`
		*keyInfoJSON
		Duration *string `json:"duration"`
	}{resp.Msg.GetClearKey(), info, strPtr(mustStr(f, "duration"))}, nil
}

func mustStr(f fields, k string) string {
	s, _ := f.str(k)
	return s
}

// keyUpdate is POST /key/update: the named fields change; null and absent
// fields do not (as in LiteLLM). max_budget and budget_duration replace the
// key's budget (keeping its window when only the limit changes);
// model_max_budget replaces the whole per-model map, as in LiteLLM.
func (h *Handler) keyUpdate(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	f, oerr := h.readFields(r)
	if oerr != nil {
		return nil, oerr
	}
	if oerr := f.check(h.Log, r.URL.Path, keyFields, refusedLimits); oerr != nil {
		return nil, oerr
	}
	if oerr := checkSpend(f); oerr != nil {
		return nil, oerr
	}
	ref, oerr := f.str("key")
	if oerr != nil {
		return nil, oerr
	}
	id, oerr := h.resolveKey(ctx, ref)
	if oerr != nil {
		return nil, oerr
	}
	k := &budgetv1.Key{KeyId: id}
	var mask []string
	strField := func(name, field string, dst *string) *openai.Error {
		if !f.set(name) {
			return nil
		}
		v, e := f.str(name)
		*dst = v
		mask = append(mask, field)
		return e
	}
	steps := []func() *openai.Error{
		func() *openai.Error { return strField("key_alias", "key_alias", &k.KeyAlias) },
		func() *openai.Error { return strField("team_id", "team_id", &k.TeamId) },
		func() *openai.Error { return strField("user_id", "user_id", &k.UserId) },
		func() *openai.Error { return strField("organization_id", "org_id", &k.OrgId) },
		func() (e *openai.Error) {
			if f.set("models") {
				k.Models, e = f.strs("models")
				mask = append(mask, "models")
			}
			return
		},
		func() *openai.Error {
			b, e := f.boolean("blocked")
			if b != nil {
				k.Blocked = *b
				mask = append(mask, "blocked")
			}
			return e
		},
		func() *openai.Error {
			exp, e := f.expiry("duration", h.Now())
			if exp != nil {
				k.ExpiresAt = timestamppb.New(*exp)
				mask = append(mask, "expires_at")
			}
			return e
		},
		func() *openai.Error {
			meta, metaTags, e := f.metadata("metadata")
			if e != nil {
				return e
			}
			if meta != nil {
				k.Metadata = meta
				mask = append(mask, "metadata")
			}
			tags, present, e := keyTags(f, metaTags)
			if present {
				k.Tags = tags
				mask = append(mask, "tags")
			}
			return e
		},
	}
	for _, s := range steps {
		if oerr := s(); oerr != nil {
			return nil, oerr
		}
	}
	bu, oerr := readBudgetUpdate(f, true)
	if oerr != nil {
		return nil, oerr
	}

	if len(mask) > 0 {
		cctx, cancel := h.rpc(ctx)
		_, err := h.Budget.UpdateKey(cctx, connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: k, UpdateFields: mask}))
		cancel()
		if err != nil {
			return nil, fromConnect("budget", "update key", err)
		}
	}
	if oerr := h.applyBudgetUpdate(ctx, kindKey, kindKeyModel, id, bu); oerr != nil {
		return nil, oerr
	}
	h.Log.Info("key updated", "key_id", id, "fields", mask, "max_budget", bu.maxBudget != nil, "model_max_budget", bu.perModel != nil)
	return h.flatKeyInfo(ctx, id)
}

// keyDelete is POST /key/delete {"keys": [...]}: every key is resolved
// before any is deleted, so an unknown one deletes nothing.
func (h *Handler) keyDelete(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	f, oerr := h.readFields(r)
	if oerr != nil {
		return nil, oerr
	}
	if oerr := f.check(h.Log, r.URL.Path, []string{"keys"}, map[string]string{
		"key_aliases": "deleting by alias is not implemented; pass the keys or their tokens in keys",
	}); oerr != nil {
		return nil, oerr
	}
	refs, oerr := f.strs("keys")
	if oerr != nil {
		return nil, oerr
	}
	if len(refs) == 0 {
		return nil, badRequest("keys", "keys is required: a list of clear keys or tokens (key ids)")
	}
	ids := make([]string, len(refs))
	for i, ref := range refs {
		id, oerr := h.resolveKey(ctx, ref)
		if oerr != nil {
			return nil, oerr
		}
		cctx, cancel := h.rpc(ctx)
		_, err := h.Budget.GetKey(cctx, connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: id}))
		cancel()
		if err != nil {
			return nil, fromConnect("budget", "get key", err)
		}
		ids[i] = id
	}
	for _, id := range ids {
		cctx, cancel := h.rpc(ctx)
		_, err := h.Budget.DeleteKey(cctx, connect.NewRequest(&budgetv1.DeleteKeyRequest{KeyId: id}))
		cancel()
		if err != nil {
			return nil, fromConnect("budget", "delete key", err)
		}
		h.Log.Info("key deleted", "key_id", id)
	}
	return map[string]any{"deleted_keys": refs}, nil
}
