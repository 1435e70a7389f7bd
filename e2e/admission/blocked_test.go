package admission_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
)

// TestBlockedEndUsersAndTags: a request whose end user is blocked, or that
// carries a blocked tag (its own or its key's), is refused with
// PermissionDenied naming the principal, on every instance within the
// notification's latency (each cache's max age is an hour, and both caches
// hold "not blocked" for these principals before the change); unblocking
// admits again everywhere. A refused request reserves nothing.
func TestBlockedEndUsersAndTags(t *testing.T) {
	e := newEnv(t)
	a, b := e.newInstance(nil), e.newInstance(nil)
	ins := map[string]*instance{"A": a, "B": b}
	createKey(t, a.client, "k-blk", "", &budgetv1.BudgetSpec{LimitUsd: "10", Duration: "1d"})
	harness.OK[budgetv1.CreateKeyResponse](t, "create tagged key")(a.client.CreateKey(harness.Context(t), connect.NewRequest(&budgetv1.CreateKeyRequest{
		Key: &budgetv1.Key{KeyId: "k-tagged", Tags: []string{"t-key"}}})))

	n := 0
	req := func(key, endUser string, tags ...string) *budgetv1.AdmitRequest {
		n++
		r := admitReq(fmt.Sprintf("blk-%d", n), key, 1_000, 1_000)
		r.EndUserId, r.Tags = endUser, tags
		return r
	}
	// expect polls until every instance answers as wanted ("" admits, else
	// PermissionDenied whose message contains it). The instance that made
	// the change must answer so at once: its own writes apply locally.
	var counter string
	expect := func(what, changedOn, key, endUser string, tags []string, want string) {
		t.Helper()
		for _, name := range []string{changedOn, otherThan(changedOn)} {
			in := ins[name]
			within := 5 * time.Second
			if name == changedOn {
				within = 0
			}
			harness.Eventually(t, within, what+" on "+name, func() (bool, string) {
				resp, err := in.client.Admit(harness.Context(t), connect.NewRequest(req(key, endUser, tags...)))
				if want == "" {
					if err != nil || resp.Msg.GetAdmitted() == nil {
						return false, fmt.Sprintf("%v %v", err, resp)
					}
					if key == "k-blk" {
						counter = resp.Msg.GetAdmitted().CounterKeys[0]
					}
					return true, ""
				}
				if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), want) {
					return false, fmt.Sprintf("%v (%v)", err, resp)
				}
				return true, ""
			})
		}
	}

	// Both instances admit, and cache "not blocked" for each principal.
	expect("unknown principals", "A", "k-blk", "cust-9", []string{"t-req"}, "")
	expect("key tag", "A", "k-tagged", "", nil, "")
	reservedBefore := e.state(counter).Reserved

	// An end user created blocked.
	harness.OK[budgetv1.CreatePrincipalResponse](t, "create blocked end user")(a.client.CreatePrincipal(harness.Context(t), connect.NewRequest(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER, Id: "cust-9", Blocked: true}})))
	// A, which made the change, refuses at once, and the refusal reserves
	// nothing. (B may admit, and reserve, until the notification reaches it.)
	_, err := a.client.Admit(harness.Context(t), connect.NewRequest(req("k-blk", "cust-9", "t-req")))
	harness.WantCode(t, "blocked end user on A", err, connect.CodePermissionDenied)
	if got := e.state(counter).Reserved; got != reservedBefore {
		t.Fatalf("a refused request reserved: %d, was %d", got, reservedBefore)
	}
	expect("blocked end user", "A", "k-blk", "cust-9", []string{"t-req"}, `end user "cust-9" is blocked`)
	expect("other end user", "A", "k-blk", "cust-10", []string{"t-req"}, "")

	// Unblocked through B.
	setBlocked(t, b, budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER, "cust-9", false)
	expect("unblocked end user", "B", "k-blk", "cust-9", []string{"t-req"}, "")

	// A request tag, blocked by an update (the tag already exists).
	harness.OK[budgetv1.CreatePrincipalResponse](t, "create tag")(a.client.CreatePrincipal(harness.Context(t), connect.NewRequest(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG, Id: "t-req"}})))
	expect("unblocked tag", "A", "k-blk", "cust-9", []string{"t-req"}, "")
	setBlocked(t, a, budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG, "t-req", true)
	expect("blocked request tag", "A", "k-blk", "", []string{"other", "t-req"}, `tag "t-req" is blocked`)
	expect("without the tag", "A", "k-blk", "", []string{"other"}, "")
	setBlocked(t, b, budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG, "t-req", false)
	expect("unblocked request tag", "B", "k-blk", "", []string{"t-req"}, "")

	// A tag the key carries, blocked.
	harness.OK[budgetv1.CreatePrincipalResponse](t, "create key tag")(b.client.CreatePrincipal(harness.Context(t), connect.NewRequest(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG, Id: "t-key"}})))
	setBlocked(t, b, budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG, "t-key", true)
	expect("blocked key tag", "B", "k-tagged", "", nil, `tag "t-key" is blocked`)
	setBlocked(t, a, budgetv1.PrincipalKind_PRINCIPAL_KIND_TAG, "t-key", false)
	expect("unblocked key tag", "A", "k-tagged", "", nil, "")
}

func otherThan(name string) string {
	if name == "A" {
		return "B"
	}
	return "A"
}

func setBlocked(t *testing.T, in *instance, kind budgetv1.PrincipalKind, id string, blocked bool) {
	t.Helper()
	harness.OK[budgetv1.UpdatePrincipalResponse](t, fmt.Sprintf("set %s blocked=%v", id, blocked))(in.client.UpdatePrincipal(harness.Context(t), connect.NewRequest(&budgetv1.UpdatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: kind, Id: id, Blocked: blocked}, UpdateFields: []string{"blocked"}})))
}
