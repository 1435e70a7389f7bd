package scope

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Scope is one thing a budget can limit.
type Scope struct {
	Kind Kind
	// ID identifies the key, team, user, org, end user, tag, provider or
	// deployment. For the per-model kinds it is the key or end-user ID.
	ID string
	// ModelGroup is the model name the client asked for (the router's model
	// group), never the backend model. Set exactly for the per-model kinds.
	ModelGroup string
}

// MaxIDLen bounds ID and ModelGroup in bytes. End-user IDs and tags come from
// clients; without a bound one request could mint arbitrarily large Redis keys.
const MaxIDLen = 256

// Validate checks that s names exactly one counter-able thing. CounterKey
// does not validate (it is on the hot path and injective for any input), so
// budgets and identities should be validated where they enter the system.
func (s Scope) Validate() error {
	if !s.Kind.Valid() {
		return fmt.Errorf("scope: invalid kind %v", s.Kind)
	}
	if err := checkName("id", s.ID); err != nil {
		return fmt.Errorf("scope %v: %w", s.Kind, err)
	}
	switch {
	case s.Kind.PerModel():
		if err := checkName("model group", s.ModelGroup); err != nil {
			return fmt.Errorf("scope %v %q: %w", s.Kind, s.ID, err)
		}
	case s.ModelGroup != "":
		return fmt.Errorf("scope %v %q: model group %q set on a kind that is not per model", s.Kind, s.ID, s.ModelGroup)
	}
	return nil
}

// String renders s for logs and denial messages, e.g. "key_model sk-1
// claude-opus-4-6". It is not a key; see CounterKey.
func (s Scope) String() string {
	if s.ModelGroup != "" || s.Kind.PerModel() {
		return fmt.Sprintf("%v %q model %q", s.Kind, s.ID, s.ModelGroup)
	}
	return fmt.Sprintf("%v %q", s.Kind, s.ID)
}

// checkName rejects names that would make two spellings of one thing, or
// unreadable keys: empty, over MaxIDLen, invalid UTF-8, control characters,
// or surrounding white space ("team-a " and "team-a" must not be two
// counters — the same drift as bug 001, one byte wide).
func checkName(what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("empty %s", what)
	case len(v) > MaxIDLen:
		return fmt.Errorf("%s longer than %d bytes", what, MaxIDLen)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s %q is not valid UTF-8", what, v)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s %q contains control character %U", what, v, r)
		}
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return fmt.Errorf("%s %q has leading or trailing white space", what, v)
	}
	return nil
}
