package harness

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// streamReadTimeout bounds how long ReadStream waits for the messages it wants.
const streamReadTimeout = 30 * time.Second

// JetStream connects to the NATS server at url and returns a JetStream client
// on that connection, which is closed at tb's cleanup. opts go to jetstream.New
// (a benchmark raises WithPublishAsyncMaxPending, say).
func JetStream(tb testing.TB, url string, opts ...jetstream.JetStreamOpt) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatalf("harness: connect to NATS %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	s, err := jetstream.New(nc, opts...)
	if err != nil {
		tb.Fatalf("harness: jetstream: %v", err)
	}
	return s
}

// ReadStream reads stream from its first message, in order, through an
// ordered consumer (nothing is acknowledged, so it disturbs no service's
// consumer). It fails tb unless at least want messages arrive within 30s; a
// stream that does not exist yet counts as empty. Once want arrived it keeps
// reading until linger passes without another, so a message that should not
// be there — a duplicate, a second dead letter — is returned too and the
// caller's count fails; linger 0 returns as soon as want arrived.
func ReadStream(tb testing.TB, s jetstream.JetStream, stream string, want int, linger time.Duration) []jetstream.Msg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamReadTimeout)
	defer cancel()
	var c jetstream.Consumer
	for {
		var err error
		if c, err = s.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("harness: read %s: %v", stream, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	var out []jetstream.Msg
	for {
		batch, wait := 100, 2*time.Second
		if len(out) >= want {
			wait = linger
		} else if linger == 0 {
			batch = want - len(out) // the fetch completes as soon as the last one arrives
		}
		if left := time.Until(deadlineOf(ctx)); wait > left {
			wait = left
		}
		if wait <= 0 {
			break
		}
		msgs, err := c.Fetch(batch, jetstream.FetchMaxWait(wait))
		if err != nil {
			tb.Fatalf("harness: read %s: %v", stream, err)
		}
		n := 0
		for m := range msgs.Messages() {
			n++
			out = append(out, m)
		}
		if len(out) >= want && (n == 0 || linger == 0) {
			return out
		}
	}
	tb.Fatalf("harness: %d messages on %s in %v; want %d", len(out), stream, streamReadTimeout, want)
	return nil
}

// ReadEvents is ReadStream decoding each message as the protobuf event E;
// an undecodable message fails tb.
func ReadEvents[E any, P interface {
	*E
	proto.Message
}](tb testing.TB, s jetstream.JetStream, stream string, want int, linger time.Duration) []P {
	tb.Helper()
	msgs := ReadStream(tb, s, stream, want, linger)
	out := make([]P, 0, len(msgs))
	for i, m := range msgs {
		ev := P(new(E))
		if err := proto.Unmarshal(m.Data(), ev); err != nil {
			tb.Fatalf("harness: message %d on %s (%s) is not a %T: %v", i, stream, m.Subject(), ev, err)
		}
		out = append(out, ev)
	}
	return out
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
