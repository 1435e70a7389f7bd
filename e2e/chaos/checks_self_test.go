package chaos_test

import (
	"strings"
	"testing"

	"github.com/spendledger/spendledger/ledger/money"
)

// The invariants are only as good as their ability to fail: each check is fed
// books that break it, and books that do not.
func TestChecksCatchWhatTheyClaim(t *testing.T) {
	bounded := &key{id: "k1", alias: "chaos-0", limit: 1000}
	mixed := &key{id: "k2", alias: "chaos-1", limit: 1000, mixed: true}
	success := func(call string, cost money.Nanos) *request {
		return &request{key: bounded, outcome: ok, callID: call, cost: cost, maxTokens: 64}
	}
	reqs := []*request{success("a", 10), success("b", 20), success("c", 30), success("d", 40),
		{key: bounded, outcome: failed, callID: "e", status: 200, why: "200, body cut"}}
	entries := []entry{
		{eventID: "1", requestID: "a", keyID: "k1", nanos: 10},
		// b missing
		{eventID: "2", requestID: "c", keyID: "k1", nanos: 30},
		{eventID: "3", requestID: "c", keyID: "k1", nanos: 30}, // c twice
		{eventID: "4", requestID: "d", keyID: "k1", nanos: 41}, // d at another cost
		{eventID: "5", requestID: "e", keyID: "k1", nanos: 50}, // billed, client saw a failure
	}

	c := eachSuccessOnce(reqs, byRequest(entries), nil)
	if c.ok || !strings.Contains(c.detail, "1 missing, 1 more than once, 1 at another cost") {
		t.Errorf("eachSuccessOnce on broken books: ok=%t %s", c.ok, c.detail)
	}
	c = noEntryWithoutSuccess(reqs, entries, nil)
	if c.ok || !strings.Contains(c.detail, "1 entries not matching") || !strings.Contains(c.detail, "200, body cut") {
		t.Errorf("noEntryWithoutSuccess on broken books: ok=%t %s", c.ok, c.detail)
	}
	c = boundedKeysWithinLimits([]*key{bounded, mixed}, map[string]money.Nanos{"k1": 1001, "k2": 5000}, reqs, nil)
	if c.ok || !strings.Contains(c.detail, "1 bounded keys, 1 over") {
		t.Errorf("boundedKeysWithinLimits with a bounded key 1 nano over: ok=%t %s", c.ok, c.detail)
	}

	clean := []entry{
		{eventID: "1", requestID: "a", keyID: "k1", nanos: 10},
		{eventID: "2", requestID: "b", keyID: "k1", nanos: 20},
		{eventID: "3", requestID: "c", keyID: "k1", nanos: 30},
		{eventID: "4", requestID: "d", keyID: "k1", nanos: 40},
	}
	for _, c := range []check{
		eachSuccessOnce(reqs, byRequest(clean), nil),
		noEntryWithoutSuccess(reqs, clean, nil),
		// A mixed key may pass its limit: no hard bound without max_tokens.
		boundedKeysWithinLimits([]*key{bounded, mixed}, map[string]money.Nanos{"k1": 1000, "k2": 5000}, reqs, nil),
	} {
		if !c.ok {
			t.Errorf("%s failed on sound books: %s", c.name, c.detail)
		}
	}
}
