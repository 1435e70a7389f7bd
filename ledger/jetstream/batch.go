package jetstream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchHandler processes one batch. It must finish every message it is given:
// ack it once its effect is durable, nak it to have it redelivered, or dead-letter
// it. A message it leaves alone is redelivered after the consumer's AckWait.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg)

// BatchOption configures ConsumeBatches.
type BatchOption func(*batchOptions)

type batchOptions struct{ linger time.Duration }

// WithLinger lets a batch that is not full wait up to d for more messages
// before it is handed over. The default, 0, hands over what has arrived: a
// lone message is never held back, and batches fill by themselves under load.
func WithLinger(d time.Duration) BatchOption { return func(o *batchOptions) { o.linger = d } }

// ConsumeBatches pulls from c and hands messages to h in batches of at most max,
// one batch at a time, until ctx ends. Batching is opportunistic: a lone message
// is handed over at once (or after the linger, see WithLinger), and whatever
// arrived meanwhile rides along in the next batch, so latency stays low at low
// rates and batches fill at high ones.
//
// When ctx ends, the batch in h is allowed to finish (h gets a context that is
// not cancelled), and messages buffered but not yet handed over are left
// unacknowledged for JetStream to redeliver: nothing is acked unfinished.
func ConsumeBatches(ctx context.Context, c jetstream.Consumer, max int, h BatchHandler, opts ...BatchOption) error {
	var o batchOptions
	for _, opt := range opts {
		opt(&o)
	}
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
			batch = fill(batch, buf, max, o.linger)
			h(work, batch)
		}
	}
}

// fill adds to batch what is buffered, then, for up to linger, what arrives.
func fill(batch []jetstream.Msg, buf <-chan jetstream.Msg, max int, linger time.Duration) []jetstream.Msg {
	var deadline <-chan time.Time
	if linger > 0 {
		t := time.NewTimer(linger)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < max {
		if deadline == nil {
			select {
			case m := <-buf:
				batch = append(batch, m)
			default:
				return batch
			}
			continue
		}
		select {
		case m := <-buf:
			batch = append(batch, m)
		case <-deadline:
			return batch
		}
	}
	return batch
}
