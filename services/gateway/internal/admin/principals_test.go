package admin

import (
	"net/http"
	"testing"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
)

func TestTeamNewAndInfo(t *testing.T) {
	r := newRig(t, nil)
	m := decode(t, r.ok("POST", "/team/new", masterKey, `{"team_alias": "search", "organization_id": "o-1", "max_budget": "100.5",
		"budget_duration": "1mo", "metadata": {"cost_center": 42}, "models": ["all-proxy-models"], "members_with_roles": []}`))
	req := r.budget.last("CreatePrincipal").(*budgetv1.CreatePrincipalRequest)
	p := req.GetPrincipal()
	if p.Kind != budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM || p.Id == "" || p.Alias != "search" || p.OrgId != "o-1" || p.Metadata["cost_center"] != "42" {
		t.Fatalf("principal %v", p)
	}
	if len(req.Budgets) != 1 || req.Budgets[0].LimitUsd != "100.5" || req.Budgets[0].Duration != "1mo" {
		t.Fatalf("budgets %v", req.Budgets)
	}
	if m["team_id"] != p.Id || m["team_alias"] != "search" || num(m, "max_budget") != "100.5" || m["budget_duration"] != "1mo" || num(m, "spend") != "0" {
		t.Fatalf("answer %v", m)
	}

	r.ledger.spend["SCOPE_KIND_TEAM/"+p.Id] = 1_500_000_000
	info := decode(t, r.ok("GET", "/team/info?team_id="+p.Id, masterKey, ""))
	if info["team_id"] != p.Id || num(info, "team_info.spend") != "1.5" || num(info, "team_info.max_budget") != "100.5" {
		t.Fatalf("info %v", info)
	}

	// A caller-chosen id that exists: 409.
	st, b := r.do("POST", "/team/new", masterKey, `{"team_id": "`+p.Id+`"}`)
	if _, code := errType(t, b); st != http.StatusConflict || code != "already_exists" {
		t.Fatalf("duplicate team: %d %s", st, b)
	}
	for body, param := range map[string]string{
		`{"models": ["gpt-4o"]}`:              "models",
		`{"tpm_limit": 10}`:                   "tpm_limit",
		`{"model_max_budget": {"gpt-4o": 1}}`: "model_max_budget",
	} {
		st, b := r.do("POST", "/team/new", masterKey, body)
		if st != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, st, b)
		} else if got, _ := at(decode(t, b), "error.param").(string); got != param {
			t.Errorf("%s: param %q", body, got)
		}
	}
	if st, _ := r.do("GET", "/team/info?team_id=nope", masterKey, ""); st != http.StatusNotFound {
		t.Fatalf("unknown team: %d", st)
	}
}

func TestUserNewCreatesItsKey(t *testing.T) {
	r := newRig(t, nil)
	m := decode(t, r.ok("POST", "/user/new", masterKey, `{"user_id": "alice", "user_email": "a@example.com", "user_role": "internal_user",
		"max_budget": 7, "budget_duration": "7d", "models": ["gpt-4o"], "key_alias": "alice-key"}`))
	p := r.budget.last("CreatePrincipal").(*budgetv1.CreatePrincipalRequest).GetPrincipal()
	if p.Id != "alice" || p.Metadata["user_email"] != "a@example.com" || p.Metadata["user_role"] != "internal_user" {
		t.Fatalf("principal %v", p)
	}
	k := r.budget.last("CreateKey").(*budgetv1.CreateKeyRequest).GetKey()
	if k.UserId != "alice" || k.KeyAlias != "alice-key" || len(k.Models) != 1 {
		t.Fatalf("key %v", k)
	}
	if m["user_id"] != "alice" || m["user_email"] != "a@example.com" || m["key"] == nil || m["token"] == nil || num(m, "max_budget") != "7" {
		t.Fatalf("answer %v", m)
	}
	if _, ok := at(m, "metadata.user_email").(string); ok {
		t.Fatal("user_email is a field, not metadata")
	}
	m = decode(t, r.ok("POST", "/user/new", masterKey, `{"auto_create_key": false}`))
	if m["key"] != nil || m["user_id"] == "" {
		t.Fatalf("no key asked: %v", m)
	}
	if st, _ := r.do("POST", "/user/new", masterKey, `{"auto_create_key": false, "models": ["gpt-4o"]}`); st != http.StatusBadRequest {
		t.Fatalf("models with nowhere to enforce them: %d", st)
	}
	if st, _ := r.do("POST", "/user/new", masterKey, `{"teams": ["t-1"]}`); st != http.StatusBadRequest {
		t.Fatalf("teams: %d", st)
	}
	info := decode(t, r.ok("GET", "/user/info?user_id=alice", masterKey, ""))
	if at(info, "user_info.user_id") != "alice" || len(info["keys"].([]any)) != 1 {
		t.Fatalf("info %v", info)
	}
}

func TestCustomerNewUsesTheDefaultEndUserBudget(t *testing.T) {
	def := money.Nanos(2_500_000_000)
	r := newRig(t, func(c *Config) { c.DefaultEndUserBudget = &def })
	m := decode(t, r.ok("POST", "/customer/new", masterKey, `{"user_id": "cust-1", "alias": "Acme"}`))
	req := r.budget.last("CreatePrincipal").(*budgetv1.CreatePrincipalRequest)
	if req.GetPrincipal().Kind != budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER || req.GetPrincipal().Id != "cust-1" ||
		len(req.Budgets) != 1 || req.Budgets[0].LimitUsd != "2.5" {
		t.Fatalf("request %v", req)
	}
	if num(m, "max_budget") != "2.5" || num(m, "litellm_budget_table.max_budget") != "2.5" || m["alias"] != "Acme" {
		t.Fatalf("answer %v", m)
	}

	m = decode(t, r.ok("POST", "/end_user/new", masterKey, `{"user_id": "cust-2", "max_budget": 9, "budget_duration": "1d",
		"model_max_budget": {"gpt-4o": {"budget_limit": 1, "time_period": "1d"}}}`))
	req = r.budget.last("CreatePrincipal").(*budgetv1.CreatePrincipalRequest)
	if len(req.Budgets) != 2 || req.Budgets[0].LimitUsd != "9" || req.Budgets[1].GetScope().GetKind() != eventsv1.ScopeKind_SCOPE_KIND_END_USER_MODEL {
		t.Fatalf("budgets %v", req.Budgets)
	}
	if num(m, "model_max_budget.gpt-4o.budget_limit") != "1" {
		t.Fatalf("answer %v", m)
	}
	if st, _ := r.do("POST", "/customer/new", masterKey, `{"alias": "x"}`); st != http.StatusBadRequest {
		t.Fatalf("no user_id: %d", st)
	}
	if st, _ := r.do("POST", "/customer/new", masterKey, `{"user_id": "c3", "allowed_model_region": "eu"}`); st != http.StatusBadRequest {
		t.Fatalf("region: %d", st)
	}
	info := decode(t, r.ok("GET", "/customer/info?end_user_id=cust-2", masterKey, ""))
	if info["user_id"] != "cust-2" || num(info, "max_budget") != "9" {
		t.Fatalf("info %v", info)
	}
}

func TestOrganizationNewAndInfo(t *testing.T) {
	r := newRig(t, nil)
	m := decode(t, r.ok("POST", "/organization/new", masterKey, `{"organization_alias": "acme", "max_budget": 1000, "budget_duration": "30d"}`))
	id, _ := m["organization_id"].(string)
	if id == "" || m["organization_alias"] != "acme" || num(m, "max_budget") != "1000" || m["budget_id"] == nil {
		t.Fatalf("answer %v", m)
	}
	info := decode(t, r.ok("GET", "/organization/info?organization_id="+id, masterKey, ""))
	if info["organization_id"] != id || num(info, "litellm_budget_table.max_budget") != "1000" {
		t.Fatalf("info %v", info)
	}
}
