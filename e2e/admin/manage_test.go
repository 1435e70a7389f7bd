package admin_test

import (
	"net/http"
	"testing"

	"github.com/spendledger/spendledger/e2e/harness"
)

// chat is one completion with key, as the end user (when not empty); it
// returns the status.
func (c *client) chat(key, endUser string) int {
	c.t.Helper()
	body := `{"model": "gpt-4o", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]`
	if endUser != "" {
		body += `, "user": "` + endUser + `"`
	}
	code, _ := c.call("POST", "/v1/chat/completions", key, body+"}")
	return code
}

// TestAdminUpdateDeleteBlockAgainstTheStack drives the management endpoints
// against the real budget service: what they write is what admission
// enforces on the next request.
func TestAdminUpdateDeleteBlockAgainstTheStack(t *testing.T) {
	t.Parallel()
	st := harness.StartStack(t, harness.WithGatewayConfigYAML(gatewayConfig))
	c := &client{t: t, url: st.GatewayURL}

	c.ok("POST", "/team/new", masterKey, `{"team_id": "m-team", "max_budget": "0.000001", "budget_duration": "1d"}`)
	k := c.ok("POST", "/key/generate", masterKey, `{"team_id": "m-team"}`)
	key, _ := k["key"].(string)
	if code := c.chat(key, ""); code != http.StatusTooManyRequests {
		t.Fatalf("chat under a $0.000001 team budget: %d; want 429", code)
	}
	up := c.ok("POST", "/team/update", masterKey, `{"team_id": "m-team", "max_budget": 5}`)
	if num(up, "data.max_budget") != "5" || at(up, "data.budget_duration") != "1d" {
		t.Fatalf("team/update %v", up)
	}
	if code := c.chat(key, ""); code != http.StatusOK {
		t.Fatalf("chat after the team's limit was raised: %d", code)
	}

	// Deleting a team its key references is refused; the key still works.
	c.status("POST", "/team/delete", masterKey, `{"team_ids": ["m-team"]}`, http.StatusBadRequest)
	list := c.ok("GET", "/key/list?team_id=m-team", masterKey, "")
	if num(list, "total_count") != "1" || at(list, "keys.0") != k["token"] {
		t.Fatalf("key/list %v", list)
	}

	// Block and unblock by the clear key: refused at once, then served.
	// A blocked key is refused at once: 401 where the gateway authenticates
	// it afresh, 403 from admission while its auth cache still holds the key.
	c.ok("POST", "/key/block", masterKey, `{"key": "`+key+`"}`)
	if code := c.chat(key, ""); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("chat with a blocked key: %d; want 401 or 403", code)
	}
	if b := c.ok("POST", "/key/unblock", masterKey, `{"key": "`+key+`"}`); b["blocked"] != false {
		t.Fatalf("key/unblock %v", b)
	}
	if code := c.chat(key, ""); code != http.StatusOK {
		t.Fatalf("chat after unblock: %d", code)
	}

	// A blocked customer is refused (403) on the next request, by id.
	c.ok("POST", "/customer/new", masterKey, `{"user_id": "m-cust", "max_budget": 1}`)
	if code := c.chat(key, "m-cust"); code != http.StatusOK {
		t.Fatalf("chat as a customer: %d", code)
	}
	c.ok("POST", "/customer/block", masterKey, `{"user_ids": ["m-cust"]}`)
	if code := c.chat(key, "m-cust"); code != http.StatusForbidden {
		t.Fatalf("chat as a blocked customer: %d; want 403", code)
	}
	if code := c.chat(key, "m-other"); code != http.StatusOK {
		t.Fatalf("another end user under the same key: %d", code)
	}
	// litellm_settings.max_end_user_budget (2) caps every end user a request
	// names, not only customers created through the API; a customer's own
	// budget stays.
	if info := c.ok("GET", "/customer/info?end_user_id=m-other", masterKey, ""); num(info, "max_budget") != "2" {
		t.Fatalf("an end user first seen in a request has no default budget: %v", info)
	}
	if info := c.ok("GET", "/customer/info?end_user_id=m-cust", masterKey, ""); num(info, "max_budget") != "1" {
		t.Fatalf("a customer's own budget was replaced by the default: %v", info)
	}
	c.ok("POST", "/customer/unblock", masterKey, `{"user_ids": ["m-cust"]}`)
	if code := c.chat(key, "m-cust"); code != http.StatusOK {
		t.Fatalf("chat as an unblocked customer: %d", code)
	}

	// Once its key is gone, the team can go.
	c.ok("POST", "/key/delete", masterKey, `{"keys": ["`+key+`"]}`)
	if d := c.ok("POST", "/team/delete", masterKey, `{"team_ids": ["m-team"]}`); at(d, "deleted_teams.0") != "m-team" {
		t.Fatalf("team/delete %v", d)
	}
	c.status("GET", "/team/info?team_id=m-team", masterKey, "", http.StatusNotFound)
}
