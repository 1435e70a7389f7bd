package admin

import (
	"net/http"
	"testing"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
)

func TestTeamUpdateChangesOnlyWhatItNames(t *testing.T) {
	r := newRig(t, nil)
	r.ok("POST", "/team/new", masterKey, `{"team_id": "t-9", "team_alias": "search", "organization_id": "o-1",
		"max_budget": 100, "budget_duration": "1mo", "metadata": {"cc": "42"}}`)
	budgetID := r.budget.budgetsOn(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "t-9")[0].GetSpec().GetBudgetId()

	m := decode(t, r.ok("POST", "/team/update", masterKey, `{"team_id": "t-9", "max_budget": "250.75", "team_alias": null}`))
	if m["team_id"] != "t-9" || num(m, "data.max_budget") != "250.75" || at(m, "data.budget_duration") != "1mo" ||
		at(m, "data.team_alias") != "search" || at(m, "data.organization_id") != "o-1" {
		t.Fatalf("answer %v", m)
	}
	if bs := r.budget.budgetsOn(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "t-9"); len(bs) != 1 || bs[0].GetSpec().GetBudgetId() != budgetID {
		t.Fatalf("a raised limit must replace the budget, keeping its id (and window): %v", bs)
	}
	if r.budget.count("UpdatePrincipal") != 0 {
		t.Fatal("only the budget changed, yet the principal was written")
	}

	m = decode(t, r.ok("POST", "/team/update", masterKey, `{"team_id": "t-9", "team_alias": "search-2", "blocked": true, "metadata": {"cc": "7"}}`))
	req := r.budget.last("UpdatePrincipal").(*budgetv1.UpdatePrincipalRequest)
	if got := req.GetUpdateFields(); len(got) != 3 || got[0] != "alias" || got[1] != "blocked" || got[2] != "metadata" {
		t.Fatalf("mask %v", got)
	}
	if at(m, "data.team_alias") != "search-2" || at(m, "data.blocked") != true || at(m, "data.metadata.cc") != "7" || num(m, "data.max_budget") != "250.75" {
		t.Fatalf("answer %v", m)
	}

	for body, want := range map[string]int{
		`{"max_budget": 1}`:                           http.StatusBadRequest, // no id
		`{"team_id": "nope", "max_budget": 1}`:        http.StatusNotFound,
		`{"team_id": "t-9", "max_budget": -1}`:        http.StatusBadRequest,
		`{"team_id": "t-9", "budget_duration": "3x"}`: http.StatusBadRequest,
		`{"team_id": "t-9", "tpm_limit": 5}`:          http.StatusBadRequest,
	} {
		if st, b := r.do("POST", "/team/update", masterKey, body); st != want {
			t.Errorf("%s: %d %s; want %d", body, st, b, want)
		}
	}
}

func TestUserUpdateKeepsEmailWhenMetadataIsReplaced(t *testing.T) {
	r := newRig(t, nil)
	r.ok("POST", "/user/new", masterKey, `{"user_id": "bob", "user_email": "b@example.com", "auto_create_key": false, "metadata": {"a": "1"}}`)
	m := decode(t, r.ok("POST", "/user/update", masterKey, `{"user_id": "bob", "metadata": {"b": "2"}, "user_role": "proxy_admin"}`))
	if at(m, "data.user_email") != "b@example.com" || at(m, "data.user_role") != "proxy_admin" ||
		at(m, "data.metadata.b") != "2" || at(m, "data.metadata.a") != nil {
		t.Fatalf("answer %v", m)
	}
	m = decode(t, r.ok("POST", "/user/update", masterKey, `{"user_id": "bob", "user_email": ""}`))
	if at(m, "data.user_email") != nil || at(m, "data.metadata.b") != "2" {
		t.Fatalf("clearing the email: %v", m)
	}
}

func TestCustomerUpdateReplacesModelBudgetsAndBlocks(t *testing.T) {
	r := newRig(t, nil)
	r.ok("POST", "/customer/new", masterKey, `{"user_id": "c-1", "model_max_budget": {"gpt-4o": 1, "o3": 2}}`)
	m := decode(t, r.ok("POST", "/customer/update", masterKey, `{"user_id": "c-1", "max_budget": 5, "budget_duration": "1d",
		"model_max_budget": {"gpt-4o": {"budget_limit": "0.5", "time_period": "1d"}}}`))
	if m["user_id"] != "c-1" || num(m, "max_budget") != "5" || num(m, "model_max_budget.gpt-4o.budget_limit") != "0.5" || at(m, "model_max_budget.o3") != nil {
		t.Fatalf("answer %v", m)
	}
	if bs := r.budget.budgetsOn(eventsv1.ScopeKind_SCOPE_KIND_END_USER_MODEL, "c-1"); len(bs) != 1 {
		t.Fatalf("per-model budgets after the update: %v", bs)
	}

	m = decode(t, r.ok("POST", "/customer/block", masterKey, `{"user_ids": ["c-1"]}`))
	if ids, _ := m["blocked_users"].([]any); len(ids) != 1 || ids[0] != "c-1" {
		t.Fatalf("block answer %v", m)
	}
	if info := decode(t, r.ok("GET", "/customer/info?end_user_id=c-1", masterKey, "")); info["blocked"] != true {
		t.Fatalf("blocked customer: %v", info)
	}
	r.ok("POST", "/end_user/unblock", masterKey, `{"user_ids": ["c-1"]}`)
	if info := decode(t, r.ok("GET", "/customer/info?end_user_id=c-1", masterKey, "")); info["blocked"] != false {
		t.Fatalf("unblocked customer: %v", info)
	}
	// An unknown id among known ones changes nothing.
	before := r.budget.count("UpdatePrincipal")
	if st, _ := r.do("POST", "/customer/block", masterKey, `{"user_ids": ["c-1", "nope"]}`); st != http.StatusNotFound {
		t.Fatalf("unknown customer: %d", st)
	}
	if r.budget.count("UpdatePrincipal") != before {
		t.Fatal("a block with an unknown id blocked the known one")
	}
}

func TestDeleteRefusesReferencedPrincipalsAndChecksEveryIDFirst(t *testing.T) {
	r := newRig(t, nil)
	r.ok("POST", "/team/new", masterKey, `{"team_id": "t-1"}`) // key-user belongs to t-1
	r.ok("POST", "/team/new", masterKey, `{"team_id": "t-empty"}`)
	r.ok("POST", "/organization/new", masterKey, `{"organization_id": "o-1"}`)

	st, b := r.do("POST", "/team/delete", masterKey, `{"team_ids": ["t-1"]}`)
	if _, code := errType(t, b); st != http.StatusBadRequest || code != "failed_precondition" {
		t.Fatalf("deleting a team its keys reference: %d %s", st, b)
	}
	if st, _ := r.do("POST", "/team/delete", masterKey, `{"team_ids": ["t-empty", "nope"]}`); st != http.StatusNotFound {
		t.Fatalf("unknown team: %d", st)
	}
	if r.budget.count("DeletePrincipal") != 1 {
		t.Fatalf("DeletePrincipal called %d times; only the referenced team's attempt should reach it", r.budget.count("DeletePrincipal"))
	}
	m := decode(t, r.ok("POST", "/team/delete", masterKey, `{"team_ids": ["t-empty"]}`))
	if ids, _ := m["deleted_teams"].([]any); len(ids) != 1 || ids[0] != "t-empty" {
		t.Fatalf("answer %v", m)
	}
	if st, _ := r.do("GET", "/team/info?team_id=t-empty", masterKey, ""); st != http.StatusNotFound {
		t.Fatalf("deleted team still answers: %d", st)
	}
	r.ok("POST", "/organization/delete", masterKey, `{"organization_ids": ["o-1"]}`)
	if st, _ := r.do("POST", "/organization/delete", masterKey, `{}`); st != http.StatusBadRequest {
		t.Fatalf("no ids: %d", st)
	}
}

func TestTeamBlockAnswersWithTheTeam(t *testing.T) {
	r := newRig(t, nil)
	r.ok("POST", "/team/new", masterKey, `{"team_id": "t-2"}`)
	if m := decode(t, r.ok("POST", "/team/block", masterKey, `{"team_id": "t-2"}`)); m["team_id"] != "t-2" || m["blocked"] != true {
		t.Fatalf("block: %v", m)
	}
	if m := decode(t, r.ok("POST", "/team/unblock", masterKey, `{"team_id": "t-2"}`)); m["blocked"] != false {
		t.Fatalf("unblock: %v", m)
	}
}
