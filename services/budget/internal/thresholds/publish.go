package thresholds

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	js "github.com/spendledger/spendledger/ledger/jetstream"
)

// Publisher sends a crossing's event; JetStreamPublisher is the real one.
type Publisher interface {
	Publish(ctx context.Context, c Crossing) error
}

// JetStreamPublisher publishes BudgetThresholdCrossed on the BUDGET stream,
// on the subject of the budget's scope, with Nats-Msg-Id MsgID(event id).
type JetStreamPublisher struct{ JS jetstream.JetStream }

// Publish implements Publisher. It returns once JetStream stored the event
// (or recognised it as a duplicate of one it stored: a publish retried
// after a lost acknowledgement or a crash before the row was marked).
func (p JetStreamPublisher) Publish(ctx context.Context, c Crossing) error {
	// Fail at once while disconnected rather than after the timeout: the
	// pass goes on to the webhook calls, which do not need NATS.
	if nc := p.JS.Conn(); nc != nil && !nc.IsConnected() {
		return fmt.Errorf("publish threshold event %s: NATS is not connected (%v)", c.EventID, nc.Status())
	}
	data, err := proto.Marshal(c.Event())
	if err != nil {
		return fmt.Errorf("encode threshold event %s: %w", c.EventID, err)
	}
	// Partitioned by the scope's id: a key's threshold events share a
	// subject with its usage, as the stream layout intends.
	if _, err := p.JS.Publish(ctx, js.BudgetThresholdSubject(c.Scope.ID), data, jetstream.WithMsgID(MsgID(c.EventID))); err != nil {
		return fmt.Errorf("publish threshold event %s: %w", c.EventID, err)
	}
	return nil
}
