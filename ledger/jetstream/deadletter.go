package jetstream

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
)

// DeadLetter moves a message the consumer cannot process to the dead-letter
// stream, with the reason and the original bytes, and then terminates it so it
// is never redelivered. If the dead letter cannot be published, the message is
// left for redelivery and the error returned: a rejected message is never lost.
func DeadLetter(ctx context.Context, js jetstream.JetStream, m jetstream.Msg, consumer, reason string) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("jetstream: dead-letter: metadata: %w", err)
	}
	dl := &eventsv1.DeadLetter{
		Reason:         reason,
		Stream:         meta.Stream,
		Subject:        m.Subject(),
		StreamSequence: meta.Sequence.Stream,
		Consumer:       consumer,
		Deliveries:     meta.NumDelivered,
		Headers:        map[string]string{},
		Payload:        m.Data(),
		FailedAt:       timestamppb.Now(),
	}
	for k, v := range m.Headers() {
		if len(v) > 0 {
			dl.Headers[k] = v[0]
		}
	}
	data, err := proto.Marshal(dl)
	if err != nil {
		return fmt.Errorf("jetstream: dead-letter: encode: %w", err)
	}
	// The id makes a re-dead-lettered redelivery a duplicate, not a second letter.
	id := "dlq:" + meta.Stream + ":" + strconv.FormatUint(meta.Sequence.Stream, 10)
	if _, err := js.Publish(ctx, DeadLetterSubject(meta.Stream, consumer), data, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("jetstream: dead-letter: publish: %w", err)
	}
	if err := m.TermWithReason(reason); err != nil {
		return fmt.Errorf("jetstream: dead-letter: term: %w", err)
	}
	return nil
}
