package thresholds

import (
	"context"
	"time"
)

// Outbox is where crossings are recorded once and what they still owe (an
// event, a webhook call) is taken from. PGOutbox is the implementation;
// the watcher's tests use a fake.
type Outbox interface {
	// Record stores every crossing no instance has recorded yet and returns
	// those this call stored; a crossing already recorded (by anyone, ever)
	// is left alone. webhook says whether each new one owes a webhook call.
	Record(ctx context.Context, cs []Crossing, webhook bool) ([]Crossing, error)
	// PublishNext takes the oldest unpublished crossing that no other
	// instance holds, calls publish, and marks the crossing published if
	// publish succeeded. It returns false when there is none; publish's
	// error is returned as is, and the crossing stays unpublished.
	PublishNext(ctx context.Context, publish func(context.Context, Crossing) error) (bool, error)
	// DeliverNext takes the oldest crossing whose webhook call is due and
	// that no other instance holds, calls deliver with it and the number of
	// attempts made so far, and stores the outcome. It returns false when
	// none is due.
	DeliverNext(ctx context.Context, deliver func(context.Context, Crossing, int) WebhookOutcome) (bool, error)
	// Pending counts the crossings not yet published and those whose
	// webhook call is still owed.
	Pending(ctx context.Context) (unpublished, webhookOwed int64, err error)
}

// WebhookOutcome is what one webhook attempt left to store.
type WebhookOutcome struct {
	Delivered bool
	// RetryIn is how long after a failure to try again, unless Abandon.
	RetryIn time.Duration
	Abandon bool
	// Err describes the failure, kept on the row for operators.
	Err string
}
