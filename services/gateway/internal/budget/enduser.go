package budget

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/internal/serve"
)

// EndUserDefaults gives every end user a request names (the OpenAI `user`
// field) the budget of litellm_settings.max_end_user_budget before the
// request is admitted, unless the end user already has a budget of its own
// (set with /customer/new or the budget service). LiteLLM applies that
// setting to every end user; applying it only to customers created through
// the API would leave the others unbounded without a word.
//
// Each instance asks once per end user (then remembers); several gateways
// racing on a new end user write one budget (the budget service keeps one
// budget per scope and duration). An operator's budget set in the instant
// between the check and the write can be replaced by the default: set
// customer budgets before their first request.
type EndUserDefaults struct {
	c        budgetv1connect.BudgetServiceClient
	limit    money.Nanos
	duration string

	mu    sync.Mutex
	known map[string]struct{}
}

// maxKnownEndUsers bounds the memory of end users already checked; past it
// the memory starts over (a repeated check only costs one ListBudgets).
const maxKnownEndUsers = 100_000

// NewEndUserDefaults returns the default-budget writer for the budget
// service at baseURL: limit over duration ("" is a lifetime budget).
func NewEndUserDefaults(httpClient *http.Client, baseURL string, limit money.Nanos, duration string) *EndUserDefaults {
	return &EndUserDefaults{c: budgetv1connect.NewBudgetServiceClient(httpClient, baseURL, serve.RPCClientOptions()...),
		limit: limit, duration: duration, known: map[string]struct{}{}}
}

// Ensure makes sure end user id has a budget. Errors are classified like
// Admit's: a request whose end user's budget cannot be checked is not
// admitted.
func (d *EndUserDefaults) Ensure(ctx context.Context, id string) error {
	d.mu.Lock()
	_, ok := d.known[id]
	d.mu.Unlock()
	if ok {
		return nil
	}
	sc := &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_END_USER, Id: id}
	list, err := d.c.ListBudgets(ctx, connect.NewRequest(&budgetv1.ListBudgetsRequest{Scope: sc, PageSize: 1}))
	if err != nil {
		return Classify("end user budget", fmt.Errorf("list budgets of end user %q: %w", id, err))
	}
	if len(list.Msg.GetBudgets()) == 0 {
		spec := &budgetv1.BudgetSpec{Scope: sc, LimitUsd: d.limit.String(), Duration: d.duration}
		if _, err := d.c.SetBudget(ctx, connect.NewRequest(&budgetv1.SetBudgetRequest{Spec: spec})); err != nil {
			return Classify("end user budget", fmt.Errorf("set the default budget of end user %q: %w", id, err))
		}
	}
	d.mu.Lock()
	if len(d.known) >= maxKnownEndUsers {
		d.known = map[string]struct{}{}
	}
	d.known[id] = struct{}{}
	d.mu.Unlock()
	return nil
}
