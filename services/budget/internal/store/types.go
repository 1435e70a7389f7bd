package store

import (
	"context"
	"fmt"
	"time"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

// Key is a virtual key as stored, without its hash. Optional references are "".
type Key struct {
	ID        string
	AliasHint string // "sk-...a1b2": enough to recognise a key, not to use it
	Alias     string
	TeamID    string
	UserID    string
	OrgID     string
	Models    []string // allowed model groups; empty means all
	Tags      []string // sorted, deduplicated
	Metadata  map[string]string
	Blocked   bool
	ExpiresAt time.Time // zero: never expires
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Expired reports whether the key has expired at now.
func (k Key) Expired(now time.Time) bool { return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) }

// AuthKey is a key as authentication and admission need it: the key, its hash,
// and whether a principal it belongs to is blocked (blocking a team blocks
// every key of the team, as in LiteLLM).
type AuthKey struct {
	Key
	Hash        string
	TeamBlocked bool
	UserBlocked bool
	OrgBlocked  bool
}

// Refusal says why the key may not be used at now, or "" if it may:
// blocked, expired, or its team, user or org blocked. Authenticate and
// admission both ask it, so a key refused by one is refused by the other.
func (a AuthKey) Refusal(now time.Time) string {
	switch {
	case a.Blocked:
		return "blocked"
	case a.Expired(now):
		return "expired at " + a.ExpiresAt.Format(time.RFC3339)
	case a.TeamBlocked:
		return fmt.Sprintf("team %q is blocked", a.TeamID)
	case a.UserBlocked:
		return fmt.Sprintf("user %q is blocked", a.UserID)
	case a.OrgBlocked:
		return fmt.Sprintf("org %q is blocked", a.OrgID)
	}
	return ""
}

// NewKey is a key to create: the key and the hex SHA-256 of its clear text.
type NewKey struct {
	Key
	Hash string
}

// KeyFilter selects keys for ListKeys; empty fields match every key.
type KeyFilter struct {
	TeamID string
	UserID string
}

// PrincipalKinds are the scope kinds that name a principal row.
var PrincipalKinds = []scope.Kind{scope.KindTeam, scope.KindUser, scope.KindOrg, scope.KindEndUser, scope.KindTag}

// IsPrincipalKind reports whether k names a principal (team, user, org, end
// user or tag).
func IsPrincipalKind(k scope.Kind) bool {
	switch k {
	case scope.KindTeam, scope.KindUser, scope.KindOrg, scope.KindEndUser, scope.KindTag:
		return true
	}
	return false
}

// ImplicitKind reports whether principals of kind k are created on first
// reference (by a key or a budget) instead of having to exist. Users are, as in
// LiteLLM's /key/generate; end users and tags are, because requests name them
// freely. Teams and orgs must be created first: a typo in a team id must fail,
// not create a team without the budget the operator meant to attach.
func ImplicitKind(k scope.Kind) bool {
	return k == scope.KindUser || k == scope.KindEndUser || k == scope.KindTag
}

// Principal is a team, user, org, end user or tag.
type Principal struct {
	Kind      scope.Kind // one of PrincipalKinds
	ID        string
	Alias     string
	OrgID     string // teams and users only
	Metadata  map[string]string
	Blocked   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Owner is what a budget belongs to: deleting it deletes the budget. For key
// and key_model scopes it is the key, for principal scopes and end_user_model
// the principal; provider and deployment budgets have no owner (ok false).
func Owner(s scope.Scope) (kind scope.Kind, id string, ok bool) {
	switch s.Kind {
	case scope.KindKey, scope.KindKeyModel:
		return scope.KindKey, s.ID, true
	case scope.KindEndUserModel:
		return scope.KindEndUser, s.ID, true
	case scope.KindProvider, scope.KindDeployment:
		return 0, "", false
	}
	return s.Kind, s.ID, true
}

// BudgetInput is a validated budget to create or replace.
type BudgetInput struct {
	// ID names the budget to replace; empty creates one, or replaces the
	// budget already on the same scope and duration (keeping its id).
	ID       string
	Scope    scope.Scope
	Limit    money.Nanos
	Duration window.Duration // window.Lifetime for a budget that never resets
	// Calendar aligns windows to UTC; always false for lifetime budgets.
	Calendar bool
	// SoftThresholds are canonical decimal fractions in (0, 1], ascending.
	SoftThresholds []string
}

// Budget is a stored budget.
type Budget struct {
	ID             string
	Scope          scope.Scope
	Limit          money.Nanos
	Duration       window.Duration
	Calendar       bool
	Anchor         time.Time // creation second (rolling) or the Unix epoch (calendar, lifetime)
	SoftThresholds []string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Window is the budget's window spec, valid by construction.
func (b Budget) Window() window.Spec {
	if b.Duration.IsLifetime() {
		return window.LifetimeSpec()
	}
	return window.Spec{Duration: b.Duration, Anchor: b.Anchor, Calendar: b.Calendar}
}

// BudgetFilter selects budgets for ListBudgets. A zero Kind matches every
// budget; otherwise ID is required, and ModelGroup, when set, narrows a
// per-model kind to one model group.
type BudgetFilter struct {
	Kind       scope.Kind
	ID         string
	ModelGroup string
}

// Page bounds a list: rows strictly after After (the list's sort key,
// encoded by the caller's page token) and at most Limit of them.
type Page struct {
	After []string
	Limit int
}

// Store is the budget service's configuration store. Every method returns
// errors wrapping ErrNotFound, ErrAlreadyExists, ErrFailedPrecondition,
// ErrInvalid or ErrUnavailable where those apply (see errors.go).
type Store interface {
	CreateKey(ctx context.Context, k NewKey, budgets []BudgetInput) (Key, []Budget, error)
	GetKey(ctx context.Context, id string) (Key, error)
	// KeyByHash and KeyByID read a key for authentication and admission.
	KeyByHash(ctx context.Context, hash string) (AuthKey, error)
	KeyByID(ctx context.Context, id string) (AuthKey, error)
	// UpdateKey reads the key, applies update to it and writes it back, in
	// one transaction; update may return an error to abort.
	UpdateKey(ctx context.Context, id string, update func(*Key) error) (Key, error)
	// DeleteKey deletes the key and every budget it owns.
	DeleteKey(ctx context.Context, id string) error
	// ListKeys lists keys in key_id order; Page.After is [key_id].
	ListKeys(ctx context.Context, f KeyFilter, p Page) ([]Key, error)

	CreatePrincipal(ctx context.Context, p Principal, budgets []BudgetInput) (Principal, []Budget, error)
	GetPrincipal(ctx context.Context, kind scope.Kind, id string) (Principal, error)
	UpdatePrincipal(ctx context.Context, kind scope.Kind, id string, update func(*Principal) error) (Principal, error)
	// DeletePrincipal deletes the principal and every budget it owns. It fails
	// with ErrFailedPrecondition while keys or principals still reference it.
	DeletePrincipal(ctx context.Context, kind scope.Kind, id string) error
	// ListPrincipals lists principals of kind (every kind when 0) in (kind,
	// id) order; Page.After is [kind, id].
	ListPrincipals(ctx context.Context, kind scope.Kind, p Page) ([]Principal, error)

	// SetBudget creates or replaces a budget (see BudgetInput.ID).
	SetBudget(ctx context.Context, in BudgetInput) (Budget, error)
	DeleteBudget(ctx context.Context, id string) error
	// ListBudgets lists budgets in budget_id order; Page.After is [budget_id].
	ListBudgets(ctx context.Context, f BudgetFilter, p Page) ([]Budget, error)
	// BudgetsFor returns every budget on any of scopes (exact match, model
	// group included), ordered by scope as given and then by budget id.
	BudgetsFor(ctx context.Context, scopes []scope.Scope) ([]Budget, error)
	// BudgetsOwnedBy returns every budget whose scope has one of the given
	// (kind, id) pairs, whatever its model group: GetKey passes the key,
	// key_model, team, user and org pairs of a key.
	BudgetsOwnedBy(ctx context.Context, owners []scope.Scope) ([]Budget, error)
}
