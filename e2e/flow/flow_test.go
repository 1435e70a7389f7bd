// Package flow_test drives the whole product end to end on real stores: a
// client calls the gateway with a virtual key, the budget service admits it,
// the usage event is priced and lands in the ledger and on the key's counter,
// and `ledger verify` proves the counters equal the ledger.
package flow_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
)

func TestMain(m *testing.M) { harness.Main(m) }

// config has mock deployments only: no provider account. The opus group's
// backend name is decorated the way Vertex names it (the 001 scenario).
const config = `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      mock_response: "Hello from the flow test."
    model_info:
      id: gpt-4o-mock
  - model_name: claude-opus-4-6
    litellm_params:
      model: vertex_ai/claude-opus-4-6@default
      mock_response: "Hello from a decorated backend."
    model_info:
      id: opus-vertex
      base_model: claude-opus-4-6
general_settings:
  master_key: sk-flow-master
`

type flow struct {
	t      *testing.T
	st     *harness.Stack
	budget budgetv1connect.BudgetServiceClient
	pool   *pgxpool.Pool
}

// start starts a stack with the flow config; later options override it.
func start(t *testing.T, opts ...harness.Option) *flow {
	t.Helper()
	st := harness.StartStack(t, append([]harness.Option{harness.WithGatewayConfigYAML(config)}, opts...)...)
	pool, err := pgxpool.New(context.Background(), st.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &flow{t: t, st: st, pool: pool, budget: budgetv1connect.NewBudgetServiceClient(http.DefaultClient, st.BudgetURL)}
}

// key creates a virtual key with the given budgets and returns its id and
// clear text.
func (f *flow) key(budgets ...*budgetv1.BudgetSpec) (string, string) {
	f.t.Helper()
	res, err := f.budget.CreateKey(context.Background(), connect.NewRequest(&budgetv1.CreateKeyRequest{
		Key: &budgetv1.Key{KeyAlias: "flow"}, Budgets: budgets,
	}))
	if err != nil {
		f.t.Fatalf("create key: %v", err)
	}
	return res.Msg.GetKey().GetKeyId(), res.Msg.GetClearKey()
}

// chat calls the gateway and returns the status, headers and body.
func (f *flow) chat(key, model string, stream bool) (int, http.Header, string) {
	f.t.Helper()
	return f.send(key, fmt.Sprintf(`{"model":%q,"stream":%t,"max_tokens":64,"messages":[{"role":"user","content":"How much does this cost?"}]}`, model, stream))
}

// send posts body to /v1/chat/completions with key and returns the status,
// headers (with a streamed response's trailers) and body.
func (f *flow) send(key, body string) (int, http.Header, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.st.GatewayURL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// Streamed responses carry the cost header as a trailer.
	for k, v := range resp.Trailer {
		resp.Header[k] = v
	}
	return resp.StatusCode, resp.Header, string(b)
}

// ledgerSpend waits until the key has n entries and returns their sum.
func (f *flow) ledgerSpend(keyID string, n int) int64 {
	f.t.Helper()
	var count, sum int64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		err := f.pool.QueryRow(context.Background(),
			`SELECT count(*), coalesce(sum(total_nanos), 0)::bigint FROM ledger_entries WHERE key_id = $1`, keyID).Scan(&count, &sum)
		if err == nil && count == int64(n) {
			return sum
		}
	}
	f.t.Fatalf("key %s has %d ledger entries after 30s; want %d", keyID, count, n)
	return 0
}

func (f *flow) verify() {
	f.t.Helper()
	if code, out := f.st.Run("ledger", "verify"); code != 0 {
		f.t.Fatalf("ledger verify exited %d:\n%s", code, out)
	}
}

func TestARequestIsAdmittedPricedAndLandsInLedgerAndCounter(t *testing.T) {
	t.Parallel()
	f := start(t)
	keyID, key := f.key(&budgetv1.BudgetSpec{LimitUsd: "5", Duration: "1d"})

	code, h, body := f.chat(key, "gpt-4o", false)
	if code != http.StatusOK {
		t.Fatalf("chat: %d %s", code, body)
	}
	code, sh, sbody := f.chat(key, "gpt-4o", true)
	if code != http.StatusOK || !strings.Contains(sbody, "data: [DONE]") {
		t.Fatalf("streamed chat: %d %s", code, sbody)
	}

	spent := f.ledgerSpend(keyID, 2)
	// The client was told the exact cost of each call; the ledger holds the sum.
	var told int64
	for _, hdr := range []http.Header{h, sh} {
		n, err := money.ParseDollars(hdr.Get("X-Litellm-Response-Cost"))
		if err != nil || n <= 0 {
			t.Fatalf("response cost header %q: %v", hdr.Get("X-Litellm-Response-Cost"), err)
		}
		told += int64(n)
	}
	if spent != told {
		t.Fatalf("ledger holds %d nano-USD; the responses reported %d", spent, told)
	}

	info, err := f.budget.GetKey(context.Background(), connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: keyID}))
	if err != nil {
		t.Fatal(err)
	}
	var keySpent int64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		info, err = f.budget.GetKey(context.Background(), connect.NewRequest(&budgetv1.GetKeyRequest{KeyId: keyID}))
		if err == nil && len(info.Msg.GetBudgets()) == 1 {
			if keySpent = info.Msg.GetBudgets()[0].GetSpentNanos(); keySpent == spent {
				break
			}
		}
	}
	if keySpent != spent {
		t.Fatalf("key budget shows %d spent; the ledger holds %d", keySpent, spent)
	}
	f.verify()
}

// The 001 scenario end to end: a per-model budget on a key, a deployment whose
// backend name is decorated, and requests denied once spend passes the limit.
func TestPerModelBudgetWithDecoratedBackendIsEnforced(t *testing.T) {
	t.Parallel()
	f := start(t)
	keyID, key := f.key(&budgetv1.BudgetSpec{
		Scope:    &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, ModelGroup: "claude-opus-4-6"},
		LimitUsd: "0.01", Duration: "1d",
	})

	var admitted, denied int
	var denial string
	for i := 0; i < 40 && denied == 0; i++ {
		code, _, body := f.chat(key, "claude-opus-4-6", false)
		switch code {
		case http.StatusOK:
			admitted++
			f.ledgerSpend(keyID, admitted) // let the ledger settle before the next
		case http.StatusTooManyRequests:
			denied++
			denial = body
		default:
			t.Fatalf("chat: %d %s", code, body)
		}
	}
	if admitted == 0 || denied == 0 {
		t.Fatalf("admitted %d, denied %d; want some of each before 40 requests", admitted, denied)
	}
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(denial), &e); err != nil || !strings.Contains(e.Error.Message, "claude-opus-4-6") || !strings.Contains(e.Error.Message, "limit") {
		t.Fatalf("denial %q; want it to name the model group and the limit", denial)
	}
	spent := f.ledgerSpend(keyID, admitted)
	if spent > 10_000_000 {
		t.Fatalf("settled %d nano-USD against a $0.01 per-model budget", spent)
	}
	// Another model group is not limited by the per-model budget.
	if code, _, body := f.chat(key, "gpt-4o", false); code != http.StatusOK {
		t.Fatalf("gpt-4o under the same key: %d %s", code, body)
	}
	f.verify()
}

func TestAnUnknownKeyIsRefusedWithAnOpenAIError(t *testing.T) {
	t.Parallel()
	f := start(t)
	code, _, body := f.chat("sk-not-a-key-at-all-0000", "gpt-4o", false)
	var e struct {
		Error struct {
			Message, Type string
		} `json:"error"`
	}
	if code != http.StatusUnauthorized || json.NewDecoder(bufio.NewReader(strings.NewReader(body))).Decode(&e) != nil || e.Error.Message == "" {
		t.Fatalf("unknown key: %d %s; want 401 with an OpenAI error body", code, body)
	}
}
