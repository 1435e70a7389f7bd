package api

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
)

// TestInvalidInputIsRejectedWithTheRightCode runs every CRUD call with bad
// input against a store holding one team ("t1"), one key ("k1", alias
// "taken") and one budget, and checks the Connect code and that the message
// names the field.
func TestInvalidInputIsRejectedWithTheRightCode(t *testing.T) {
	f := newFixture(t)
	f.createTeam(t, "t1")
	f.createKey(t, &budgetv1.Key{KeyId: "k1", KeyAlias: "taken", TeamId: "t1"})
	spec := func(mut func(*budgetv1.BudgetSpec)) *budgetv1.BudgetSpec {
		s := &budgetv1.BudgetSpec{Scope: teamScope("t1"), LimitUsd: "10", Duration: "1d"}
		mut(s)
		return s
	}
	longID := strings.Repeat("x", 300)
	team := budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM
	tag := budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG
	h := f.h
	c := ctx(t)

	type call = func() error
	cases := []struct {
		name  string
		call  call
		want  connect.Code
		field string // the message must start with it ("" skips the check)
	}{
		// Authenticate
		{"auth empty hash", func() error {
			_, err := h.Authenticate(c, connect.NewRequest(&budgetv1.AuthenticateRequest{}))
			return err
		}, connect.CodeInvalidArgument, "key_hash"},
		{"auth non-hex hash", func() error {
			_, err := h.Authenticate(c, connect.NewRequest(&budgetv1.AuthenticateRequest{KeyHash: strings.Repeat("z", 64)}))
			return err
		}, connect.CodeInvalidArgument, "key_hash"},
		{"auth unknown hash", func() error {
			_, err := h.Authenticate(c, connect.NewRequest(&budgetv1.AuthenticateRequest{KeyHash: strings.Repeat("a", 64)}))
			return err
		}, connect.CodeUnauthenticated, ""},

		// GetKey
		{"get key by id and hash", func() error {
			_, err := h.GetKey(c, connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: "k", KeyHash: strings.Repeat("a", 64)}))
			return err
		}, connect.CodeInvalidArgument, "key_hash"},
		{"get key bad hash", func() error {
			_, err := h.GetKey(c, connect.NewRequest(&budgetv1.GetKeyRequest{KeyHash: "abc"}))
			return err
		}, connect.CodeInvalidArgument, "key_hash"},
		{"get key unknown hash", func() error {
			_, err := h.GetKey(c, connect.NewRequest(&budgetv1.GetKeyRequest{KeyHash: strings.Repeat("a", 64)}))
			return err
		}, connect.CodeNotFound, ""},

		// CreateKey
		{"create key bad key_id", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{KeyId: " k"}}))
			return err
		}, connect.CodeInvalidArgument, "key.key_id"},
		{"create key long team_id", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{TeamId: longID}}))
			return err
		}, connect.CodeInvalidArgument, "key.team_id"},
		{"create key control char user_id", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{UserId: "a\nb"}}))
			return err
		}, connect.CodeInvalidArgument, "key.user_id"},
		{"create key bad model", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{Models: []string{"gpt-4o", ""}}}))
			return err
		}, connect.CodeInvalidArgument, "key.models[1]"},
		{"create key bad tag", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{Tags: []string{"prod "}}}))
			return err
		}, connect.CodeInvalidArgument, "key.tags[0]"},
		{"create key alias with newline", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{KeyAlias: "a\nb"}}))
			return err
		}, connect.CodeInvalidArgument, "key.key_alias"},
		{"create key too much metadata", func() error {
			m := map[string]string{}
			for i := range 65 {
				m[strings.Repeat("k", i+1)] = "v"
			}
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{Metadata: m}}))
			return err
		}, connect.CodeInvalidArgument, "key.metadata"},
		{"create key expired", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{ExpiresAt: timestamppb.New(t0.Add(-time.Hour))}}))
			return err
		}, connect.CodeInvalidArgument, "key.expires_at"},
		{"create key clear key without sk-", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{ClearKey: "pk-0123456789abcdef"}))
			return err
		}, connect.CodeInvalidArgument, "clear_key"},
		{"create key clear key too short", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{ClearKey: "sk-short"}))
			return err
		}, connect.CodeInvalidArgument, "clear_key"},
		{"create key clear key with space", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{ClearKey: "sk-0123456789 abcdef"}))
			return err
		}, connect.CodeInvalidArgument, "clear_key"},
		{"create key budget on a team", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Budgets: []*budgetv1.BudgetSpec{spec(func(*budgetv1.BudgetSpec) {})}}))
			return err
		}, connect.CodeInvalidArgument, "budgets[0].scope"},
		{"create key budget on another key", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{KeyId: "k2"},
				Budgets: []*budgetv1.BudgetSpec{spec(func(s *budgetv1.BudgetSpec) { s.Scope = keyScope("k1") })}}))
			return err
		}, connect.CodeInvalidArgument, "budgets[0].scope"},
		{"create key key_model budget without model", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Budgets: []*budgetv1.BudgetSpec{
				spec(func(s *budgetv1.BudgetSpec) { s.Scope = &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL} })}}))
			return err
		}, connect.CodeInvalidArgument, "budgets[0].scope"},
		{"create key budget with id", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Budgets: []*budgetv1.BudgetSpec{
				spec(func(s *budgetv1.BudgetSpec) { s.Scope, s.BudgetId = nil, "b1" })}}))
			return err
		}, connect.CodeInvalidArgument, "budgets[0].budget_id"},
		{"create key two budgets on one slot", func() error {
			b := func(d string) *budgetv1.BudgetSpec {
				return spec(func(s *budgetv1.BudgetSpec) { s.Scope, s.Duration = nil, d })
			}
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Budgets: []*budgetv1.BudgetSpec{b("1d"), b("24h")}}))
			return err
		}, connect.CodeInvalidArgument, "budgets[1]"},
		{"create key bad budget limit", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Budgets: []*budgetv1.BudgetSpec{
				spec(func(s *budgetv1.BudgetSpec) { s.Scope, s.LimitUsd = nil, "1.0000000001" })}}))
			return err
		}, connect.CodeInvalidArgument, "budgets[0].limit_usd"},
		{"create key duplicate key_id", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{KeyId: "k1"}}))
			return err
		}, connect.CodeAlreadyExists, ""},
		{"create key duplicate alias", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{KeyAlias: "taken"}}))
			return err
		}, connect.CodeAlreadyExists, ""},
		{"create key missing team", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{TeamId: "nope"}}))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"create key missing org", func() error {
			_, err := h.CreateKey(c, connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{OrgId: "nope"}}))
			return err
		}, connect.CodeFailedPrecondition, ""},

		// GetKey, DeleteKey
		{"get key empty id", func() error {
			_, err := h.GetKey(c, connect.NewRequest(&budgetv1.GetKeyRequest{}))
			return err
		}, connect.CodeInvalidArgument, "key_id"},
		{"get key unknown", func() error {
			_, err := h.GetKey(c, connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: "nope"}))
			return err
		}, connect.CodeNotFound, ""},
		{"delete key empty id", func() error {
			_, err := h.DeleteKey(c, connect.NewRequest(&budgetv1.DeleteKeyRequest{}))
			return err
		}, connect.CodeInvalidArgument, "key_id"},
		{"delete key unknown", func() error {
			_, err := h.DeleteKey(c, connect.NewRequest(&budgetv1.DeleteKeyRequest{KeyId: "nope"}))
			return err
		}, connect.CodeNotFound, ""},

		// UpdateKey
		{"update key nil key", func() error {
			_, err := h.UpdateKey(c, connect.NewRequest(&budgetv1.UpdateKeyRequest{UpdateFields: []string{"blocked"}}))
			return err
		}, connect.CodeInvalidArgument, "key"},
		{"update key no id", func() error {
			_, err := h.UpdateKey(c, connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{}, UpdateFields: []string{"blocked"}}))
			return err
		}, connect.CodeInvalidArgument, "key.key_id"},
		{"update key empty mask", func() error {
			_, err := h.UpdateKey(c, connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{KeyId: "k1"}}))
			return err
		}, connect.CodeInvalidArgument, "update_fields"},
		{"update key unknown field", func() error {
			_, err := h.UpdateKey(c, connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{KeyId: "k1"}, UpdateFields: []string{"blocked", "colour"}}))
			return err
		}, connect.CodeInvalidArgument, "update_fields[1]"},
		{"update key read-only field", func() error {
			_, err := h.UpdateKey(c, connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{KeyId: "k1"}, UpdateFields: []string{"key_alias_hint"}}))
			return err
		}, connect.CodeInvalidArgument, "update_fields[0]"},
		{"update key bad value in mask", func() error {
			_, err := h.UpdateKey(c, connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{KeyId: "k1", TeamId: " t"}, UpdateFields: []string{"team_id"}}))
			return err
		}, connect.CodeInvalidArgument, "key.team_id"},
		{"update key unknown key", func() error {
			_, err := h.UpdateKey(c, connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{KeyId: "nope"}, UpdateFields: []string{"blocked"}}))
			return err
		}, connect.CodeNotFound, ""},
		{"update key to missing team", func() error {
			_, err := h.UpdateKey(c, connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{KeyId: "k1", TeamId: "nope"}, UpdateFields: []string{"team_id"}}))
			return err
		}, connect.CodeFailedPrecondition, ""},

		// ListKeys
		{"list keys negative page size", func() error {
			_, err := h.ListKeys(c, connect.NewRequest(&budgetv1.ListKeysRequest{PageSize: -1}))
			return err
		}, connect.CodeInvalidArgument, "page_size"},
		{"list keys garbage token", func() error {
			_, err := h.ListKeys(c, connect.NewRequest(&budgetv1.ListKeysRequest{PageToken: "!!"}))
			return err
		}, connect.CodeInvalidArgument, "page_token"},
		{"list keys bad team filter", func() error {
			_, err := h.ListKeys(c, connect.NewRequest(&budgetv1.ListKeysRequest{TeamId: " t1"}))
			return err
		}, connect.CodeInvalidArgument, "team_id"},

		// Principals
		{"create principal nil", func() error {
			_, err := h.CreatePrincipal(c, connect.NewRequest(&budgetv1.CreatePrincipalRequest{}))
			return err
		}, connect.CodeInvalidArgument, "principal"},
		{"create principal no kind", func() error {
			_, err := h.CreatePrincipal(c, connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Id: "x"}}))
			return err
		}, connect.CodeInvalidArgument, "principal.kind"},
		{"create principal unknown kind", func() error {
			_, err := h.CreatePrincipal(c, connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: 99, Id: "x"}}))
			return err
		}, connect.CodeInvalidArgument, "principal.kind"},
		{"create principal no id", func() error {
			_, err := h.CreatePrincipal(c, connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: team}}))
			return err
		}, connect.CodeInvalidArgument, "principal.id"},
		{"create tag with org", func() error {
			_, err := h.CreatePrincipal(c, connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: tag, Id: "x", OrgId: "o"}}))
			return err
		}, connect.CodeInvalidArgument, "principal.org_id"},
		{"create principal budget on other kind", func() error {
			_, err := h.CreatePrincipal(c, connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: team, Id: "t9"},
				Budgets: []*budgetv1.BudgetSpec{spec(func(s *budgetv1.BudgetSpec) { s.Scope = keyScope("k1") })}}))
			return err
		}, connect.CodeInvalidArgument, "budgets[0].scope"},
		{"create principal duplicate", func() error {
			_, err := h.CreatePrincipal(c, connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: team, Id: "t1"}}))
			return err
		}, connect.CodeAlreadyExists, ""},
		{"create team in missing org", func() error {
			_, err := h.CreatePrincipal(c, connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: team, Id: "t9", OrgId: "nope"}}))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"get principal no kind", func() error {
			_, err := h.GetPrincipal(c, connect.NewRequest(&budgetv1.GetPrincipalRequest{Id: "t1"}))
			return err
		}, connect.CodeInvalidArgument, "kind"},
		{"get principal no id", func() error {
			_, err := h.GetPrincipal(c, connect.NewRequest(&budgetv1.GetPrincipalRequest{Kind: team}))
			return err
		}, connect.CodeInvalidArgument, "id"},
		{"get principal unknown", func() error {
			_, err := h.GetPrincipal(c, connect.NewRequest(&budgetv1.GetPrincipalRequest{Kind: team, Id: "nope"}))
			return err
		}, connect.CodeNotFound, ""},
		{"update principal read-only", func() error {
			_, err := h.UpdatePrincipal(c, connect.NewRequest(&budgetv1.UpdatePrincipalRequest{Principal: &budgetv1.Principal{Kind: team, Id: "t1"}, UpdateFields: []string{"id"}}))
			return err
		}, connect.CodeInvalidArgument, "update_fields[0]"},
		{"update principal unknown field", func() error {
			_, err := h.UpdatePrincipal(c, connect.NewRequest(&budgetv1.UpdatePrincipalRequest{Principal: &budgetv1.Principal{Kind: team, Id: "t1"}, UpdateFields: []string{"budget"}}))
			return err
		}, connect.CodeInvalidArgument, "update_fields[0]"},
		{"update principal unknown", func() error {
			_, err := h.UpdatePrincipal(c, connect.NewRequest(&budgetv1.UpdatePrincipalRequest{Principal: &budgetv1.Principal{Kind: team, Id: "nope"}, UpdateFields: []string{"alias"}}))
			return err
		}, connect.CodeNotFound, ""},
		{"delete principal unknown", func() error {
			_, err := h.DeletePrincipal(c, connect.NewRequest(&budgetv1.DeletePrincipalRequest{Kind: team, Id: "nope"}))
			return err
		}, connect.CodeNotFound, ""},
		{"delete team with keys", func() error {
			_, err := h.DeletePrincipal(c, connect.NewRequest(&budgetv1.DeletePrincipalRequest{Kind: team, Id: "t1"}))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"list principals bad kind", func() error {
			_, err := h.ListPrincipals(c, connect.NewRequest(&budgetv1.ListPrincipalsRequest{Kind: 42}))
			return err
		}, connect.CodeInvalidArgument, "kind"},

		// Budgets
		{"set budget no spec", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{}))
			return err
		}, connect.CodeInvalidArgument, "spec"},
		{"set budget no scope", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.Scope = nil })}))
			return err
		}, connect.CodeInvalidArgument, "spec.scope"},
		{"set budget model group on team", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.Scope.ModelGroup = "gpt-4o" })}))
			return err
		}, connect.CodeInvalidArgument, "spec.scope"},
		{"set budget no limit", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.LimitUsd = "" })}))
			return err
		}, connect.CodeInvalidArgument, "spec.limit_usd"},
		{"set budget negative limit", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.LimitUsd = "-1" })}))
			return err
		}, connect.CodeInvalidArgument, "spec.limit_usd"},
		{"set budget float-ish limit", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.LimitUsd = "NaN" })}))
			return err
		}, connect.CodeInvalidArgument, "spec.limit_usd"},
		{"set budget bad duration", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.Duration = "1 day" })}))
			return err
		}, connect.CodeInvalidArgument, "spec.duration"},
		{"set budget threshold zero", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.SoftThresholds = []string{"0.5", "0"} })}))
			return err
		}, connect.CodeInvalidArgument, "spec.soft_thresholds[1]"},
		{"set budget threshold above one", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.SoftThresholds = []string{"1.01"} })}))
			return err
		}, connect.CodeInvalidArgument, "spec.soft_thresholds[0]"},
		{"set budget threshold not a number", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.SoftThresholds = []string{"80%"} })}))
			return err
		}, connect.CodeInvalidArgument, "spec.soft_thresholds[0]"},
		{"set budget unknown id", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.BudgetId = "nope" })}))
			return err
		}, connect.CodeNotFound, ""},
		{"set budget on missing team", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.Scope = teamScope("nope") })}))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"set budget on missing key", func() error {
			_, err := h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec(func(s *budgetv1.BudgetSpec) { s.Scope = keyScope("nope") })}))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"delete budget no id", func() error {
			_, err := h.DeleteBudget(c, connect.NewRequest(&budgetv1.DeleteBudgetRequest{}))
			return err
		}, connect.CodeInvalidArgument, "budget_id"},
		{"delete budget unknown", func() error {
			_, err := h.DeleteBudget(c, connect.NewRequest(&budgetv1.DeleteBudgetRequest{BudgetId: "nope"}))
			return err
		}, connect.CodeNotFound, ""},
		{"list budgets kind without id", func() error {
			_, err := h.ListBudgets(c, connect.NewRequest(&budgetv1.ListBudgetsRequest{Scope: &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_TEAM}}))
			return err
		}, connect.CodeInvalidArgument, "scope"},
		{"list budgets id without kind", func() error {
			_, err := h.ListBudgets(c, connect.NewRequest(&budgetv1.ListBudgetsRequest{Scope: &eventsv1.Scope{Id: "t1"}}))
			return err
		}, connect.CodeInvalidArgument, "scope"},
		{"list budgets page size", func() error {
			_, err := h.ListBudgets(c, connect.NewRequest(&budgetv1.ListBudgetsRequest{PageSize: -5}))
			return err
		}, connect.CodeInvalidArgument, "page_size"},

		// Admission is not wired.
		{"admit unimplemented", func() error {
			_, err := h.Admit(c, connect.NewRequest(&budgetv1.AdmitRequest{}))
			return err
		}, connect.CodeUnimplemented, ""},
		{"release unimplemented", func() error {
			_, err := h.Release(c, connect.NewRequest(&budgetv1.ReleaseRequest{}))
			return err
		}, connect.CodeUnimplemented, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantCode(t, tc.name, err, tc.want)
			if msg := err.(*connect.Error).Message(); tc.field != "" && !strings.HasPrefix(msg, tc.field+":") {
				t.Errorf("message %q does not start with %q", msg, tc.field+":")
			}
		})
	}
}

// A token from one list must not page another.
func TestPageTokenIsBoundToItsFilter(t *testing.T) {
	f := newFixture(t)
	f.createTeam(t, "t1")
	for range 3 {
		f.createKey(t, &budgetv1.Key{TeamId: "t1"})
	}
	r := must[budgetv1.ListKeysResponse](t)(f.h.ListKeys(ctx(t), connect.NewRequest(&budgetv1.ListKeysRequest{TeamId: "t1", PageSize: 1})))
	if r.NextPageToken == "" {
		t.Fatal("want a next page")
	}
	_, err := f.h.ListKeys(ctx(t), connect.NewRequest(&budgetv1.ListKeysRequest{UserId: "u", PageToken: r.NextPageToken}))
	wantCode(t, "token with another filter", err, connect.CodeInvalidArgument)
	_, err = f.h.ListBudgets(ctx(t), connect.NewRequest(&budgetv1.ListBudgetsRequest{PageToken: r.NextPageToken}))
	wantCode(t, "token of another list", err, connect.CodeInvalidArgument)
}

// An unreachable store is Unavailable, never Internal or a silent empty answer.
func TestStoreDownIsUnavailable(t *testing.T) {
	f := newFixture(t)
	f.st.Err = errDownStore
	c := ctx(t)
	for name, call := range map[string]func() error{
		"get key": func() error {
			_, err := f.h.GetKey(c, connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: "k"}))
			return err
		},
		"authenticate": func() error {
			_, err := f.h.Authenticate(c, connect.NewRequest(&budgetv1.AuthenticateRequest{KeyHash: strings.Repeat("a", 64)}))
			return err
		},
		"set budget": func() error {
			_, err := f.h.SetBudget(c, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: &budgetv1.BudgetSpec{
				Scope: &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_PROVIDER, Id: "openai"}, LimitUsd: "1"}}))
			return err
		},
		"list keys": func() error {
			_, err := f.h.ListKeys(c, connect.NewRequest(&budgetv1.ListKeysRequest{}))
			return err
		},
	} {
		wantCode(t, name, call(), connect.CodeUnavailable)
	}
}

// An error the store did not classify is Internal, and its text (which may
// hold SQL) stays in the log.
func TestUnclassifiedStoreErrorIsInternalWithoutDetails(t *testing.T) {
	f := newFixture(t)
	f.st.Err = errDown
	_, err := f.h.GetKey(ctx(t), connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: "k"}))
	wantCode(t, "get key", err, connect.CodeInternal)
	if strings.Contains(err.Error(), errDown.Error()) {
		t.Errorf("internal error leaks its cause: %v", err)
	}
}
