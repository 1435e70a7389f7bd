package protoconv

import (
	"testing"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/scope"
)

func TestEveryScopeKindRoundTrips(t *testing.T) {
	for _, k := range scope.Kinds() {
		s := scope.Scope{Kind: k, ID: "id-1"}
		if k.PerModel() {
			s.ModelGroup = "gpt-4o"
		}
		got, err := Scope(ScopeProto(s))
		if err != nil || got != s {
			t.Fatalf("%v: round trip gave %v, %v", k, got, err)
		}
	}
	if len(kindToProto) != len(scope.Kinds()) {
		t.Fatalf("%d kinds mapped; the domain has %d", len(kindToProto), len(scope.Kinds()))
	}
}

func TestInvalidWireScopesAreRejected(t *testing.T) {
	for name, p := range map[string]*eventsv1.Scope{
		"nil":              nil,
		"unspecified kind": {Id: "x"},
		"empty id":         {Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY},
		"model on key":     {Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, Id: "k"},
	} {
		if _, err := Scope(p); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
