package budget_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
)

// TestKeyLifecycle: create a key with budgets, authenticate, read it with its
// budget chain, update, list, block, delete — over Connect, on Postgres.
func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	url, pool := newDB(t)
	in := newInstance(t, url)
	c, ctx := in.client, harness.Context(t)

	harness.OK[budgetv1.CreatePrincipalResponse](t, "create team")(c.CreatePrincipal(ctx, req(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: teamKind, Id: "team-a", Alias: "Team A", Metadata: map[string]string{"cc": "42"}},
		Budgets:   []*budgetv1.BudgetSpec{{LimitUsd: "500", Duration: "1mo", CalendarAligned: true}},
	})))
	expires := time.Now().Add(24 * time.Hour).Truncate(time.Microsecond)
	created := harness.OK[budgetv1.CreateKeyResponse](t, "create key")(c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{
		Key: &budgetv1.Key{KeyAlias: "ci-bot", TeamId: "team-a", UserId: "ana", Models: []string{"gpt-4o", "claude-opus-4-6"},
			Tags: []string{"prod", "batch"}, Metadata: map[string]string{"owner": "ana"}, ExpiresAt: timestamppb.New(expires)},
		Budgets: []*budgetv1.BudgetSpec{
			{LimitUsd: "10.25", Duration: "24h", SoftThresholds: []string{"0.80", "0.5"}},
			{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, "", "claude-opus-4-6"), LimitUsd: "0.000000001"},
		},
	})))
	k := created.Key
	if !strings.HasPrefix(created.ClearKey, "sk-") || len(created.ClearKey) < 35 {
		t.Fatalf("clear key %q", created.ClearKey)
	}

	sum := sha256.Sum256([]byte(created.ClearKey))
	auth := harness.OK[budgetv1.AuthenticateResponse](t, "authenticate")(c.Authenticate(ctx, req(&budgetv1.AuthenticateRequest{KeyHash: hex.EncodeToString(sum[:])})))
	if auth.Key.KeyId != k.KeyId || auth.Key.TeamId != "team-a" || !auth.Key.ExpiresAt.AsTime().Equal(expires) ||
		!slices.Equal(auth.Key.Tags, []string{"batch", "prod"}) || auth.Key.Metadata["owner"] != "ana" {
		t.Fatalf("authenticated key %v", auth.Key)
	}

	got := harness.OK[budgetv1.GetKeyResponse](t, "get key")(c.GetKey(ctx, req(&budgetv1.GetKeyRequest{KeyId: k.KeyId})))
	var limits []int64
	for _, b := range got.Budgets {
		limits = append(limits, b.LimitNanos)
	}
	// key 1d, key_model lifetime, team 1mo; the implicit user has none.
	if want := []int64{10_250_000_000, 1, 500_000_000_000}; !slices.Equal(limits, want) {
		t.Fatalf("budget chain limits %v; want %v", limits, want)
	}
	if got.Budgets[0].ResetsAt.AsTime().Sub(got.Budgets[0].WindowStart.AsTime()) != 24*time.Hour {
		t.Errorf("key budget window %v", got.Budgets[0])
	}
	if got.Budgets[1].ResetsAt != nil {
		t.Errorf("lifetime budget has a reset time %v", got.Budgets[1].ResetsAt)
	}

	upd := harness.OK[budgetv1.UpdateKeyResponse](t, "update key")(c.UpdateKey(ctx, req(&budgetv1.UpdateKeyRequest{
		Key: &budgetv1.Key{KeyId: k.KeyId, Models: []string{"gpt-4o-mini"}, KeyAlias: "not-applied"}, UpdateFields: []string{"models"}})))
	if !slices.Equal(upd.Key.Models, []string{"gpt-4o-mini"}) || upd.Key.KeyAlias != "ci-bot" {
		t.Fatalf("updated key %v", upd.Key)
	}

	second := harness.OK[budgetv1.CreateKeyResponse](t, "second key")(c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{UserId: "ana"}})))
	list := harness.OK[budgetv1.ListKeysResponse](t, "list team keys")(c.ListKeys(ctx, req(&budgetv1.ListKeysRequest{TeamId: "team-a"})))
	if len(list.Keys) != 1 || list.Keys[0].KeyId != k.KeyId {
		t.Fatalf("team keys %v", list.Keys)
	}
	var paged []string
	tok := ""
	for range 3 {
		r := harness.OK[budgetv1.ListKeysResponse](t, "list user keys")(c.ListKeys(ctx, req(&budgetv1.ListKeysRequest{UserId: "ana", PageSize: 1, PageToken: tok})))
		for _, x := range r.Keys {
			paged = append(paged, x.KeyId)
		}
		if tok = r.NextPageToken; tok == "" {
			break
		}
	}
	if !slices.Equal(paged, []string{k.KeyId, second.Key.KeyId}) {
		t.Fatalf("paged user keys %v; want both in creation order", paged)
	}

	harness.OK[budgetv1.UpdateKeyResponse](t, "block")(c.UpdateKey(ctx, req(&budgetv1.UpdateKeyRequest{
		Key: &budgetv1.Key{KeyId: k.KeyId, Blocked: true}, UpdateFields: []string{"blocked"}})))
	_, err := c.Authenticate(ctx, req(&budgetv1.AuthenticateRequest{KeyHash: hex.EncodeToString(sum[:])}))
	harness.WantCode(t, "authenticate a blocked key", err, connect.CodePermissionDenied)

	harness.OK[budgetv1.DeleteKeyResponse](t, "delete")(c.DeleteKey(ctx, req(&budgetv1.DeleteKeyRequest{KeyId: k.KeyId})))
	_, err = c.GetKey(ctx, req(&budgetv1.GetKeyRequest{KeyId: k.KeyId}))
	harness.WantCode(t, "get a deleted key", err, connect.CodeNotFound)
	_, err = c.Authenticate(ctx, req(&budgetv1.AuthenticateRequest{KeyHash: hex.EncodeToString(sum[:])}))
	harness.WantCode(t, "authenticate a deleted key", err, connect.CodeUnauthenticated)
	if n := count(t, pool, `SELECT count(*) FROM budgets WHERE scope_id = $1`, k.KeyId); n != 0 {
		t.Fatalf("%d budgets of the deleted key remain", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM budgets WHERE scope_kind = 'team'`); n != 1 {
		t.Fatalf("team budget count %d; deleting a key must not touch its team's budget", n)
	}
}

// TestClearKeyIsNeverStored looks at every column of the key's row.
func TestClearKeyIsNeverStored(t *testing.T) {
	t.Parallel()
	url, pool := newDB(t)
	in := newInstance(t, url)
	for _, clear := range []string{"", "sk-caller-chosen-key-0123456789"} {
		r := harness.OK[budgetv1.CreateKeyResponse](t, "create key")(in.client.CreateKey(harness.Context(t), req(&budgetv1.CreateKeyRequest{ClearKey: clear})))
		var row, hash string
		if err := pool.QueryRow(harness.Context(t), `SELECT row_to_json(k)::text, key_hash FROM virtual_keys k WHERE key_id = $1`, r.Key.KeyId).Scan(&row, &hash); err != nil {
			t.Fatal(err)
		}
		secret := strings.TrimPrefix(r.ClearKey, "sk-")
		if strings.Contains(row, secret[:len(secret)-4]) {
			t.Fatalf("the clear key is stored: %s", row)
		}
		sum := sha256.Sum256([]byte(r.ClearKey))
		if hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("key_hash %s; want the hex SHA-256 of the clear key", hash)
		}
	}
}

// TestErrorsMapToCodes: unique violations, missing rows and missing or live
// references, as Postgres reports them, reach the client as the right code.
func TestErrorsMapToCodes(t *testing.T) {
	t.Parallel()
	url, _ := newDB(t)
	in := newInstance(t, url)
	c, ctx := in.client, harness.Context(t)
	in.createTeam(t, "t1")
	harness.OK[budgetv1.CreatePrincipalResponse](t, "org")(c.CreatePrincipal(ctx, req(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_ORG, Id: "o1"}})))
	harness.OK[budgetv1.CreateKeyResponse](t, "key")(c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{
		Key: &budgetv1.Key{KeyId: "k1", KeyAlias: "alias-1", TeamId: "t1"}, ClearKey: "sk-duplicate-me-0123456789"})))

	call := func(what string, want connect.Code, f func() error) {
		t.Helper()
		harness.WantCode(t, what, f(), want)
	}
	call("duplicate key id", connect.CodeAlreadyExists, func() error {
		_, err := c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{KeyId: "k1"}}))
		return err
	})
	call("duplicate alias", connect.CodeAlreadyExists, func() error {
		_, err := c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{KeyAlias: "alias-1"}}))
		return err
	})
	call("duplicate clear key", connect.CodeAlreadyExists, func() error {
		_, err := c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{ClearKey: "sk-duplicate-me-0123456789"}))
		return err
	})
	call("duplicate team", connect.CodeAlreadyExists, func() error {
		_, err := c.CreatePrincipal(ctx, req(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: teamKind, Id: "t1"}}))
		return err
	})
	call("key of a missing team", connect.CodeFailedPrecondition, func() error {
		_, err := c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{TeamId: "nope"}}))
		return err
	})
	_, err := c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{TeamId: "t-typo"}}))
	if msg := connect.CodeOf(err).String() + ": " + fmt.Sprint(err); !strings.Contains(msg, `team does not exist ("t-typo")`) {
		t.Errorf("missing team message %q does not name the team", msg)
	}
	call("team of a missing org", connect.CodeFailedPrecondition, func() error {
		_, err := c.CreatePrincipal(ctx, req(&budgetv1.CreatePrincipalRequest{Principal: &budgetv1.Principal{Kind: teamKind, Id: "t2", OrgId: "nope"}}))
		return err
	})
	call("move a key to a missing org", connect.CodeFailedPrecondition, func() error {
		_, err := c.UpdateKey(ctx, req(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{KeyId: "k1", OrgId: "nope"}, UpdateFields: []string{"org_id"}}))
		return err
	})
	call("budget on a missing key", connect.CodeFailedPrecondition, func() error {
		_, err := c.SetBudget(ctx, req(&budgetv1.SetBudgetRequest{Spec: &budgetv1.BudgetSpec{
			Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, "nope", "gpt-4o"), LimitUsd: "1"}}))
		return err
	})
	call("budget on a missing team", connect.CodeFailedPrecondition, func() error {
		_, err := c.SetBudget(ctx, req(&budgetv1.SetBudgetRequest{Spec: &budgetv1.BudgetSpec{
			Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "nope", ""), LimitUsd: "1"}}))
		return err
	})
	call("delete a team with keys", connect.CodeFailedPrecondition, func() error {
		_, err := c.DeletePrincipal(ctx, req(&budgetv1.DeletePrincipalRequest{Kind: teamKind, Id: "t1"}))
		return err
	})
	harness.OK[budgetv1.CreatePrincipalResponse](t, "team in org")(c.CreatePrincipal(ctx, req(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: teamKind, Id: "t3", OrgId: "o1"}})))
	call("delete an org with teams", connect.CodeFailedPrecondition, func() error {
		_, err := c.DeletePrincipal(ctx, req(&budgetv1.DeletePrincipalRequest{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_ORG, Id: "o1"}))
		return err
	})
	for what, f := range map[string]func() error{
		"get key": func() error {
			_, err := c.GetKey(ctx, req(&budgetv1.GetKeyRequest{KeyId: "nope"}))
			return err
		},
		"update key": func() error {
			_, err := c.UpdateKey(ctx, req(&budgetv1.UpdateKeyRequest{Key: &budgetv1.Key{KeyId: "nope"}, UpdateFields: []string{"blocked"}}))
			return err
		},
		"delete key": func() error {
			_, err := c.DeleteKey(ctx, req(&budgetv1.DeleteKeyRequest{KeyId: "nope"}))
			return err
		},
		"get principal": func() error {
			_, err := c.GetPrincipal(ctx, req(&budgetv1.GetPrincipalRequest{Kind: teamKind, Id: "nope"}))
			return err
		},
		"update principal": func() error {
			_, err := c.UpdatePrincipal(ctx, req(&budgetv1.UpdatePrincipalRequest{Principal: &budgetv1.Principal{Kind: teamKind, Id: "nope"}, UpdateFields: []string{"alias"}}))
			return err
		},
		"delete principal": func() error {
			_, err := c.DeletePrincipal(ctx, req(&budgetv1.DeletePrincipalRequest{Kind: teamKind, Id: "nope"}))
			return err
		},
		"set budget by id": func() error {
			_, err := c.SetBudget(ctx, req(&budgetv1.SetBudgetRequest{Spec: &budgetv1.BudgetSpec{BudgetId: "nope",
				Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_PROVIDER, "openai", ""), LimitUsd: "1"}}))
			return err
		},
		"delete budget": func() error {
			_, err := c.DeleteBudget(ctx, req(&budgetv1.DeleteBudgetRequest{BudgetId: "nope"}))
			return err
		},
	} {
		call(what+" of a missing row", connect.CodeNotFound, f)
	}

	// Moving a budget onto a duration its scope already has: the unique
	// (scope, duration) constraint, reported as AlreadyExists.
	prov := scopeOf(eventsv1.ScopeKind_SCOPE_KIND_PROVIDER, "openai", "")
	in.setBudget(t, &budgetv1.BudgetSpec{Scope: prov, LimitUsd: "1", Duration: "1d"})
	weekly := in.setBudget(t, &budgetv1.BudgetSpec{Scope: prov, LimitUsd: "5", Duration: "7d"})
	call("move onto a taken duration", connect.CodeAlreadyExists, func() error {
		_, err := c.SetBudget(ctx, req(&budgetv1.SetBudgetRequest{Spec: &budgetv1.BudgetSpec{
			BudgetId: weekly.Spec.BudgetId, Scope: prov, LimitUsd: "5", Duration: "24h"}}))
		return err
	})
}

// TestBudgetsRoundTripExactly: limits, durations, thresholds and anchors as
// stored and returned; replacing keeps the id and the anchor.
func TestBudgetsRoundTripExactly(t *testing.T) {
	t.Parallel()
	url, pool := newDB(t)
	in := newInstance(t, url)
	tag := scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TAG, "prod", "")
	a := in.setBudget(t, &budgetv1.BudgetSpec{Scope: tag, LimitUsd: "1234567.000000001", Duration: "24h",
		SoftThresholds: []string{"1", "0.75", "0.750"}})
	if a.LimitNanos != 1_234_567_000_000_001 || a.Spec.LimitUsd != "1234567.000000001" || a.Spec.Duration != "1d" ||
		!slices.Equal(a.Spec.SoftThresholds, []string{"0.75", "1"}) {
		t.Fatalf("stored %v", a)
	}
	var nanos int64
	var dur string
	var thresholds []string
	if err := pool.QueryRow(harness.Context(t), `SELECT limit_nanos, duration, soft_thresholds FROM budgets WHERE budget_id = $1`,
		a.Spec.BudgetId).Scan(&nanos, &dur, &thresholds); err != nil {
		t.Fatal(err)
	}
	if nanos != 1_234_567_000_000_001 || dur != "1d" || !slices.Equal(thresholds, []string{"0.75", "1"}) {
		t.Fatalf("row: %d %q %q", nanos, dur, thresholds)
	}
	if anchor := a.Anchor.AsTime(); anchor.Nanosecond() != 0 || time.Since(anchor) > time.Minute {
		t.Fatalf("rolling anchor %v; want the creation second", anchor)
	}
	// The tag was created implicitly.
	harness.OK[budgetv1.GetPrincipalResponse](t, "implicit tag")(in.client.GetPrincipal(harness.Context(t), req(&budgetv1.GetPrincipalRequest{
		Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG, Id: "prod"})))

	time.Sleep(1100 * time.Millisecond) // a new second, so a moved anchor would show
	b := in.setBudget(t, &budgetv1.BudgetSpec{Scope: tag, LimitUsd: "2", Duration: "1d"})
	if b.Spec.BudgetId != a.Spec.BudgetId || !b.Anchor.AsTime().Equal(a.Anchor.AsTime()) || b.LimitNanos != 2e9 {
		t.Fatalf("replace: %v; want id %s and anchor %v kept", b, a.Spec.BudgetId, a.Anchor.AsTime())
	}
	cal := in.setBudget(t, &budgetv1.BudgetSpec{Scope: tag, LimitUsd: "2", Duration: "1d", CalendarAligned: true})
	if cal.Spec.BudgetId != a.Spec.BudgetId || cal.Anchor.AsTime().Unix() != 0 || !cal.Spec.CalendarAligned {
		t.Fatalf("switch to calendar: %v; want the epoch anchor", cal)
	}
	life := in.setBudget(t, &budgetv1.BudgetSpec{Scope: tag, LimitUsd: "0", CalendarAligned: true})
	if life.Spec.Duration != "" || life.Spec.CalendarAligned || life.LimitNanos != 0 {
		t.Fatalf("lifetime budget %v", life)
	}
	list := harness.OK[budgetv1.ListBudgetsResponse](t, "list")(in.client.ListBudgets(harness.Context(t), req(&budgetv1.ListBudgetsRequest{Scope: tag})))
	if len(list.Budgets) != 2 {
		t.Fatalf("%d budgets on the tag; want 2 (daily, lifetime)", len(list.Budgets))
	}
	harness.OK[budgetv1.DeleteBudgetResponse](t, "delete")(in.client.DeleteBudget(harness.Context(t), req(&budgetv1.DeleteBudgetRequest{BudgetId: life.Spec.BudgetId})))
	if n := count(t, pool, `SELECT count(*) FROM budgets`); n != 1 {
		t.Fatalf("%d budgets after delete; want 1", n)
	}
}

// TestDeletingOwnersCascades: a principal's budgets (an end user's per-model
// ones too) go with it; other principals' stay.
func TestDeletingOwnersCascades(t *testing.T) {
	t.Parallel()
	url, pool := newDB(t)
	in := newInstance(t, url)
	c, ctx := in.client, harness.Context(t)
	harness.OK[budgetv1.CreatePrincipalResponse](t, "end user")(c.CreatePrincipal(ctx, req(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: endUserKind, Id: "cust-9"},
		Budgets: []*budgetv1.BudgetSpec{
			{LimitUsd: "5", Duration: "1d"},
			{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_END_USER_MODEL, "", "gpt-4o"), LimitUsd: "1", Duration: "1d"},
		},
	})))
	in.setBudget(t, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_END_USER_MODEL, "cust-9", "claude-opus-4-6"), LimitUsd: "2"})
	in.setBudget(t, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_END_USER, "cust-10", ""), LimitUsd: "2"})
	got := harness.OK[budgetv1.GetPrincipalResponse](t, "get")(c.GetPrincipal(ctx, req(&budgetv1.GetPrincipalRequest{Kind: endUserKind, Id: "cust-9"})))
	if len(got.Budgets) != 3 {
		t.Fatalf("%d budgets on cust-9; want 3", len(got.Budgets))
	}
	harness.OK[budgetv1.DeletePrincipalResponse](t, "delete")(c.DeletePrincipal(ctx, req(&budgetv1.DeletePrincipalRequest{Kind: endUserKind, Id: "cust-9"})))
	if n := count(t, pool, `SELECT count(*) FROM budgets WHERE scope_id = 'cust-9'`); n != 0 {
		t.Fatalf("%d budgets of the deleted end user remain", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM budgets WHERE scope_id = 'cust-10'`); n != 1 {
		t.Fatal("another end user's budget was deleted")
	}
	// A user with keys cannot be deleted until the keys are gone.
	k := harness.OK[budgetv1.CreateKeyResponse](t, "key")(c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{Key: &budgetv1.Key{UserId: "ana"}})))
	_, err := c.DeletePrincipal(ctx, req(&budgetv1.DeletePrincipalRequest{Kind: userKind, Id: "ana"}))
	harness.WantCode(t, "delete a user with keys", err, connect.CodeFailedPrecondition)
	harness.OK[budgetv1.DeleteKeyResponse](t, "delete key")(c.DeleteKey(ctx, req(&budgetv1.DeleteKeyRequest{KeyId: k.Key.KeyId})))
	harness.OK[budgetv1.DeletePrincipalResponse](t, "delete user")(c.DeletePrincipal(ctx, req(&budgetv1.DeletePrincipalRequest{Kind: userKind, Id: "ana"})))
}
