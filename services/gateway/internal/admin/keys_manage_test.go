package admin

import (
	"fmt"
	"net/http"
	"testing"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
)

func TestKeyListPagesLikeLiteLLM(t *testing.T) {
	r := newRig(t, nil)
	for i := range 23 {
		r.budget.addKey(&budgetv1.Key{KeyId: fmt.Sprintf("key-t5-%02d", i), TeamId: "t-5"}, fmt.Sprintf("sk-t5-%02d-padding-for-length", i))
	}
	m := decode(t, r.ok("GET", "/key/list?team_id=t-5&page=3&size=10", masterKey, ""))
	keys, _ := m["keys"].([]any)
	if num(m, "total_count") != "23" || num(m, "total_pages") != "3" || num(m, "current_page") != "3" || len(keys) != 3 || keys[0] != "key-t5-20" {
		t.Fatalf("page 3: %v", m)
	}
	m = decode(t, r.ok("GET", "/key/list?team_id=t-5&return_full_object=true", masterKey, ""))
	keys, _ = m["keys"].([]any)
	if len(keys) != 10 || at(keys[0].(map[string]any), "token") != "key-t5-00" || at(keys[0].(map[string]any), "team_id") != "t-5" {
		t.Fatalf("full objects: %v", m)
	}
	if m := decode(t, r.ok("GET", "/key/list", masterKey, "")); num(m, "total_count") != "25" {
		t.Fatalf("every key: %v", m)
	}
	if m := decode(t, r.ok("GET", "/key/list?team_id=t-5&page=9", masterKey, "")); len(m["keys"].([]any)) != 0 {
		t.Fatalf("past the end: %v", m)
	}
	for _, q := range []string{"page=0", "size=101", "size=x"} {
		if st, _ := r.do("GET", "/key/list?"+q, masterKey, ""); st != http.StatusBadRequest {
			t.Errorf("%s: %d", q, st)
		}
	}
}

func TestKeyBlockAndUnblock(t *testing.T) {
	r := newRig(t, nil)
	m := decode(t, r.ok("POST", "/key/block", masterKey, `{"key": "`+otherKey+`"}`))
	if m["key"] != "key-other" || m["blocked"] != true {
		t.Fatalf("block: %v", m)
	}
	req := r.budget.last("UpdateKey").(*budgetv1.UpdateKeyRequest)
	if len(req.UpdateFields) != 1 || req.UpdateFields[0] != "blocked" || !req.GetKey().GetBlocked() {
		t.Fatalf("update %v", req)
	}
	if m := decode(t, r.ok("POST", "/key/unblock", masterKey, `{"key": "key-other"}`)); m["blocked"] != false {
		t.Fatalf("unblock: %v", m)
	}
	if st, _ := r.do("POST", "/key/block", masterKey, `{}`); st != http.StatusBadRequest {
		t.Fatalf("no key: %d", st)
	}
	if st, _ := r.do("POST", "/key/block", masterKey, `{"key": "key-nope"}`); st != http.StatusNotFound {
		t.Fatalf("unknown key: %d", st)
	}
}
