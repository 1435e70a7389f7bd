package cache

import (
	"testing"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

func (e *env) blocked(t *testing.T, principals ...scope.Scope) string {
	t.Helper()
	p, ok, err := e.cache.Blocked(ctx, principals)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return p.Kind.String() + ":" + p.ID
}

func (e *env) setBlocked(t *testing.T, p scope.Scope, blocked bool) {
	t.Helper()
	_, err := e.src.UpdatePrincipal(ctx, p.Kind, p.ID, func(row *store.Principal) error {
		row.Blocked = blocked
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBlockedPrincipals: unknown principals are not blocked and that answer
// is cached; blocking and unblocking (principal writes) are seen at once;
// the first blocked principal in the order given is named.
func TestBlockedPrincipals(t *testing.T) {
	e := newEnv(t)
	user := scope.Scope{Kind: scope.KindEndUser, ID: "cust-1"}
	tagB := scope.Scope{Kind: scope.KindTag, ID: "b"}
	for range 3 {
		if got := e.blocked(t, user, tagA); got != "" {
			t.Fatalf("nobody exists yet, but %s is blocked", got)
		}
	}
	if n := e.src.principalReads.Load(); n != 2 {
		t.Fatalf("%d principal reads for 3 lookups of 2 principals; want 2 (not-found cached)", n)
	}

	for _, p := range []scope.Scope{user, tagA, tagB} {
		if _, _, err := e.src.CreatePrincipal(ctx, store.Principal{Kind: p.Kind, ID: p.ID}, nil); err != nil {
			t.Fatal(err)
		}
	}
	e.setBlocked(t, tagB, true)
	if got := e.blocked(t, user, tagA, tagB); got != "tag:b" {
		t.Fatalf("blocked %q; want tag:b", got)
	}
	e.setBlocked(t, user, true)
	if got := e.blocked(t, user, tagA, tagB); got != "end_user:cust-1" {
		t.Fatalf("blocked %q; want end_user:cust-1 (first in order)", got)
	}
	before := e.src.principalReads.Load()
	if got := e.blocked(t, tagB, user); got != "tag:b" {
		t.Fatalf("blocked %q from the cache; want tag:b", got)
	}
	if n := e.src.principalReads.Load(); n != before {
		t.Fatalf("%d reads for a warm lookup; want 0", n-before)
	}
	e.setBlocked(t, user, false)
	e.setBlocked(t, tagB, false)
	if got := e.blocked(t, user, tagA, tagB); got != "" {
		t.Fatalf("after unblocking, %s is still blocked", got)
	}
}
