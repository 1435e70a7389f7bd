// Package openainpm_test runs the official openai npm client against the
// gateway: a real client, not our reading of the API, decides compatibility.
package openainpm_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
)

func TestMain(m *testing.M) { harness.Main(m) }

type usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

func TestOfficialOpenAIClientCompletesAndStreams(t *testing.T) {
	if _, err := os.Stat("node_modules/openai"); err != nil {
		t.Fatalf("the openai npm package is not installed: run `make test` (it runs npm ci in e2e/openainpm): %v", err)
	}
	st := harness.StartStack(t)
	ctx := context.Background()
	budget := budgetv1connect.NewBudgetServiceClient(http.DefaultClient, st.BudgetURL)
	created, err := budget.CreateKey(ctx, connect.NewRequest(&budgetv1.CreateKeyRequest{
		Key: &budgetv1.Key{KeyAlias: "npm"}, Budgets: []*budgetv1.BudgetSpec{{LimitUsd: "1", Duration: "1d"}},
	}))
	if err != nil {
		t.Fatal(err)
	}

	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "node", "client.mjs")
	cmd.Env = append(os.Environ(), "GATEWAY_URL="+st.GatewayURL, "API_KEY="+created.Msg.GetClearKey())
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("node client.mjs: %v\n%s", err, stderr)
	}
	var got struct {
		Content     string `json:"content"`
		Usage       usage  `json:"usage"`
		Streamed    string `json:"streamed"`
		StreamUsage *usage `json:"streamUsage"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	if got.Content == "" || got.Usage.PromptTokens == 0 || got.Usage.CompletionTokens == 0 {
		t.Fatalf("plain completion as the client saw it: %+v", got)
	}
	if got.Streamed == "" || got.StreamUsage == nil || got.StreamUsage.CompletionTokens == 0 {
		t.Fatalf("streamed completion as the client saw it: %+v", got)
	}
	if !strings.Contains(got.Content, "Hello") {
		t.Fatalf("content %q; want the demo deployment's canned reply", got.Content)
	}

	// Both calls were billed: two ledger entries for the key.
	pool, err := pgxpool.New(ctx, st.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && n < 2; time.Sleep(100 * time.Millisecond) {
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM ledger_entries WHERE key_id = $1`, created.Msg.GetKey().GetKeyId()).Scan(&n)
	}
	if n != 2 {
		t.Fatalf("%d ledger entries for the key; want 2 (one plain, one streamed)", n)
	}
}
