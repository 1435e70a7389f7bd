package jetstream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchHandler processes one batch. It must finish every message it is given:
// ack it once its effect is durable, nak it to have it redelivered, or dead-letter
// it. A message it leaves alone is redelivered after the consumer's AckWait.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg)

// ConsumeBatches pulls from c and hands messages to h in batches of at most max,
// one batch at a time, until ctx ends. Batching is opportunistic: a lone message
// is handed over at once, and whatever arrived meanwhile rides along in the
// next batch, so latency stays low at low rates and batches fill at high ones.
//
// When ctx ends, the batch in h is allowed to finish (h gets a context that is
// not cancelled), and messages buffered but not yet handed over are left
// unacknowledged for JetStream to redeliver: nothing is acked unfinished.
func ConsumeBatches(ctx context.Context, c jetstream.Consumer, max int, h BatchHandler) error {
	if max < 1 {
		return fmt.Errorf("jetstream: batch size %d: must be at least 1", max)
	}
	buf := make(chan jetstream.Msg, 2*max)
	cc, err := c.Consume(func(m jetstream.Msg) {
		select {
		case buf <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(2*max))
	if err != nil {
		return fmt.Errorf("jetstream: consume: %w", err)
	}
	defer cc.Stop()

	work := context.WithoutCancel(ctx)
	batch := make([]jetstream.Msg, 0, max)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-buf:
			batch = append(batch[:0], m)
		fill:
			for len(batch) < max {
				select {
				case m := <-buf:
					batch = append(batch, m)
				default:
					break fill
				}
			}
			h(work, batch)
		}
	}
}
