package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	"github.com/spendledger/spendledger/ledger/money"
)

// Budgets. A bounded key's requests all set max_tokens, so its limit is a hard
// bound the run checks; it is small, so keys run into it under load and
// admission denies. A mixed key also gets requests without max_tokens, whose
// reservation assumes the model's largest output (about $0.16 for gpt-4o), so
// its limit is larger and only reported.
const (
	boundedLimitUSD    = "0.01"
	mixedLimitUSD      = "1"
	initialBoundedKeys = 6
	mixedKeys          = 2
	keysPerStep        = 2 // bounded keys added after each fault, so load keeps finding budget
)

// key is one virtual key of the run.
type key struct {
	id, secret string
	alias      string
	limit      money.Nanos
	mixed      bool // also gets requests without max_tokens
}

// keyring holds the run's keys; clients pick from it while faults add to it.
type keyring struct {
	budget budgetv1connect.BudgetServiceClient

	mu   sync.Mutex
	keys []*key
}

func newKeyring(st *harness.Stack) *keyring {
	return &keyring{budget: budgetv1connect.NewBudgetServiceClient(http.DefaultClient, st.BudgetURL)}
}

// create adds n keys. The budget service is up when this runs (between
// faults), but may still be settling after a fault: each key is retried for a
// while before the run fails.
func (kr *keyring) create(t *testing.T, n int, mixed bool) {
	t.Helper()
	limitUSD := boundedLimitUSD
	if mixed {
		limitUSD = mixedLimitUSD
	}
	limit, err := money.ParseLimit(limitUSD)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		kr.mu.Lock()
		alias := fmt.Sprintf("chaos-%d", len(kr.keys))
		kr.mu.Unlock()
		req := &budgetv1.CreateKeyRequest{
			Key:     &budgetv1.Key{KeyAlias: alias},
			Budgets: []*budgetv1.BudgetSpec{{LimitUsd: limitUSD}}, // lifetime: one window for the run
		}
		var res *connect.Response[budgetv1.CreateKeyResponse]
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err = kr.budget.CreateKey(ctx, connect.NewRequest(req))
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("create key %s: %v", alias, err)
			}
		}
		kr.mu.Lock()
		kr.keys = append(kr.keys, &key{
			id: res.Msg.GetKey().GetKeyId(), secret: res.Msg.GetClearKey(), alias: alias, limit: limit, mixed: mixed,
		})
		kr.mu.Unlock()
	}
}

// pick draws a key for a client's next request.
func (kr *keyring) pick(rng *rand.Rand) *key {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return kr.keys[rng.IntN(len(kr.keys))]
}

// all returns the keys so far (none before the keyring exists: a run that
// failed that early still writes its report).
func (kr *keyring) all() []*key {
	if kr == nil {
		return nil
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return append([]*key(nil), kr.keys...)
}
