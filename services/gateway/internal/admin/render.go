package admin

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

// usd renders nano-USD as an exact JSON number in dollars: 123456 nanos is
// 0.000123456, never 0.00012345600000000001. LiteLLM's clients read these
// fields as numbers; the text is exact, whatever the client then does with it.
func usd(n money.Nanos) json.Number { return json.Number(n.String()) }

func usdNanos(n int64) json.Number { return usd(money.Nanos(n)) }

// usdPtr is usd, or null.
func usdPtr(n *money.Nanos) *json.Number {
	if n == nil {
		return nil
	}
	v := usd(*n)
	return &v
}

// strPtr is s, or null when empty (LiteLLM's unset fields are null).
func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ts renders a timestamp, or null.
func ts(t *timestamppb.Timestamp) *string {
	if t == nil {
		return nil
	}
	s := timeText(t.AsTime())
	return &s
}

// metadataOut renders stored metadata, with tags (LiteLLM's metadata.tags)
// added back when there are any. Values are the stored strings; non-string
// values were stored as their JSON text.
func metadataOut(m map[string]string, tags []string) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	if len(tags) > 0 {
		out["tags"] = tags
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// budgetJSON is one budget in its current window: this gateway's extension
// to LiteLLM's shapes ("budgets"), so an operator sees every budget that
// applies, its spend and what admission has reserved.
type budgetJSON struct {
	BudgetID       string      `json:"budget_id"`
	Scope          string      `json:"scope"`
	ScopeID        string      `json:"scope_id"`
	ModelGroup     string      `json:"model_group,omitempty"`
	MaxBudget      json.Number `json:"max_budget"`
	BudgetDuration *string     `json:"budget_duration"`
	Spend          json.Number `json:"spend"`
	Reserved       json.Number `json:"reserved"`
	Remaining      json.Number `json:"remaining"`
	WindowStart    *string     `json:"window_start"`
	BudgetResetAt  *string     `json:"budget_reset_at"`
	SoftBudgets    []string    `json:"soft_thresholds,omitempty"`
}

// budgetsOut renders statuses; specs (by budget id) add the duration.
func budgetsOut(statuses []*budgetv1.BudgetStatus, specs map[string]*budgetv1.Budget) []budgetJSON {
	out := make([]budgetJSON, 0, len(statuses))
	for _, st := range statuses {
		b := budgetJSON{
			BudgetID:      st.GetBudgetId(),
			MaxBudget:     usdNanos(st.GetLimitNanos()),
			Spend:         usdNanos(st.GetSpentNanos()),
			Reserved:      usdNanos(st.GetReservedNanos()),
			Remaining:     usdNanos(st.GetRemainingNanos()),
			WindowStart:   ts(st.GetWindowStart()),
			BudgetResetAt: ts(st.GetResetsAt()),
		}
		if sc, err := protoconv.Scope(st.GetScope()); err == nil {
			b.Scope, b.ScopeID, b.ModelGroup = sc.Kind.String(), sc.ID, sc.ModelGroup
		}
		if sp, ok := specs[st.GetBudgetId()]; ok {
			d := sp.GetSpec().GetDuration()
			b.BudgetDuration = strPtr(d)
			b.SoftBudgets = sp.GetSpec().GetSoftThresholds()
		}
		out = append(out, b)
	}
	return out
}
