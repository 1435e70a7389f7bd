package thresholds

import (
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

// Crossing is one soft threshold of one budget reached in one window: the
// row of the outbox and the content of its event and webhook call.
type Crossing struct {
	// EventID is derived from (BudgetID, WindowKey, Threshold) alone, so
	// every instance that ever detects this crossing names it alike.
	EventID   string
	BudgetID  string
	Scope     scope.Scope
	Threshold string // canonical decimal fraction, e.g. "0.8"
	// WindowKey is the window's counter key (scope.CounterKey): it names
	// the window exactly, whatever the budget's duration was then.
	WindowKey   string
	Duration    window.Duration
	WindowIndex int64
	WindowStart time.Time
	WindowEnd   time.Time
	// Limit and Spent are the figures seen when it was first detected.
	Limit      money.Nanos
	Spent      money.Nanos
	DetectedAt time.Time
}

// eventNamespace scopes the name-based (SHA-1) UUIDs of crossing events.
// It must never change: a retry after a crash has to produce the id the
// first attempt published.
var eventNamespace = uuid.MustParse("7935aa90-3c7e-4789-9d76-cb8f48c5f72d")

// EventID is the id of the event for a budget's threshold in a window.
func EventID(budgetID, windowKey, threshold string) string {
	// NUL cannot occur in any of the three, so the join is unambiguous.
	return uuid.NewSHA1(eventNamespace, []byte(budgetID+"\x00"+windowKey+"\x00"+threshold)).String()
}

// MsgID is the Nats-Msg-Id of a crossing's event: JetStream drops a second
// publish of it within the stream's duplicate window.
func MsgID(eventID string) string { return "threshold:" + eventID }

// Event is the BudgetThresholdCrossed published for c.
func (c Crossing) Event() *eventsv1.BudgetThresholdCrossed {
	return &eventsv1.BudgetThresholdCrossed{
		EventId:     c.EventID,
		BudgetId:    c.BudgetID,
		Scope:       protoconv.ScopeProto(c.Scope),
		Threshold:   c.Threshold,
		LimitNanos:  int64(c.Limit),
		SpentNanos:  int64(c.Spent),
		WindowIndex: c.WindowIndex,
		WindowStart: timestamppb.New(c.WindowStart),
		WindowEnd:   timestamppb.New(c.WindowEnd),
		OccurredAt:  timestamppb.New(c.DetectedAt),
	}
}
