package scope

import (
	"cmp"
	"slices"
)

// Identity is who and what a request or usage event is for: the virtual key
// and what hangs off it, the client's end user and tags, the model group the
// client asked for, and the deployment the router chose.
type Identity struct {
	KeyID     string
	TeamID    string
	UserID    string
	OrgID     string
	EndUserID string
	Tags      []string

	// ModelGroup is what the client asked for, e.g. "claude-opus-4-6".
	ModelGroup string

	DeploymentID string
	Provider     string
	// BackendModel is the provider's name for the model, e.g.
	// "vertex_ai/claude-opus-4-6@default". It is for pricing and logs only:
	// no scope is ever built from it (see Scopes).
	BackendModel string
}

// Scopes returns every scope id touches, sorted by kind and then ID (kinds in
// declaration order, tags sorted and deduplicated). Empty IDs are skipped, and
// the per-model scopes need both their ID and ModelGroup.
//
// The per-model scopes use ModelGroup and never BackendModel. That is the fix
// for bug 001 (LiteLLM's model_max_budget keyed enforcement by the requested
// model and tracking by the deployment's model, so the limit was never
// enforced): the gateway at admission and the ledger at projection both see
// the same ModelGroup, so they derive the same scopes no matter how the
// provider decorates its model name.
//
// The result does not alias id.Tags.
func (id Identity) Scopes() []Scope {
	out := make([]Scope, 0, 9+len(id.Tags))
	add := func(k Kind, v string) {
		if v != "" {
			out = append(out, Scope{Kind: k, ID: v})
		}
	}
	add(KindKey, id.KeyID)
	add(KindTeam, id.TeamID)
	add(KindUser, id.UserID)
	add(KindOrg, id.OrgID)
	add(KindEndUser, id.EndUserID)

	// A set of tags, not a list: order and repeats in the request must not
	// change which counters are charged, or charge one counter twice.
	firstTag := len(out)
	for _, t := range id.Tags {
		add(KindTag, t)
	}
	tags := out[firstTag:]
	slices.SortFunc(tags, func(a, b Scope) int { return cmp.Compare(a.ID, b.ID) })
	out = out[:firstTag+len(slices.CompactFunc(tags, func(a, b Scope) bool { return a.ID == b.ID }))]

	add(KindProvider, id.Provider)
	add(KindDeployment, id.DeploymentID)
	if id.ModelGroup != "" {
		if id.KeyID != "" {
			out = append(out, Scope{Kind: KindKeyModel, ID: id.KeyID, ModelGroup: id.ModelGroup})
		}
		if id.EndUserID != "" {
			out = append(out, Scope{Kind: KindEndUserModel, ID: id.EndUserID, ModelGroup: id.ModelGroup})
		}
	}
	return out
}
