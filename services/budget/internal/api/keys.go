package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// Authenticate implements BudgetServiceHandler. An unknown hash is
// Unauthenticated (the caller presented no valid credential; NotFound would
// suggest a resource to look for). Blocked or expired keys, and keys whose
// team, user or org is blocked, are PermissionDenied with the reason.
func (h *Handler) Authenticate(ctx context.Context, req *connect.Request[budgetv1.AuthenticateRequest]) (*connect.Response[budgetv1.AuthenticateResponse], error) {
	hash, err := checkKeyHash(req.Msg.GetKeyHash())
	if err != nil {
		return nil, err
	}
	k, err := h.keys.KeyByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown key"))
	}
	if err != nil {
		return nil, h.fromStore(ctx, "authenticate", err)
	}
	if why := k.Refusal(h.now()); why != "" {
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("key %s: %s", k.ID, why))
	}
	return connect.NewResponse(&budgetv1.AuthenticateResponse{Key: keyProto(k.Key)}), nil
}

// generateClearKey returns "sk-" and 43 base64url characters: 256 bits from
// crypto/rand, far beyond guessing.
func generateClearKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return "sk-" + base64.RawURLEncoding.EncodeToString(b)
}

// aliasHint shows enough of a key to recognise it: "sk-...a1b2".
func aliasHint(clear string) string {
	return clear[:3] + "..." + clear[len(clear)-4:]
}

func hashKey(clear string) string {
	sum := sha256.Sum256([]byte(clear))
	return hex.EncodeToString(sum[:])
}

// keyFields validates the writable fields of a key message. only, when not
// nil, limits validation to the named fields (UpdateKey's mask).
func keyFields(k *budgetv1.Key, only map[string]bool) (store.Key, error) {
	has := func(f string) bool { return only == nil || only[f] }
	out := store.Key{Alias: k.GetKeyAlias(), TeamID: k.GetTeamId(), UserID: k.GetUserId(), OrgID: k.GetOrgId(),
		Metadata: k.GetMetadata(), Blocked: k.GetBlocked()}
	var err error
	checks := []struct {
		field string
		check func() error
	}{
		{"key_alias", func() error { return checkLine("key.key_alias", out.Alias) }},
		{"team_id", func() error { return checkOptionalID("key.team_id", scope.KindTeam, out.TeamID) }},
		{"user_id", func() error { return checkOptionalID("key.user_id", scope.KindUser, out.UserID) }},
		{"org_id", func() error { return checkOptionalID("key.org_id", scope.KindOrg, out.OrgID) }},
		{"models", func() error { out.Models, err = normModels("key.models", k.GetModels()); return err }},
		{"tags", func() error { out.Tags, err = normTags("key.tags", k.GetTags()); return err }},
		{"metadata", func() error { return checkMetadata("key.metadata", out.Metadata) }},
		{"expires_at", func() error { out.ExpiresAt, err = checkTimestamp("key.expires_at", k.GetExpiresAt()); return err }},
	}
	for _, c := range checks {
		if has(c.field) {
			if err := c.check(); err != nil {
				return store.Key{}, err
			}
		}
	}
	return out, nil
}

// CreateKey implements BudgetServiceHandler. The key id is a UUIDv7 unless
// the caller chose one; the clear key is generated unless the caller chose
// one, is returned once, and only its SHA-256 is stored. Budgets given here
// are created in the same transaction, on the key (scope absent, or KEY) or
// on the key and a model group (KEY_MODEL, LiteLLM's model_max_budget), with
// the scope id left empty or equal to the key id. The key's team and org must
// exist (FailedPrecondition otherwise); its user is created if new.
func (h *Handler) CreateKey(ctx context.Context, req *connect.Request[budgetv1.CreateKeyRequest]) (*connect.Response[budgetv1.CreateKeyResponse], error) {
	in := req.Msg.GetKey()
	k, err := keyFields(in, nil)
	if err != nil {
		return nil, err
	}
	if !k.ExpiresAt.IsZero() && !k.ExpiresAt.After(h.now()) {
		return nil, invalid("key.expires_at", "is in the past; a new key must be usable")
	}
	if k.ID = in.GetKeyId(); k.ID == "" {
		if k.ID, err = newID(); err != nil {
			return nil, err
		}
	} else if err := checkID("key.key_id", scope.KindKey, k.ID); err != nil {
		return nil, err
	}
	clear := req.Msg.GetClearKey()
	if clear == "" {
		clear = generateClearKey()
	} else if err := checkClearKey(clear); err != nil {
		return nil, err
	}
	k.AliasHint = aliasHint(clear)
	budgets, err := parseOwnedBudgets(req.Msg.GetBudgets(), ownedScopeFixer(k.ID, scope.KindKey, scope.KindKeyModel))
	if err != nil {
		return nil, err
	}
	created, _, err := h.store.CreateKey(ctx, store.NewKey{Key: k, Hash: hashKey(clear)}, budgets)
	if err != nil {
		return nil, h.fromStore(ctx, "create key", err)
	}
	h.log.InfoContext(ctx, "key created", "key_id", created.ID, "team_id", created.TeamID, "budgets", len(budgets))
	return connect.NewResponse(&budgetv1.CreateKeyResponse{Key: keyProto(created), ClearKey: clear}), nil
}

// keyOwners are the (kind, id) pairs whose budgets apply to requests with k:
// the key, its per-model budgets, its team, user and org.
func keyOwners(k store.Key) []scope.Scope {
	owners := []scope.Scope{{Kind: scope.KindKey, ID: k.ID}, {Kind: scope.KindKeyModel, ID: k.ID}}
	for _, o := range []scope.Scope{{Kind: scope.KindTeam, ID: k.TeamID}, {Kind: scope.KindUser, ID: k.UserID}, {Kind: scope.KindOrg, ID: k.OrgID}} {
		if o.ID != "" {
			owners = append(owners, o)
		}
	}
	return owners
}

// GetKey implements BudgetServiceHandler. It reads Postgres, not the cache:
// an operator looking at a key must see the write they just made.
func (h *Handler) GetKey(ctx context.Context, req *connect.Request[budgetv1.GetKeyRequest]) (*connect.Response[budgetv1.GetKeyResponse], error) {
	id, err := h.keyIDOf(ctx, req.Msg)
	if err != nil {
		return nil, err
	}
	k, err := h.store.GetKey(ctx, id)
	if err != nil {
		return nil, h.fromStore(ctx, "get key", err)
	}
	budgets, err := h.store.BudgetsOwnedBy(ctx, keyOwners(k))
	if err != nil {
		return nil, h.fromStore(ctx, "get key budgets", err)
	}
	st, err := h.statuses(ctx, budgets)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&budgetv1.GetKeyResponse{Key: keyProto(k), Budgets: st}), nil
}

// keyIDOf is the id of the key a GetKeyRequest names by id or by hash.
func (h *Handler) keyIDOf(ctx context.Context, m *budgetv1.GetKeyRequest) (string, error) {
	if m.GetKeyHash() == "" {
		id := m.GetKeyId()
		return id, checkID("key_id", scope.KindKey, id)
	}
	if m.GetKeyId() != "" {
		return "", invalid("key_hash", "give key_id or key_hash, not both")
	}
	hash, err := checkKeyHash(m.GetKeyHash())
	if err != nil {
		return "", err
	}
	k, err := h.keys.KeyByHash(ctx, hash)
	if err != nil {
		return "", h.fromStore(ctx, "get key by hash", err)
	}
	return k.ID, nil
}

// updatableKeyFields are the Key fields UpdateKey may change; the rest are
// assigned by the service.
var updatableKeyFields = []string{"key_alias", "team_id", "user_id", "org_id", "models", "tags", "metadata", "blocked", "expires_at"}

var readOnlyKeyFields = []string{"key_id", "key_alias_hint", "created_at"}

// checkMask validates an update mask against the updatable and read-only
// field names of a message.
func checkMask(fields, updatable, readOnly []string) (map[string]bool, error) {
	if len(fields) == 0 {
		return nil, invalid("update_fields", "is required: name the fields to change (%s)", strings.Join(updatable, ", "))
	}
	mask := map[string]bool{}
	for i, f := range fields {
		switch {
		case slices.Contains(updatable, f):
			mask[f] = true
		case slices.Contains(readOnly, f):
			return nil, invalid(fmt.Sprintf("update_fields[%d]", i), "%q cannot be changed", f)
		default:
			return nil, invalid(fmt.Sprintf("update_fields[%d]", i), "unknown field %q (updatable: %s)", f, strings.Join(updatable, ", "))
		}
	}
	return mask, nil
}

// UpdateKey implements BudgetServiceHandler. Only the fields named in
// update_fields change; a named field absent from key is cleared (e.g.
// "expires_at" with no expires_at removes the expiry). An expiry in the past
// is allowed here: it is how a key is expired now.
func (h *Handler) UpdateKey(ctx context.Context, req *connect.Request[budgetv1.UpdateKeyRequest]) (*connect.Response[budgetv1.UpdateKeyResponse], error) {
	in := req.Msg.GetKey()
	if in == nil {
		return nil, invalid("key", "is required")
	}
	if err := checkID("key.key_id", scope.KindKey, in.GetKeyId()); err != nil {
		return nil, err
	}
	mask, err := checkMask(req.Msg.GetUpdateFields(), updatableKeyFields, readOnlyKeyFields)
	if err != nil {
		return nil, err
	}
	v, err := keyFields(in, mask)
	if err != nil {
		return nil, err
	}
	updated, err := h.store.UpdateKey(ctx, in.GetKeyId(), func(k *store.Key) error {
		for f := range mask {
			switch f {
			case "key_alias":
				k.Alias = v.Alias
			case "team_id":
				k.TeamID = v.TeamID
			case "user_id":
				k.UserID = v.UserID
			case "org_id":
				k.OrgID = v.OrgID
			case "models":
				k.Models = v.Models
			case "tags":
				k.Tags = v.Tags
			case "metadata":
				k.Metadata = v.Metadata
			case "blocked":
				k.Blocked = v.Blocked
			case "expires_at":
				k.ExpiresAt = v.ExpiresAt
			}
		}
		return nil
	})
	if err != nil {
		return nil, h.fromStore(ctx, "update key", err)
	}
	h.log.InfoContext(ctx, "key updated", "key_id", updated.ID, "fields", req.Msg.GetUpdateFields())
	return connect.NewResponse(&budgetv1.UpdateKeyResponse{Key: keyProto(updated)}), nil
}

// DeleteKey implements BudgetServiceHandler. The key's budgets (key and
// key_model scopes) are deleted with it.
func (h *Handler) DeleteKey(ctx context.Context, req *connect.Request[budgetv1.DeleteKeyRequest]) (*connect.Response[budgetv1.DeleteKeyResponse], error) {
	id := req.Msg.GetKeyId()
	if err := checkID("key_id", scope.KindKey, id); err != nil {
		return nil, err
	}
	if err := h.store.DeleteKey(ctx, id); err != nil {
		return nil, h.fromStore(ctx, "delete key", err)
	}
	h.log.InfoContext(ctx, "key deleted", "key_id", id)
	return connect.NewResponse(&budgetv1.DeleteKeyResponse{}), nil
}

// ListKeys implements BudgetServiceHandler: keys in creation order (key ids
// are UUIDv7), optionally of one team and/or user.
func (h *Handler) ListKeys(ctx context.Context, req *connect.Request[budgetv1.ListKeysRequest]) (*connect.Response[budgetv1.ListKeysResponse], error) {
	m := req.Msg
	if err := checkOptionalID("team_id", scope.KindTeam, m.GetTeamId()); err != nil {
		return nil, err
	}
	if err := checkOptionalID("user_id", scope.KindUser, m.GetUserId()); err != nil {
		return nil, err
	}
	limit, err := pageSize(m.GetPageSize())
	if err != nil {
		return nil, err
	}
	filter := []string{"keys", m.GetTeamId(), m.GetUserId()}
	after, err := decodePageToken(m.GetPageToken(), 1, filter...)
	if err != nil {
		return nil, err
	}
	keys, err := h.store.ListKeys(ctx, store.KeyFilter{TeamID: m.GetTeamId(), UserID: m.GetUserId()},
		store.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, h.fromStore(ctx, "list keys", err)
	}
	keys, next := page(keys, limit, func(k store.Key) []string { return []string{k.ID} }, filter...)
	out := &budgetv1.ListKeysResponse{NextPageToken: next}
	for _, k := range keys {
		out.Keys = append(out.Keys, keyProto(k))
	}
	return connect.NewResponse(out), nil
}
