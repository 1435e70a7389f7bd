package admission

import (
	"context"
	"time"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/budget/internal/api"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// Spend implements api.SpendReader: each budget's settled spend and live
// reservations in the window containing at, read from the counters admission
// checks (reseeded from the ledger when missing), so /key/info shows the
// figures that admission enforces.
func (a *Admitter) Spend(ctx context.Context, budgets []store.Budget, at time.Time) ([]api.Spend, error) {
	if len(budgets) == 0 {
		return nil, nil
	}
	keys := make([]string, len(budgets))
	for i := range budgets {
		keys[i] = counterFor(&budgets[i], at).key
	}
	states, err := a.read(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]api.Spend, len(budgets))
	for i, st := range states {
		out[i] = api.Spend{Spent: money.Nanos(st.Spent), Reserved: money.Nanos(st.Live)}
	}
	return out, nil
}
