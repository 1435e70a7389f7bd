package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
)

// decode reads a JSON answer keeping numbers as their text.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, s)
	}
	return m
}

// at follows a dotted path through decoded JSON objects.
func at(m map[string]any, path string) any {
	var v any = m
	for _, p := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[p]
	}
	return v
}

// num is the text of a JSON number at path ("" when not a number).
func num(m map[string]any, path string) string {
	n, _ := at(m, path).(json.Number)
	return string(n)
}

func errType(t *testing.T, body string) (typ, code string) {
	t.Helper()
	m := decode(t, body)
	typ, _ = at(m, "error.type").(string)
	code, _ = at(m, "error.code").(string)
	if _, ok := at(m, "error.message").(string); !ok {
		t.Fatalf("not OpenAI's error shape: %s", body)
	}
	return typ, code
}

func TestKeyGenerateMapsEveryField(t *testing.T) {
	r := newRig(t, nil)
	body := r.ok("POST", "/key/generate", masterKey, `{
		"key_alias": "ci", "team_id": "t-1", "user_id": "u-9", "organization_id": "o-1",
		"models": ["gpt-4o", "claude"], "tags": ["prod"], "metadata": {"tags": ["prod", "batch"], "owner": "ops", "n": 1.50, "o": {"a": 1}},
		"max_budget": 10.10, "budget_duration": "30d",
		"model_max_budget": {"gpt-4o": {"budget_limit": "0.000000001", "time_period": "1d"}, "claude": 5},
		"duration": "30d", "key": "sk-chosen-by-the-caller-123", "blocked": false,
		"tpm_limit": null, "aliases": {}, "send_invite_email": true
	}`)
	req := r.budget.last("CreateKey").(*budgetv1.CreateKeyRequest)
	k := req.GetKey()
	if k.KeyAlias != "ci" || k.TeamId != "t-1" || k.UserId != "u-9" || k.OrgId != "o-1" || k.Blocked ||
		!slices.Equal(k.Models, []string{"gpt-4o", "claude"}) || !slices.Equal(k.Tags, []string{"prod", "batch"}) {
		t.Fatalf("key %v", k)
	}
	if k.Metadata["owner"] != "ops" || k.Metadata["n"] != "1.50" || k.Metadata["o"] != `{"a":1}` || k.Metadata["tags"] != "" {
		t.Fatalf("metadata %v: strings as they are, other values as their exact JSON text, tags apart", k.Metadata)
	}
	if got := k.GetExpiresAt().AsTime(); !got.Equal(fixedNow.Add(30 * 24 * time.Hour)) {
		t.Fatalf("expires %v", got)
	}
	if req.ClearKey != "sk-chosen-by-the-caller-123" {
		t.Fatalf("clear key %q", req.ClearKey)
	}
	specs := req.GetBudgets()
	if len(specs) != 3 {
		t.Fatalf("budgets %v", specs)
	}
	if specs[0].GetScope() != nil || specs[0].LimitUsd != "10.1" || specs[0].Duration != "30d" {
		t.Fatalf("key budget %v", specs[0])
	}
	// Model groups in sorted order; the legacy number form is a lifetime budget.
	if s := specs[1]; s.GetScope().GetKind() != kindKeyModel || s.GetScope().GetModelGroup() != "claude" || s.LimitUsd != "5" || s.Duration != "" {
		t.Fatalf("legacy model budget %v", s)
	}
	if s := specs[2]; s.GetScope().GetModelGroup() != "gpt-4o" || s.LimitUsd != "0.000000001" || s.Duration != "1d" {
		t.Fatalf("model budget %v", s)
	}

	m := decode(t, body)
	if m["key"] != "sk-chosen-by-the-caller-123" || m["token"] == "" || m["key_alias"] != "ci" || m["team_id"] != "t-1" {
		t.Fatalf("answer %s", body)
	}
	if num(m, "max_budget") != "10.1" || m["budget_duration"] != "30d" || num(m, "spend") != "0" {
		t.Fatalf("budget fields %s", body)
	}
	if num(m, "model_max_budget.gpt-4o.budget_limit") != "0.000000001" || at(m, "model_max_budget.gpt-4o.time_period") != "1d" ||
		num(m, "model_max_budget.claude.budget_limit") != "5" {
		t.Fatalf("model_max_budget %v", m["model_max_budget"])
	}
	if m["expires"] != "2026-03-31T12:00:00Z" || m["duration"] != "30d" {
		t.Fatalf("expiry %v %v", m["expires"], m["duration"])
	}
}

func TestKeyGenerateRefusesWhatItCannotEnforce(t *testing.T) {
	r := newRig(t, nil)
	for body, param := range map[string]string{
		`{"tpm_limit": 1000}`:                     "tpm_limit",
		`{"rpm_limit": 5}`:                        "rpm_limit",
		`{"max_parallel_requests": 2}`:            "max_parallel_requests",
		`{"soft_budget": 1}`:                      "soft_budget",
		`{"spend": 3}`:                            "spend",
		`{"max_budget": "0.0000000001"}`:          "max_budget", // finer than a nano-dollar
		`{"max_budget": -1}`:                      "max_budget",
		`{"max_budget": "ten"}`:                   "max_budget",
		`{"budget_duration": "1 day"}`:            "budget_duration",
		`{"duration": "forever"}`:                 "duration",
		`{"model_max_budget": {"gpt-4o": {}}}`:    "model_max_budget.gpt-4o",
		`{"model_max_budget": {"gpt-4o": "abc"}}`: "model_max_budget.gpt-4o",
		`{"models": "gpt-4o"}`:                    "models",
	} {
		st, b := r.do("POST", "/key/generate", masterKey, body)
		if st != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, st, b)
			continue
		}
		if p, _ := at(decode(t, b), "error.param").(string); p != param {
			t.Errorf("%s: param %q, want %q (%s)", body, p, param, b)
		}
	}
	if n := r.budget.count("CreateKey"); n != 0 {
		t.Fatalf("%d keys created from refused requests", n)
	}
}

func TestMoneyIsRenderedExactly(t *testing.T) {
	r := newRig(t, nil)
	r.ok("POST", "/key/update", masterKey, `{"key": "key-user", "max_budget": 0.3, "budget_duration": "1d"}`)
	r.ledger.spend["SCOPE_KIND_KEY/key-user"] = 123456 // 0.000123456 USD
	r.ledger.groups["SCOPE_KIND_KEY/key-user"] = []*ledgerv1.ModelGroupSpend{{ModelGroup: "gpt-4o", SpentNanos: 100_000_000_001}}
	body := r.ok("GET", "/key/info?key=key-user", masterKey, "")
	for _, want := range []string{`"spend":0.000123456`, `"max_budget":0.3`, `"gpt-4o":100.000000001`} {
		if !strings.Contains(body, want) {
			t.Errorf("answer lacks %s: %s", want, body)
		}
	}
	// 0.1 + 0.2 is 0.3 here, not 0.30000000000000004.
	r.ok("POST", "/key/update", masterKey, `{"key": "key-user", "max_budget": 0.30000000}`)
	if b := r.budget.budgetsOn(kindKey, "key-user"); len(b) != 1 || b[0].GetSpec().GetLimitUsd() != "0.3" || b[0].GetLimitNanos() != 300_000_000 {
		t.Fatalf("budgets %v", b)
	}
}

func TestKeyInfoMasterReadsAnyKeyAVirtualKeyOnlyItself(t *testing.T) {
	r := newRig(t, nil)
	for _, path := range []string{"/key/info?key=key-user", "/key/info?key=" + userKey} {
		m := decode(t, r.ok("GET", path, masterKey, ""))
		if m["key"] != "key-user" || at(m, "info.key_alias") != "mine" || at(m, "info.team_id") != "t-1" {
			t.Fatalf("%s: %v", path, m)
		}
	}
	for _, path := range []string{"/key/info", "/key/info?key=key-user", "/key/info?key=" + userKey} {
		m := decode(t, r.ok("GET", path, userKey, ""))
		if m["key"] != "key-user" {
			t.Fatalf("%s as the key itself: %v", path, m)
		}
	}
	for _, path := range []string{"/key/info?key=key-other", "/key/info?key=" + otherKey} {
		st, b := r.do("GET", path, userKey, "")
		if typ, _ := errType(t, b); st != http.StatusForbidden || typ != "permission_error" {
			t.Fatalf("%s as another key: %d %s", path, st, b)
		}
	}
	st, b := r.do("GET", "/key/info", "", "")
	if typ, _ := errType(t, b); st != http.StatusUnauthorized || typ != "authentication_error" {
		t.Fatalf("no key: %d %s", st, b)
	}
	st, b = r.do("GET", "/key/info", "sk-nobody-knows-this-key", "")
	if st != http.StatusUnauthorized {
		t.Fatalf("unknown key: %d %s", st, b)
	}
	st, b = r.do("GET", "/key/info", masterKey, "")
	if st != http.StatusBadRequest {
		t.Fatalf("master without ?key=: %d %s", st, b)
	}
	st, b = r.do("GET", "/key/info?key=key-gone", masterKey, "")
	if _, code := errType(t, b); st != http.StatusNotFound || code != "not_found" {
		t.Fatalf("unknown key id: %d %s", st, b)
	}
}

func TestVirtualKeyCannotCallAnyOtherAdminPath(t *testing.T) {
	r := newRig(t, nil)
	before := len(r.budget.calls)
	routes := (&Handler{}).adminOnly()
	if len(routes) < 30 {
		t.Fatalf("only %d admin-only routes", len(routes))
	}
	for p := range routes {
		method, path, _ := strings.Cut(p, " ")
		for _, header := range []string{"Authorization", "Api-Key", "X-Litellm-Api-Key"} {
			req, _ := http.NewRequest(method, r.url+path, strings.NewReader(`{}`))
			v := userKey
			if header == "Authorization" {
				v = "Bearer " + userKey
			}
			req.Header.Set(header, v)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s with a virtual key in %s: %d; want 403", p, header, res.StatusCode)
			}
		}
		if st, _ := r.do(method, path, "", `{}`); st != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d; want 401", p, st)
		}
	}
	for _, c := range r.budget.calls[before:] {
		if c != "Authenticate" {
			t.Fatalf("a refused caller reached the budget service: %v", r.budget.calls[before:])
		}
	}
}

func TestAdminDisabledWithoutMasterKey(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MasterKey = "" })
	st, b := r.do("POST", "/team/new", masterKey, `{}`)
	if st != http.StatusUnauthorized {
		t.Fatalf("the configured-away master key is just an unknown key: %d %s", st, b)
	}
	st, b = r.do("POST", "/team/new", userKey, `{}`)
	if st != http.StatusForbidden || !strings.Contains(b, "master_key is not set") {
		t.Fatalf("%d %s", st, b)
	}
	r.ok("GET", "/key/info", userKey, "")
}

func TestConnectCodesMapToHTTP(t *testing.T) {
	for code, want := range map[connect.Code]int{
		connect.CodeInvalidArgument:    400,
		connect.CodeFailedPrecondition: 400,
		connect.CodeNotFound:           404,
		connect.CodeAlreadyExists:      409,
		connect.CodePermissionDenied:   403,
		connect.CodeUnavailable:        503,
		connect.CodeDeadlineExceeded:   504,
		connect.CodeInternal:           502,
	} {
		r := newRig(t, nil)
		r.budget.fail["CreateKey"] = connect.NewError(code, errors.New("from the budget service"))
		st, b := r.do("POST", "/key/generate", masterKey, `{}`)
		if st != want {
			t.Errorf("%v: %d; want %d (%s)", code, st, want, b)
		}
		errType(t, b)
		if !strings.Contains(b, "from the budget service") {
			t.Errorf("%v: the service's message is lost: %s", code, b)
		}
	}
	r := newRig(t, nil)
	r.ledger.err = connect.NewError(connect.CodeUnavailable, errors.New("postgres down"))
	st, b := r.do("GET", "/key/info?key=key-user", masterKey, "")
	if st != http.StatusServiceUnavailable || !strings.Contains(b, "ledger service unavailable") {
		t.Fatalf("ledger down: %d %s", st, b)
	}
}

func TestKeyUpdateChangesOnlyWhatItNames(t *testing.T) {
	r := newRig(t, nil)
	r.ok("POST", "/key/update", masterKey, `{"key": "`+userKey+`", "key_alias": "renamed", "blocked": true, "team_id": null,
		"metadata": {"owner": "sre"}, "max_budget": 20, "budget_duration": "7d",
		"model_max_budget": {"gpt-4o": {"budget_limit": 1, "time_period": "1d"}, "claude": {"budget_limit": 2, "time_period": "1d"}}}`)
	u := r.budget.last("UpdateKey").(*budgetv1.UpdateKeyRequest)
	if !slices.Equal(u.UpdateFields, []string{"key_alias", "blocked", "metadata"}) || u.Key.KeyId != "key-user" || u.Key.KeyAlias != "renamed" || !u.Key.Blocked {
		t.Fatalf("update %v (null team_id must not clear the team)", u)
	}
	own := r.budget.budgetsOn(kindKey, "key-user")
	if len(own) != 1 || own[0].GetSpec().GetDuration() != "7d" || own[0].GetLimitNanos() != 20_000_000_000 {
		t.Fatalf("key budget %v", own)
	}
	id := own[0].GetSpec().GetBudgetId()

	// Only the limit: the budget keeps its id and duration.
	r.ok("POST", "/key/update", masterKey, `{"key": "key-user", "max_budget": "25"}`)
	own = r.budget.budgetsOn(kindKey, "key-user")
	if len(own) != 1 || own[0].GetSpec().GetBudgetId() != id || own[0].GetSpec().GetDuration() != "7d" || own[0].GetLimitNanos() != 25_000_000_000 {
		t.Fatalf("after a limit change %v", own)
	}
	// Only the duration: the same budget moves to it, no second budget.
	r.ok("POST", "/key/update", masterKey, `{"key": "key-user", "budget_duration": "1mo"}`)
	own = r.budget.budgetsOn(kindKey, "key-user")
	if len(own) != 1 || own[0].GetSpec().GetBudgetId() != id || own[0].GetSpec().GetDuration() != "1mo" || own[0].GetLimitNanos() != 25_000_000_000 {
		t.Fatalf("after a duration change %v", own)
	}
	// model_max_budget replaces the whole map, as in LiteLLM.
	body := r.ok("POST", "/key/update", masterKey, `{"key": "key-user", "model_max_budget": {"gpt-4o": {"budget_limit": "3", "time_period": "1d"}}}`)
	pm := r.budget.budgetsOn(kindKeyModel, "key-user")
	if len(pm) != 1 || pm[0].GetSpec().GetScope().GetModelGroup() != "gpt-4o" || pm[0].GetLimitNanos() != 3_000_000_000 {
		t.Fatalf("model budgets %v", pm)
	}
	m := decode(t, body)
	if m["key"] != "key-user" || at(m, "key_alias") != "renamed" || num(m, "max_budget") != "25" || m["budget_duration"] != "1mo" ||
		num(m, "model_max_budget.gpt-4o.budget_limit") != "3" || at(m, "model_max_budget.claude") != nil {
		t.Fatalf("answer %s", body)
	}
	if n := r.budget.count("UpdateKey"); n != 1 {
		t.Fatalf("%d UpdateKey calls; budget-only updates need none", n)
	}
}

func TestABlockedKeyIsAddressedByItsClearText(t *testing.T) {
	r := newRig(t, nil)
	r.budget.keys["key-user"].Blocked = true
	r.ok("POST", "/key/update", masterKey, `{"key": "`+userKey+`", "blocked": false}`)
	if r.budget.keys["key-user"].Blocked {
		t.Fatal("not unblocked")
	}
	if req := r.budget.reqs["GetKey"][0].(*budgetv1.GetKeyRequest); req.GetKeyHash() != hashOf(userKey) {
		t.Fatalf("looked up by %v; want the clear key's hash", req)
	}
}

func TestKeyDeleteResolvesEveryKeyFirst(t *testing.T) {
	r := newRig(t, nil)
	st, b := r.do("POST", "/key/delete", masterKey, `{"keys": ["key-other", "key-nope"]}`)
	if st != http.StatusNotFound {
		t.Fatalf("%d %s", st, b)
	}
	if r.budget.count("DeleteKey") != 0 {
		t.Fatal("a key was deleted although another in the request does not exist")
	}
	m := decode(t, r.ok("POST", "/key/delete", masterKey, `{"keys": ["key-other", "`+userKey+`"]}`))
	if got := at(m, "deleted_keys").([]any); len(got) != 2 {
		t.Fatalf("answer %v", m)
	}
	if len(r.budget.keys) != 0 {
		t.Fatalf("keys left %v", r.budget.keys)
	}
	if st, _ := r.do("POST", "/key/delete", masterKey, `{"key_aliases": ["x"]}`); st != http.StatusBadRequest {
		t.Fatalf("key_aliases: %d", st)
	}
}

func TestKeyInfoSpendIsTheLedgersOverTheBudgetWindow(t *testing.T) {
	r := newRig(t, nil)
	r.ok("POST", "/key/update", masterKey, `{"key": "key-user", "max_budget": 5, "budget_duration": "1d"}`)
	r.ledger.ranges = nil
	m := decode(t, r.ok("GET", "/key/info?key=key-user", masterKey, ""))
	// The fake anchors budgets an hour before now: the window started then.
	start := fixedNow.Add(-time.Hour)
	if len(r.ledger.ranges) != 1 || !r.ledger.ranges[0].GetStart().AsTime().Equal(start) || r.ledger.ranges[0].GetEnd() != nil {
		t.Fatalf("ledger ranges %v; want [%v, now)", r.ledger.ranges, start)
	}
	if at(m, "info.budget_reset_at") != "2026-03-02T11:00:00Z" {
		t.Fatalf("budget_reset_at %v", at(m, "info.budget_reset_at"))
	}
	budgets, _ := at(m, "info.budgets").([]any)
	if len(budgets) != 1 || at(budgets[0].(map[string]any), "scope") != "key" || at(budgets[0].(map[string]any), "budget_duration") != "1d" {
		t.Fatalf("budgets %v", budgets)
	}
	// A key without a budget reports its all-time spend.
	r.ledger.ranges = nil
	r.ok("GET", "/key/info?key=key-other", masterKey, "")
	if len(r.ledger.ranges) != 1 || r.ledger.ranges[0] != nil {
		t.Fatalf("ranges %v", r.ledger.ranges)
	}
}
