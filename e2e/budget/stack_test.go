package budget_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
)

// TestBinaryServesKeys: the built budget binary, started by the harness with
// its migrations, serves the key API over Connect; admission is not wired yet.
func TestBinaryServesKeys(t *testing.T) {
	t.Parallel()
	st := harness.StartStack(t)
	c := budgetv1connect.NewBudgetServiceClient(&http.Client{Timeout: 10 * time.Second}, st.BudgetURL)
	ctx := harness.Context(t)

	harness.OK[budgetv1.CreatePrincipalResponse](t, "create team")(c.CreatePrincipal(ctx, req(&budgetv1.CreatePrincipalRequest{
		Principal: &budgetv1.Principal{Kind: teamKind, Id: "stack-team"},
	})))
	created := harness.OK[budgetv1.CreateKeyResponse](t, "create key")(c.CreateKey(ctx, req(&budgetv1.CreateKeyRequest{
		Key:     &budgetv1.Key{KeyAlias: "stack", TeamId: "stack-team"},
		Budgets: []*budgetv1.BudgetSpec{{LimitUsd: "3", Duration: "1h"}},
	})))
	got := harness.OK[budgetv1.GetKeyResponse](t, "get key")(c.GetKey(ctx, req(&budgetv1.GetKeyRequest{KeyId: created.Key.KeyId})))
	if got.Key.KeyAlias != "stack" || len(got.Budgets) != 1 || got.Budgets[0].LimitNanos != 3_000_000_000 {
		t.Fatalf("get key: %v", got)
	}
	sum := sha256.Sum256([]byte(created.ClearKey))
	auth := harness.OK[budgetv1.AuthenticateResponse](t, "authenticate")(c.Authenticate(ctx, req(&budgetv1.AuthenticateRequest{KeyHash: hex.EncodeToString(sum[:])})))
	if auth.Key.KeyId != created.Key.KeyId {
		t.Fatalf("authenticated %v", auth.Key)
	}
	_, err := c.Admit(ctx, req(&budgetv1.AdmitRequest{RequestId: "r1", KeyId: created.Key.KeyId}))
	harness.WantCode(t, "admit without a model group", err, connect.CodeInvalidArgument)
}
