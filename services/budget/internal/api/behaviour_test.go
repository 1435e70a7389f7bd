package api

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

func (f *fixture) authenticate(t *testing.T, clear string) (*budgetv1.Key, error) {
	t.Helper()
	r, err := f.h.Authenticate(ctx(t), connect.NewRequest(&budgetv1.AuthenticateRequest{KeyHash: hashKey(clear)}))
	if err != nil {
		return nil, err
	}
	return r.Msg.GetKey(), nil
}

func TestCreateKeyMintsKeyIDAndHint(t *testing.T) {
	f := newFixture(t)
	r := f.createKey(t, &budgetv1.Key{KeyAlias: "ci"})
	if !regexp.MustCompile(`^sk-[A-Za-z0-9_-]{43}$`).MatchString(r.ClearKey) {
		t.Fatalf("clear key %q: want sk- and 43 base64url characters", r.ClearKey)
	}
	id, err := uuid.Parse(r.Key.KeyId)
	if err != nil || id.Version() != 7 {
		t.Fatalf("key id %q: want a UUIDv7 (%v)", r.Key.KeyId, err)
	}
	if want := "sk-..." + r.ClearKey[len(r.ClearKey)-4:]; r.Key.KeyAliasHint != want {
		t.Errorf("hint %q; want %q", r.Key.KeyAliasHint, want)
	}
	got, err := f.authenticate(t, r.ClearKey)
	if err != nil || got.KeyId != r.Key.KeyId || got.KeyAlias != "ci" {
		t.Fatalf("authenticate: %v, %v", got, err)
	}
	// Two generated keys differ.
	if r2 := f.createKey(t, nil); r2.ClearKey == r.ClearKey {
		t.Fatal("two generated keys are equal")
	}
}

func TestGetKeyByHashFindsABlockedKey(t *testing.T) {
	f := newFixture(t)
	r := f.createKey(t, &budgetv1.Key{KeyAlias: "b", Blocked: true})
	_, err := f.authenticate(t, r.ClearKey)
	wantCode(t, "authenticate a blocked key", err, connect.CodePermissionDenied)
	got, err := f.h.GetKey(ctx(t), connect.NewRequest(&budgetv1.GetKeyRequest{KeyHash: hashKey(r.ClearKey)}))
	if err != nil || got.Msg.GetKey().GetKeyId() != r.Key.KeyId || !got.Msg.GetKey().GetBlocked() {
		t.Fatalf("get key by hash: %v, %v", got, err)
	}
}

func TestCallerChosenClearKeyAuthenticates(t *testing.T) {
	f := newFixture(t)
	must[budgetv1.CreateKeyResponse](t)(f.h.CreateKey(ctx(t), connect.NewRequest(&budgetv1.CreateKeyRequest{ClearKey: "sk-my-own-key-0001"})))
	if _, err := f.authenticate(t, "sk-my-own-key-0001"); err != nil {
		t.Fatal(err)
	}
	_, err := f.h.CreateKey(ctx(t), connect.NewRequest(&budgetv1.CreateKeyRequest{ClearKey: "sk-my-own-key-0001"}))
	wantCode(t, "same clear key twice", err, connect.CodeAlreadyExists)
}

func TestAuthenticateRefusesBlockedExpiredAndBlockedTeam(t *testing.T) {
	f := newFixture(t)
	f.createTeam(t, "t1")
	r := f.createKey(t, &budgetv1.Key{TeamId: "t1", ExpiresAt: timestamppb.New(t0.Add(time.Hour))})
	if _, err := f.authenticate(t, r.ClearKey); err != nil {
		t.Fatal(err)
	}
	update := func(k *budgetv1.Key, fields ...string) {
		k.KeyId = r.Key.KeyId
		must[budgetv1.UpdateKeyResponse](t)(f.h.UpdateKey(ctx(t), connect.NewRequest(&budgetv1.UpdateKeyRequest{Key: k, UpdateFields: fields})))
	}

	update(&budgetv1.Key{Blocked: true}, "blocked")
	_, err := f.authenticate(t, r.ClearKey)
	wantCode(t, "blocked key", err, connect.CodePermissionDenied)
	update(&budgetv1.Key{}, "blocked")

	f.now = t0.Add(time.Hour)
	_, err = f.authenticate(t, r.ClearKey)
	wantCode(t, "expired key", err, connect.CodePermissionDenied)
	update(&budgetv1.Key{}, "expires_at") // clears the expiry
	if _, err := f.authenticate(t, r.ClearKey); err != nil {
		t.Fatalf("after clearing the expiry: %v", err)
	}

	must[budgetv1.UpdatePrincipalResponse](t)(f.h.UpdatePrincipal(ctx(t), connect.NewRequest(&budgetv1.UpdatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM, Id: "t1", Blocked: true}, UpdateFields: []string{"blocked"}})))
	_, err = f.authenticate(t, r.ClearKey)
	wantCode(t, "key of a blocked team", err, connect.CodePermissionDenied)

	_, err = f.authenticate(t, "sk-never-issued-0000")
	wantCode(t, "unknown key", err, connect.CodeUnauthenticated)
}

func TestUpdateKeyChangesOnlyTheMaskedFields(t *testing.T) {
	f := newFixture(t)
	r := f.createKey(t, &budgetv1.Key{KeyAlias: "a", Models: []string{"gpt-4o"}, Tags: []string{"b", "a", "b"}, Metadata: map[string]string{"x": "1"}})
	if !slices.Equal(r.Key.Tags, []string{"a", "b"}) {
		t.Errorf("tags %q; want a sorted set", r.Key.Tags)
	}
	u := must[budgetv1.UpdateKeyResponse](t)(f.h.UpdateKey(ctx(t), connect.NewRequest(&budgetv1.UpdateKeyRequest{
		Key:          &budgetv1.Key{KeyId: r.Key.KeyId, KeyAlias: "ignored", Models: []string{"claude-opus-4-6", "gpt-4o", "claude-opus-4-6"}},
		UpdateFields: []string{"models"},
	})))
	if u.Key.KeyAlias != "a" || !slices.Equal(u.Key.Models, []string{"claude-opus-4-6", "gpt-4o"}) || u.Key.Metadata["x"] != "1" {
		t.Fatalf("after update: %v", u.Key)
	}
}

func TestUsersAreImplicitTeamsAreNot(t *testing.T) {
	f := newFixture(t)
	f.createKey(t, &budgetv1.Key{UserId: "ana"})
	user := budgetv1.PrincipalKind_PRINCIPAL_KIND_USER
	must[budgetv1.GetPrincipalResponse](t)(f.h.GetPrincipal(ctx(t), connect.NewRequest(&budgetv1.GetPrincipalRequest{Kind: user, Id: "ana"})))
	_, err := f.h.CreatePrincipal(ctx(t), connect.NewRequest(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: user, Id: "ana"}}))
	wantCode(t, "create an implicit user again", err, connect.CodeAlreadyExists)
	_, err = f.h.CreateKey(ctx(t), connect.NewRequest(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{TeamId: "t-typo"}}))
	wantCode(t, "key of a missing team", err, connect.CodeFailedPrecondition)
}

func TestSetBudgetReplacesOnSameScopeAndDuration(t *testing.T) {
	f := newFixture(t)
	f.createTeam(t, "t1")
	set := func(spec *budgetv1.BudgetSpec) *budgetv1.Budget {
		return must[budgetv1.SetBudgetResponse](t)(f.h.SetBudget(ctx(t), connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec}))).Budget
	}
	a := set(&budgetv1.BudgetSpec{Scope: teamScope("t1"), LimitUsd: "10.50", Duration: "24h", SoftThresholds: []string{"0.90", "0.5", "0.9"}})
	if a.LimitNanos != 10_500_000_000 || a.Spec.LimitUsd != "10.5" || a.Spec.Duration != "1d" {
		t.Fatalf("created %v", a)
	}
	if !slices.Equal(a.Spec.SoftThresholds, []string{"0.5", "0.9"}) {
		t.Errorf("thresholds %q; want canonical, ascending, deduplicated", a.Spec.SoftThresholds)
	}
	if !a.Anchor.AsTime().Equal(t0) {
		t.Errorf("anchor %v; want the creation time %v", a.Anchor.AsTime(), t0)
	}
	f.now = t0.Add(time.Hour)
	b := set(&budgetv1.BudgetSpec{Scope: teamScope("t1"), LimitUsd: "20", Duration: "1d"})
	if b.Spec.BudgetId != a.Spec.BudgetId || b.LimitNanos != 20*int64(money.PerDollar) {
		t.Fatalf("same scope and duration: got %v; want budget %s replaced", b, a.Spec.BudgetId)
	}
	if !b.Anchor.AsTime().Equal(t0) {
		t.Errorf("raising a limit moved the anchor to %v", b.Anchor.AsTime())
	}
	c := set(&budgetv1.BudgetSpec{Scope: teamScope("t1"), LimitUsd: "5", Duration: "7d", CalendarAligned: true})
	if c.Spec.BudgetId == a.Spec.BudgetId || c.Anchor.AsTime().Unix() != 0 {
		t.Fatalf("another duration: %v; want a new calendar budget", c)
	}
	// Moving a budget onto a duration its scope already has is a conflict.
	_, err := f.h.SetBudget(ctx(t), connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: &budgetv1.BudgetSpec{
		BudgetId: c.Spec.BudgetId, Scope: teamScope("t1"), LimitUsd: "5", Duration: "1d"}}))
	wantCode(t, "move onto a taken duration", err, connect.CodeAlreadyExists)
	// And a budget's scope cannot change.
	f.createTeam(t, "t2")
	_, err = f.h.SetBudget(ctx(t), connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: &budgetv1.BudgetSpec{
		BudgetId: c.Spec.BudgetId, Scope: teamScope("t2"), LimitUsd: "5", Duration: "7d"}}))
	wantCode(t, "change scope", err, connect.CodeInvalidArgument)
}

type fakeSpend struct {
	err error
}

func (s fakeSpend) Spend(_ context.Context, bs []store.Budget, _ time.Time) ([]Spend, error) {
	if s.err != nil {
		return nil, s.err
	}
	out := make([]Spend, len(bs))
	for i := range bs {
		out[i] = Spend{Spent: 3 * money.PerDollar, Reserved: money.PerDollar}
	}
	return out, nil
}

func TestGetKeyReportsEveryBudgetOnItsChain(t *testing.T) {
	f := newFixture(t)
	f.createTeam(t, "t1")
	f.createTeam(t, "other")
	r := f.createKey(t, &budgetv1.Key{TeamId: "t1", UserId: "ana"},
		&budgetv1.BudgetSpec{LimitUsd: "10", Duration: "1d"},
		&budgetv1.BudgetSpec{Scope: &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, ModelGroup: "gpt-4o"}, LimitUsd: "2"})
	for _, s := range []*eventsv1.Scope{teamScope("t1"), teamScope("other"), {Kind: eventsv1.ScopeKind_SCOPE_KIND_USER, Id: "ana"}} {
		must[budgetv1.SetBudgetResponse](t)(f.h.SetBudget(ctx(t), connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: &budgetv1.BudgetSpec{Scope: s, LimitUsd: "100", Duration: "1mo"}})))
	}
	f.h.spend = fakeSpend{}
	got := must[budgetv1.GetKeyResponse](t)(f.h.GetKey(ctx(t), connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: r.Key.KeyId})))
	var kinds []eventsv1.ScopeKind
	for _, b := range got.Budgets {
		kinds = append(kinds, b.Scope.Kind)
		if b.Scope.Kind == eventsv1.ScopeKind_SCOPE_KIND_TEAM && b.Scope.Id != "t1" {
			t.Errorf("budget of another team: %v", b)
		}
	}
	want := []eventsv1.ScopeKind{eventsv1.ScopeKind_SCOPE_KIND_KEY, eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL,
		eventsv1.ScopeKind_SCOPE_KIND_TEAM, eventsv1.ScopeKind_SCOPE_KIND_USER}
	if !slices.Equal(kinds, want) {
		t.Fatalf("budget kinds %v; want %v", kinds, want)
	}
	day := got.Budgets[0]
	if day.SpentNanos != 3e9 || day.ReservedNanos != 1e9 || day.RemainingNanos != 6e9 {
		t.Errorf("key budget status %v; want spent 3, reserved 1, remaining 6 dollars", day)
	}
	if !day.WindowStart.AsTime().Equal(t0) || !day.ResetsAt.AsTime().Equal(t0.Add(24*time.Hour)) {
		t.Errorf("window [%v, %v); want the day from the key's creation", day.WindowStart.AsTime(), day.ResetsAt.AsTime())
	}
	lifetime := got.Budgets[1]
	if lifetime.ResetsAt != nil || lifetime.RemainingNanos != 0 {
		t.Errorf("lifetime key_model budget %v: want no reset and nothing left (4 of 2 dollars used)", lifetime)
	}

	f.h.spend = fakeSpend{err: errors.New("redis down")}
	_, err := f.h.GetKey(ctx(t), connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: r.Key.KeyId}))
	wantCode(t, "spend reader down", err, connect.CodeUnavailable)
}

func TestDeletesCascadeToBudgetsAndRefuseWhileReferenced(t *testing.T) {
	f := newFixture(t)
	team := budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM
	must[budgetv1.CreatePrincipalResponse](t)(f.h.CreatePrincipal(ctx(t), connect.NewRequest(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: team, Id: "t1"}, Budgets: []*budgetv1.BudgetSpec{{LimitUsd: "50", Duration: "1mo"}}})))
	r := f.createKey(t, &budgetv1.Key{TeamId: "t1"}, &budgetv1.BudgetSpec{LimitUsd: "1"})
	count := func() int {
		return len(must[budgetv1.ListBudgetsResponse](t)(f.h.ListBudgets(ctx(t), connect.NewRequest(&budgetv1.ListBudgetsRequest{}))).Budgets)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d budgets; want 2", n)
	}
	_, err := f.h.DeletePrincipal(ctx(t), connect.NewRequest(&budgetv1.DeletePrincipalRequest{Kind: team, Id: "t1"}))
	wantCode(t, "delete a team with keys", err, connect.CodeFailedPrecondition)
	must[budgetv1.DeleteKeyResponse](t)(f.h.DeleteKey(ctx(t), connect.NewRequest(&budgetv1.DeleteKeyRequest{KeyId: r.Key.KeyId})))
	if n := count(); n != 1 {
		t.Fatalf("%d budgets after deleting the key; want its budget gone", n)
	}
	must[budgetv1.DeletePrincipalResponse](t)(f.h.DeletePrincipal(ctx(t), connect.NewRequest(&budgetv1.DeletePrincipalRequest{Kind: team, Id: "t1"})))
	if n := count(); n != 0 {
		t.Fatalf("%d budgets after deleting the team; want none", n)
	}
}

func TestListKeysPagesThroughEverything(t *testing.T) {
	f := newFixture(t)
	var want []string
	for range 5 {
		want = append(want, f.createKey(t, nil).Key.KeyId)
	}
	var got []string
	tok := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		r := must[budgetv1.ListKeysResponse](t)(f.h.ListKeys(ctx(t), connect.NewRequest(&budgetv1.ListKeysRequest{PageSize: 2, PageToken: tok})))
		for _, k := range r.Keys {
			got = append(got, k.KeyId)
		}
		if tok = r.NextPageToken; tok == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged %v; want every key in creation order %v", got, want)
	}
}

type fakeAdmitter struct{ called bool }

func (a *fakeAdmitter) Admit(context.Context, *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	a.called = true
	return connect.NewResponse(&budgetv1.AdmitResponse{}), nil
}

func (a *fakeAdmitter) Release(context.Context, *connect.Request[budgetv1.ReleaseRequest]) (*connect.Response[budgetv1.ReleaseResponse], error) {
	return connect.NewResponse(&budgetv1.ReleaseResponse{Released: true}), nil
}

func TestAdmitterPlugsIn(t *testing.T) {
	a := &fakeAdmitter{}
	h := New(Config{Store: nil, Admitter: a})
	if _, err := h.Admit(ctx(t), connect.NewRequest(&budgetv1.AdmitRequest{})); err != nil || !a.called {
		t.Fatalf("admit: %v, called %v", err, a.called)
	}
	r, err := h.Release(ctx(t), connect.NewRequest(&budgetv1.ReleaseRequest{}))
	if err != nil || !r.Msg.Released {
		t.Fatalf("release: %v", err)
	}
}
