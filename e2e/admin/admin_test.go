// Package admin_test runs the gateway's LiteLLM-compatible admin API against
// the real stack (budget, ledger, pricing, gateway on real NATS, Postgres and
// Redis): keys with budgets read back by the master key and by the key
// itself, principals round-tripped, spend flowing from a completion through
// the ledger into /key/info and /spend/logs, config budgets synced and shown
// by /provider/budgets, runtime models registered once.
package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

const masterKey = "sk-e2e-admin-master"

const gatewayConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      mock_response: "Hello from the admin e2e."
      input_cost_per_token: "0.000002"
      output_cost_per_token: "0.00001"
      max_budget: 50
      budget_duration: 1d
    model_info: {id: gpt-4o-e2e}
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      mock_response: "Hello from claude."
      input_cost_per_token: "0.000003"
      output_cost_per_token: "0.000015"
    model_info: {id: claude-e2e}
router_settings:
  provider_budget_config:
    openai: {budget_limit: 100, time_period: 1d}
    anthropic: {budget_limit: "0.25", time_period: 7d}
litellm_settings:
  tag_budget_config:
    e2e-tag: {max_budget: 10, budget_duration: 1d}
  max_end_user_budget: 2
general_settings:
  master_key: ` + masterKey + `
`

type client struct {
	t   *testing.T
	url string
}

// call sends a JSON request with key and returns the status and the decoded
// answer (numbers kept as their text).
func (c *client) call(method, path, key, body string) (int, any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		c.t.Fatalf("%s %s: %d, not JSON: %s", method, path, res.StatusCode, raw)
	}
	return res.StatusCode, v
}

// ok is call that must answer 200 with an object.
func (c *client) ok(method, path, key, body string) map[string]any {
	c.t.Helper()
	st, v := c.call(method, path, key, body)
	m, _ := v.(map[string]any)
	if st != http.StatusOK || m == nil {
		c.t.Fatalf("%s %s: %d %v", method, path, st, v)
	}
	return m
}

// status is call that must answer want with OpenAI's error shape.
func (c *client) status(method, path, key, body string, want int) {
	c.t.Helper()
	st, v := c.call(method, path, key, body)
	m, _ := v.(map[string]any)
	e, _ := m["error"].(map[string]any)
	if st != want || e == nil || e["message"] == "" || e["type"] == "" {
		c.t.Fatalf("%s %s: %d %v; want %d with an OpenAI error", method, path, st, v, want)
	}
}

// at walks path through objects (by key) and arrays (by index).
func at(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func num(v any, path string) string {
	n, _ := at(v, path).(json.Number)
	return string(n)
}

func TestAdminAPIAgainstTheStack(t *testing.T) {
	t.Parallel()
	st := harness.StartStack(t, harness.WithGatewayConfigYAML(gatewayConfig))
	if st.MasterKey != masterKey {
		t.Fatalf("master key %q", st.MasterKey)
	}
	c := &client{t: t, url: st.GatewayURL}

	// Principals first: a key's team and org must exist.
	org := c.ok("POST", "/organization/new", masterKey, `{"organization_id": "e2e-org", "organization_alias": "Acme", "max_budget": 1000, "budget_duration": "30d"}`)
	if org["organization_id"] != "e2e-org" || num(org, "max_budget") != "1000" {
		t.Fatalf("organization/new %v", org)
	}
	team := c.ok("POST", "/team/new", masterKey, `{"team_id": "e2e-team", "team_alias": "search", "organization_id": "e2e-org",
		"max_budget": "10.5", "budget_duration": "30d", "metadata": {"cost_center": "42"}}`)
	if team["team_id"] != "e2e-team" || team["organization_id"] != "e2e-org" || num(team, "max_budget") != "10.5" {
		t.Fatalf("team/new %v", team)
	}
	c.status("POST", "/team/new", masterKey, `{"team_id": "e2e-team"}`, http.StatusConflict)
	c.status("POST", "/team/new", masterKey, `{"organization_id": "no-such-org"}`, http.StatusBadRequest)
	generated := c.ok("POST", "/team/new", masterKey, `{"team_alias": "no id given"}`)
	if id, _ := generated["team_id"].(string); id == "" {
		t.Fatalf("team/new without team_id %v", generated)
	}
	info := c.ok("GET", "/team/info?team_id=e2e-team", masterKey, "")
	if at(info, "team_info.team_alias") != "search" || num(info, "team_info.max_budget") != "10.5" || at(info, "team_info.budget_duration") != "30d" ||
		at(info, "team_info.budget_reset_at") == nil || at(info, "team_info.metadata.cost_center") != "42" {
		t.Fatalf("team/info %v", info)
	}

	user := c.ok("POST", "/user/new", masterKey, `{"user_id": "e2e-user", "user_email": "u@example.com", "max_budget": 3, "budget_duration": "1d"}`)
	if user["user_id"] != "e2e-user" || user["key"] == nil || num(user, "max_budget") != "3" {
		t.Fatalf("user/new %v", user)
	}
	uinfo := c.ok("GET", "/user/info?user_id=e2e-user", masterKey, "")
	if at(uinfo, "user_info.user_email") != "u@example.com" || len(uinfo["keys"].([]any)) != 1 {
		t.Fatalf("user/info %v", uinfo)
	}

	cust := c.ok("POST", "/customer/new", masterKey, `{"user_id": "e2e-customer", "alias": "Big Customer"}`)
	if num(cust, "max_budget") != "2" || num(cust, "litellm_budget_table.max_budget") != "2" {
		t.Fatalf("customer/new without max_budget must get max_end_user_budget: %v", cust)
	}
	cinfo := c.ok("GET", "/customer/info?end_user_id=e2e-customer", masterKey, "")
	if cinfo["alias"] != "Big Customer" || num(cinfo, "max_budget") != "2" {
		t.Fatalf("customer/info %v", cinfo)
	}
	oinfo := c.ok("GET", "/organization/info?organization_id=e2e-org", masterKey, "")
	if oinfo["organization_alias"] != "Acme" || num(oinfo, "litellm_budget_table.max_budget") != "1000" {
		t.Fatalf("organization/info %v", oinfo)
	}

	// A key with a budget and a per-model budget.
	gen := c.ok("POST", "/key/generate", masterKey, `{"key_alias": "e2e", "team_id": "e2e-team", "user_id": "e2e-user",
		"models": ["gpt-4o", "claude"], "tags": ["e2e-tag"], "metadata": {"owner": "ci"},
		"max_budget": 5, "budget_duration": "1d",
		"model_max_budget": {"gpt-4o": {"budget_limit": "0.5", "time_period": "1d"}, "claude": 0.25}}`)
	key, _ := gen["key"].(string)
	token, _ := gen["token"].(string)
	if !strings.HasPrefix(key, "sk-") || token == "" || num(gen, "max_budget") != "5" || num(gen, "model_max_budget.gpt-4o.budget_limit") != "0.5" {
		t.Fatalf("key/generate %v", gen)
	}
	other := c.ok("POST", "/key/generate", masterKey, `{"key_alias": "other"}`)
	otherToken, _ := other["token"].(string)

	for _, path := range []string{"/key/info?key=" + token, "/key/info?key=" + key} {
		m := c.ok("GET", path, masterKey, "")
		if m["key"] != token || at(m, "info.key_alias") != "e2e" || num(m, "info.max_budget") != "5" || at(m, "info.budget_duration") != "1d" ||
			num(m, "info.model_max_budget.gpt-4o.budget_limit") != "0.5" || at(m, "info.model_max_budget.gpt-4o.time_period") != "1d" ||
			num(m, "info.model_max_budget.claude.budget_limit") != "0.25" || at(m, "info.team_id") != "e2e-team" || num(m, "info.spend") != "0" {
			t.Fatalf("key/info (master, %s) %v", path, m)
		}
		budgets, _ := at(m, "info.budgets").([]any)
		if len(budgets) < 5 { // key, 2 x key_model, team, user (and org when chained)
			t.Fatalf("budgets on the key's chain %v", budgets)
		}
	}
	if m := c.ok("GET", "/key/info", key, ""); m["key"] != token || at(m, "info.key_alias") != "e2e" {
		t.Fatalf("key/info by the key itself %v", m)
	}
	c.status("GET", "/key/info?key="+otherToken, key, "", http.StatusForbidden)
	c.status("POST", "/team/new", key, `{}`, http.StatusForbidden)
	c.status("POST", "/key/generate", key, `{}`, http.StatusForbidden)
	c.status("GET", "/provider/budgets", key, "", http.StatusForbidden)
	c.status("GET", "/spend/logs?api_key="+token, key, "", http.StatusForbidden)
	c.status("GET", "/key/info", "sk-not-a-key-at-all", "", http.StatusUnauthorized)

	// Spend: a completion flows gateway -> pricing -> ledger, and /key/info,
	// /spend/logs and /provider/budgets read it back, exactly.
	req, _ := http.NewRequest("POST", st.GatewayURL+"/v1/chat/completions",
		strings.NewReader(`{"model": "gpt-4o", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 16}`))
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	cost := res.Header.Get("X-Litellm-Response-Cost")
	if res.StatusCode != http.StatusOK || cost == "" {
		t.Fatalf("completion: %d cost %q", res.StatusCode, cost)
	}
	deadline := time.Now().Add(60 * time.Second)
	var keyInfo map[string]any
	for {
		keyInfo = c.ok("GET", "/key/info", key, "")
		if num(keyInfo, "info.spend") != "0" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if num(keyInfo, "info.spend") != cost || num(keyInfo, "info.model_spend.gpt-4o") != cost {
		t.Fatalf("key spend %q, model_spend %v; want the response cost %s exactly", num(keyInfo, "info.spend"), at(keyInfo, "info.model_spend"), cost)
	}
	_, logs := c.call("GET", "/spend/logs?api_key="+key, masterKey, "")
	rows, _ := logs.([]any)
	if len(rows) != 1 || num(rows[0], "spend") != cost || at(rows[0], "model_group") != "gpt-4o" || at(rows[0], "model_id") != "gpt-4o-e2e" ||
		at(rows[0], "api_key") != token || at(rows[0], "team_id") != "e2e-team" {
		t.Fatalf("spend/logs %v", logs)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if _, v := c.call("GET", "/spend/logs?api_key="+token+"&start_date="+today+"&end_date="+today, masterKey, ""); len(v.([]any)) != 1 {
		t.Fatalf("spend/logs for today %v", v)
	}
	// The row carries the call's id, and request_id finds it.
	callID := res.Header.Get("X-Litellm-Call-Id")
	if callID == "" || at(rows[0], "request_id") != callID {
		t.Fatalf("spend/logs request_id %v; want the call id %q", at(rows[0], "request_id"), callID)
	}
	for id, want := range map[string]int{callID: 1, "no-such-call": 0} {
		if _, v := c.call("GET", "/spend/logs?api_key="+token+"&request_id="+id, masterKey, ""); len(v.([]any)) != want {
			t.Fatalf("spend/logs?request_id=%s: %v; want %d rows", id, v, want)
		}
	}

	pb := c.ok("GET", "/provider/budgets", masterKey, "")
	if num(pb, "providers.openai.budget_limit") != "100" || at(pb, "providers.openai.time_period") != "1d" || num(pb, "providers.openai.spend") != cost ||
		at(pb, "providers.openai.budget_reset_at") == nil || at(pb, "providers.openai.synced") != true ||
		num(pb, "providers.anthropic.budget_limit") != "0.25" || num(pb, "providers.anthropic.spend") != "0" {
		t.Fatalf("provider/budgets %v", pb)
	}

	// Updating the key's budget keeps its window and shows at once.
	upd := c.ok("POST", "/key/update", masterKey, `{"key": "`+token+`", "max_budget": "6.25", "key_alias": "e2e-renamed"}`)
	if num(upd, "max_budget") != "6.25" || upd["key_alias"] != "e2e-renamed" || num(upd, "spend") != cost {
		t.Fatalf("key/update %v", upd)
	}

	// A runtime model: registered once, the second time a no-op, and it serves.
	entry := `{"model_name": "runtime-e2e", "litellm_params": {"model": "openai/gpt-4o-mini", "mock_response": "runtime",
		"input_cost_per_token": "0.00000015", "output_cost_per_token": "0.0000006"}}`
	first := c.ok("POST", "/model/new", masterKey, entry)
	second := c.ok("POST", "/model/new", masterKey, entry)
	if first["changed"] != true || second["changed"] != false || first["model_id"] != second["model_id"] {
		t.Fatalf("model/new twice: %v then %v", first, second)
	}
	req, _ = http.NewRequest("POST", st.GatewayURL+"/v1/chat/completions",
		strings.NewReader(`{"model": "runtime-e2e", "messages": [{"role": "user", "content": "hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+masterKey)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "runtime") {
		t.Fatalf("runtime model: %d %s", res.StatusCode, body)
	}

	// Deleting: the key stops working.
	c.ok("POST", "/key/delete", masterKey, `{"keys": ["`+otherToken+`"]}`)
	c.status("GET", "/key/info?key="+otherToken, masterKey, "", http.StatusNotFound)
}
