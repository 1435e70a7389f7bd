package scope

import (
	"strings"
	"testing"
)

func TestValidateAccepts(t *testing.T) {
	for _, s := range []Scope{
		{Kind: KindKey, ID: "sk-abc"},
		{Kind: KindUser, ID: "ana@example.com"},
		{Kind: KindTag, ID: "team:eu west"}, // inner separators and spaces are fine: keys escape them
		{Kind: KindProvider, ID: "vertex_ai"},
		{Kind: KindEndUser, ID: "客户-7"},
		{Kind: KindKeyModel, ID: "sk-abc", ModelGroup: "claude-opus-4-6"},
		{Kind: KindEndUserModel, ID: "cust-1", ModelGroup: "gpt-4o"},
		{Kind: KindTeam, ID: strings.Repeat("t", MaxIDLen)},
	} {
		if err := s.Validate(); err != nil {
			t.Errorf("Validate(%v) = %v", s, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		s    Scope
		want string
	}{
		{Scope{ID: "x"}, "invalid kind"},
		{Scope{Kind: 99, ID: "x"}, "invalid kind"},
		{Scope{Kind: KindKey}, "empty id"},
		{Scope{Kind: KindTeam, ID: "a\nb"}, "control character"},
		{Scope{Kind: KindTeam, ID: "a\x7f"}, "control character"},
		{Scope{Kind: KindTeam, ID: "a\u0085"}, "control character"}, // C1 NEL
		{Scope{Kind: KindTeam, ID: "a\xffb"}, "UTF-8"},
		{Scope{Kind: KindTeam, ID: "team-a "}, "white space"},
		{Scope{Kind: KindTeam, ID: "\u00a0team-a"}, "white space"},
		{Scope{Kind: KindTeam, ID: strings.Repeat("t", MaxIDLen+1)}, "longer than"},
		{Scope{Kind: KindKeyModel, ID: "sk-1"}, "empty model group"},
		{Scope{Kind: KindEndUserModel, ID: "c", ModelGroup: " gpt-4o"}, "white space"},
		{Scope{Kind: KindKey, ID: "sk-1", ModelGroup: "gpt-4o"}, "not per model"},
	} {
		err := tc.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%#v) = %v, want error containing %q", tc.s, err, tc.want)
		}
	}
}

func TestScopeString(t *testing.T) {
	if got := (Scope{Kind: KindKeyModel, ID: "sk-1", ModelGroup: "gpt-4o"}).String(); got != `key_model "sk-1" model "gpt-4o"` {
		t.Errorf("got %s", got)
	}
	if got := (Scope{Kind: KindTag, ID: "prod"}).String(); got != `tag "prod"` {
		t.Errorf("got %s", got)
	}
}
