package scope

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spendledger/spendledger/ledger/window"
)

func fullIdentity() Identity {
	return Identity{
		KeyID:        "sk-1",
		TeamID:       "team-a",
		UserID:       "ana",
		OrgID:        "acme",
		EndUserID:    "cust-9",
		Tags:         []string{"prod", "batch", "", "prod"},
		ModelGroup:   "claude-opus-4-6",
		DeploymentID: "dep-vertex-1",
		Provider:     "vertex_ai",
		BackendModel: "vertex_ai/claude-opus-4-6@default",
	}
}

func TestScopesFullIdentity(t *testing.T) {
	id := fullIdentity()
	want := []Scope{
		{Kind: KindKey, ID: "sk-1"},
		{Kind: KindTeam, ID: "team-a"},
		{Kind: KindUser, ID: "ana"},
		{Kind: KindOrg, ID: "acme"},
		{Kind: KindEndUser, ID: "cust-9"},
		{Kind: KindTag, ID: "batch"},
		{Kind: KindTag, ID: "prod"},
		{Kind: KindProvider, ID: "vertex_ai"},
		{Kind: KindDeployment, ID: "dep-vertex-1"},
		{Kind: KindKeyModel, ID: "sk-1", ModelGroup: "claude-opus-4-6"},
		{Kind: KindEndUserModel, ID: "cust-9", ModelGroup: "claude-opus-4-6"},
	}
	got := id.Scopes()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Scopes() =\n%v\nwant\n%v", got, want)
	}
	if !reflect.DeepEqual(id.Tags, []string{"prod", "batch", "", "prod"}) {
		t.Errorf("Scopes() reordered the caller's tags: %q", id.Tags)
	}
	for _, s := range got {
		if err := s.Validate(); err != nil {
			t.Errorf("Scopes() produced invalid %v: %v", s, err)
		}
	}
	byKindThenID := func(a, b Scope) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		return strings.Compare(a.ID, b.ID)
	}
	if !slices.IsSortedFunc(got, byKindThenID) {
		t.Error("Scopes() not sorted by kind then ID")
	}
}

func TestScopesSkipsEmpty(t *testing.T) {
	if got := (Identity{}).Scopes(); len(got) != 0 {
		t.Errorf("empty identity has scopes %v", got)
	}
	// A model group alone is not a scope: the per-model kinds need their owner.
	if got := (Identity{ModelGroup: "gpt-4o", BackendModel: "openai/gpt-4o"}).Scopes(); len(got) != 0 {
		t.Errorf("model-only identity has scopes %v", got)
	}
	got := Identity{KeyID: "sk-1", Tags: []string{"", ""}}.Scopes()
	if want := []Scope{{Kind: KindKey, ID: "sk-1"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestScopesTagOrderDoesNotMatter(t *testing.T) {
	a := Identity{KeyID: "k", Tags: []string{"b", "a", "c", "a"}}.Scopes()
	b := Identity{KeyID: "k", Tags: []string{"c", "b", "a"}}.Scopes()
	if !reflect.DeepEqual(a, b) {
		t.Errorf("tag order or repeats changed scopes:\n%v\n%v", a, b)
	}
}

// Bug 001: LiteLLM tracked model_max_budget spend under the backend model and
// enforced it under the model group, so the budget never bit. The identity at
// admission (before routing, or routed to another deployment) and the one on
// the usage event differ in backend model; they must charge and check the
// same counters.
func TestBug001BackendModelNeverChangesScopesOrKeys(t *testing.T) {
	admission := fullIdentity()
	admission.BackendModel = "claude-opus-4-6"
	usage := fullIdentity()
	usage.BackendModel = "vertex_ai/claude-opus-4-6@default"

	as, us := admission.Scopes(), usage.Scopes()
	if !reflect.DeepEqual(as, us) {
		t.Fatalf("backend model changed scopes:\n%v\n%v", as, us)
	}
	w := window.Spec{Duration: window.MustParse("1d"), Calendar: true}
	for i := range as {
		if ak, uk := CounterKey(as[i], w, 20522), CounterKey(us[i], w, 20522); ak != uk {
			t.Errorf("admission key %q != projection key %q", ak, uk)
		}
		for _, v := range []string{as[i].ID, as[i].ModelGroup} {
			if strings.Contains(v, "@default") || strings.Contains(v, "vertex_ai/") {
				t.Errorf("scope %v carries the backend model", as[i])
			}
		}
	}
	perModel := 0
	for _, s := range us {
		if s.Kind.PerModel() {
			perModel++
			if s.ModelGroup != "claude-opus-4-6" {
				t.Errorf("%v: model group %q, want the requested model group", s, s.ModelGroup)
			}
		}
	}
	if perModel != 2 {
		t.Errorf("got %d per-model scopes, want key_model and end_user_model", perModel)
	}
}

func BenchmarkScopes(b *testing.B) {
	id := fullIdentity()
	for b.Loop() {
		_ = id.Scopes()
	}
}
