package api

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// Admitter is admission: Admit and Release with exactly the generated
// handler's signatures, so the Redis implementation plugs in as is. Until it
// is wired (Config.Admitter nil) both answer Unimplemented, which the gateway
// treats as "budget service unavailable" and fails closed.
type Admitter interface {
	Admit(context.Context, *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error)
	Release(context.Context, *connect.Request[budgetv1.ReleaseRequest]) (*connect.Response[budgetv1.ReleaseResponse], error)
}

// Spend is one budget's settled spend and live reservations in a window.
type Spend struct {
	Spent    money.Nanos
	Reserved money.Nanos
}

// SpendReader reads, for each budget, its spend and reservations in the
// window containing at; the result is parallel to budgets. Admission
// implements it on the Redis counters (the counter of budget b is
// scope.CounterKey(b.Scope, b.Window(), b.Window().Index(at))).
//
// Until it is wired (Config.SpendReader nil) GetKey and GetPrincipal report
// spent = reserved = 0 and remaining = limit: limits are real, spend is not
// known yet. When it is wired, an error answers Unavailable rather than a
// zero that would look like an unspent budget.
type SpendReader interface {
	Spend(ctx context.Context, budgets []store.Budget, at time.Time) ([]Spend, error)
}

// KeyReader looks keys up by hash for Authenticate: the cache in production,
// so a blocked key is refused on every instance at once.
type KeyReader interface {
	KeyByHash(ctx context.Context, hash string) (store.AuthKey, error)
}

// Config is what a Handler needs.
type Config struct {
	Store store.Store
	// Keys serves Authenticate; nil uses Store.
	Keys        KeyReader
	SpendReader SpendReader
	Admitter    Admitter
	Log         *slog.Logger
	// Now is the clock for expiry and windows; nil is time.Now.
	Now func() time.Time
}

// Handler implements budgetv1connect.BudgetServiceHandler.
type Handler struct {
	store    store.Store
	keys     KeyReader
	spend    SpendReader
	admitter Admitter
	log      *slog.Logger
	now      func() time.Time
	// batchItems runs AdmitBatch's items (admitbatch.go).
	batchItems *workers
}

var _ budgetv1connect.BudgetServiceHandler = (*Handler)(nil)

// New returns a Handler.
func New(cfg Config) *Handler {
	h := &Handler{store: cfg.Store, keys: cfg.Keys, spend: cfg.SpendReader, admitter: cfg.Admitter, log: cfg.Log, now: cfg.Now,
		batchItems: newWorkers(batchWorkerIdle)}
	if h.keys == nil {
		h.keys = cfg.Store
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

var errNoAdmission = errors.New("admission is not available in this build of the budget service")

// Admit implements BudgetServiceHandler by delegating to the Admitter.
func (h *Handler) Admit(ctx context.Context, req *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	if h.admitter == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoAdmission)
	}
	return h.admitter.Admit(ctx, req)
}

// Release implements BudgetServiceHandler by delegating to the Admitter.
func (h *Handler) Release(ctx context.Context, req *connect.Request[budgetv1.ReleaseRequest]) (*connect.Response[budgetv1.ReleaseResponse], error) {
	if h.admitter == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errNoAdmission)
	}
	return h.admitter.Release(ctx, req)
}

// newID mints a UUIDv7: time-ordered, so ids sort by creation and list pages
// (ordered by id) come out oldest first.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", connect.NewError(connect.CodeInternal, errors.New("minting an id failed"))
	}
	return id.String(), nil
}
