// Package protoconv converts between the wire types in gen/ and the domain
// types in ledger/, in one place for every service, so a scope means the same
// thing in the budget service's admission and the ledger service's queries.
package protoconv

import (
	"fmt"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/scope"
)

var kindToProto = map[scope.Kind]eventsv1.ScopeKind{
	scope.KindKey:          eventsv1.ScopeKind_SCOPE_KIND_KEY,
	scope.KindTeam:         eventsv1.ScopeKind_SCOPE_KIND_TEAM,
	scope.KindUser:         eventsv1.ScopeKind_SCOPE_KIND_USER,
	scope.KindOrg:          eventsv1.ScopeKind_SCOPE_KIND_ORG,
	scope.KindEndUser:      eventsv1.ScopeKind_SCOPE_KIND_END_USER,
	scope.KindTag:          eventsv1.ScopeKind_SCOPE_KIND_TAG,
	scope.KindProvider:     eventsv1.ScopeKind_SCOPE_KIND_PROVIDER,
	scope.KindDeployment:   eventsv1.ScopeKind_SCOPE_KIND_DEPLOYMENT,
	scope.KindKeyModel:     eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL,
	scope.KindEndUserModel: eventsv1.ScopeKind_SCOPE_KIND_END_USER_MODEL,
}

var kindFromProto = func() map[eventsv1.ScopeKind]scope.Kind {
	m := make(map[eventsv1.ScopeKind]scope.Kind, len(kindToProto))
	for k, v := range kindToProto {
		m[v] = k
	}
	return m
}()

// Scope converts and validates a wire scope. The error names what is wrong,
// for an InvalidArgument answer.
func Scope(p *eventsv1.Scope) (scope.Scope, error) {
	if p == nil {
		return scope.Scope{}, fmt.Errorf("scope is required")
	}
	k, ok := kindFromProto[p.GetKind()]
	if !ok {
		return scope.Scope{}, fmt.Errorf("scope.kind %v is not a scope kind", p.GetKind())
	}
	s := scope.Scope{Kind: k, ID: p.GetId(), ModelGroup: p.GetModelGroup()}
	if err := s.Validate(); err != nil {
		return scope.Scope{}, fmt.Errorf("scope: %w", err)
	}
	return s, nil
}

// ScopeProto converts a domain scope to the wire.
func ScopeProto(s scope.Scope) *eventsv1.Scope {
	return &eventsv1.Scope{Kind: kindToProto[s.Kind], Id: s.ID, ModelGroup: s.ModelGroup}
}
