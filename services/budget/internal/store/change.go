package store

import (
	"fmt"
	"strings"

	"github.com/spendledger/spendledger/ledger/scope"
)

// Channel is the Postgres NOTIFY channel every write announces its changes on
// and every instance's cache listens to.
const Channel = "spendledger_budget_changed"

// Change says what a committed write may have made stale. It is deliberately
// coarse (an owner, not a row) so that one notification covers every cached
// entry that could depend on the write, including cascaded deletes.
type Change struct {
	// KeyID, when set: the key changed, was created or deleted, together with
	// its key and key_model budgets.
	KeyID string
	// Kind and ID, when KeyID is empty: budgets on scopes of this kind and id
	// (any model group) changed, or the principal (Kind, ID) changed. A
	// principal's change is announced under its own kind; an end user's also
	// under end_user_model, whose budgets it owns.
	Kind scope.Kind
	ID   string
	// All: drop everything (unparseable payloads from a newer writer, too).
	All bool
}

// KeyChange announces a change to the key id.
func KeyChange(id string) Change { return Change{KeyID: id} }

// ScopeChange announces a change to budgets on (kind, id), or to the
// principal (kind, id).
func ScopeChange(k scope.Kind, id string) Change { return Change{Kind: k, ID: id} }

// ownerChanges are the changes that cover every budget on s and its owner.
func ownerChanges(s scope.Scope) []Change {
	switch s.Kind {
	case scope.KindKey, scope.KindKeyModel:
		return []Change{KeyChange(s.ID)}
	}
	return []Change{ScopeChange(s.Kind, s.ID)}
}

// principalChanges covers a principal and every budget it owns.
func principalChanges(k scope.Kind, id string) []Change {
	cs := []Change{ScopeChange(k, id)}
	if k == scope.KindEndUser {
		cs = append(cs, ScopeChange(scope.KindEndUserModel, id))
	}
	return cs
}

// Payload is the NOTIFY payload: "key:<id>", "scope:<kind>:<id>" or "all".
// IDs are the rest of the payload, so they may hold any character; they are at
// most scope.MaxIDLen bytes, far below NOTIFY's 8000-byte limit.
func (c Change) Payload() string {
	switch {
	case c.All:
		return "all"
	case c.KeyID != "":
		return "key:" + c.KeyID
	}
	return "scope:" + c.Kind.String() + ":" + c.ID
}

// ParseChange reads a Payload. An unknown or malformed payload is an error;
// the listener then drops everything rather than guess.
func ParseChange(p string) (Change, error) {
	switch {
	case p == "all":
		return Change{All: true}, nil
	case strings.HasPrefix(p, "key:") && len(p) > len("key:"):
		return KeyChange(p[len("key:"):]), nil
	case strings.HasPrefix(p, "scope:"):
		kind, id, ok := strings.Cut(p[len("scope:"):], ":")
		k, err := scope.ParseKind(kind)
		if !ok || err != nil || id == "" {
			break
		}
		return ScopeChange(k, id), nil
	}
	return Change{}, fmt.Errorf("store: unknown change payload %q", p)
}
