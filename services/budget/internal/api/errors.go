package api

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// invalid is an InvalidArgument naming the field, in request-path form
// ("key.team_id", "spec.limit_usd", "budgets[1].duration").
func invalid(field, format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(field+": "+format, args...))
}

// fromStore maps a store error to its Connect code. Store messages name the
// thing ("team \"t1\" does not exist") and are safe to return; anything
// unclassified is logged and answered as Internal without its details.
func (h *Handler) fromStore(ctx context.Context, op string, err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce // already answered, e.g. by validation inside an update
	}
	var code connect.Code
	switch {
	case errors.Is(err, store.ErrNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, store.ErrAlreadyExists):
		code = connect.CodeAlreadyExists
	case errors.Is(err, store.ErrFailedPrecondition):
		code = connect.CodeFailedPrecondition
	case errors.Is(err, store.ErrInvalid):
		code = connect.CodeInvalidArgument
	case errors.Is(err, store.ErrUnavailable):
		h.log.WarnContext(ctx, "store unavailable", "op", op, "err", err)
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: the budget store is unavailable; retry", op))
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	default:
		h.log.ErrorContext(ctx, "store error", "op", op, "err", err)
		return connect.NewError(connect.CodeInternal, fmt.Errorf("%s: internal error (logged)", op))
	}
	return connect.NewError(code, err)
}
