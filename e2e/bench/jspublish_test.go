package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spendledger/spendledger/e2e/bench/figures"
	"github.com/spendledger/spendledger/e2e/harness"
	js "github.com/spendledger/spendledger/ledger/jetstream"
)

// BenchmarkJetStreamPublish is the yardstick for the services that publish
// to JetStream (pricing, the gateway): how fast this machine's NATS takes
// async publishes with a message id (so the stream's duplicate window is
// checked for each, as the product's publishes are) into the product's own
// USAGE stream configuration (file storage), 4096 unacknowledged at most,
// one connection. The payloads are the UsageRecorded the pricing benchmark
// publishes, marshalled beforehand so only publishing is timed; the figure
// is messages acknowledged per second. It also records the versions of the
// three servers for BENCHMARKS.md.
func BenchmarkJetStreamPublish(b *testing.B) {
	n := scaled(100_000, 10_000)
	in := harness.StartInfra(b)
	recordServerVersions(b, in.NATSURL, in.PostgresURL, in.RedisURL)
	s := natsJS(b, in.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := js.EnsureStreams(ctx, s); err != nil {
		b.Fatal(err)
	}
	type msg struct {
		subject, id string
		data        []byte
	}
	msgs := make([]msg, n)
	for i := range msgs {
		u := benchUsage(i)
		data, err := proto.Marshal(u)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = msg{js.UsageSubject(u.GetIdentity().GetKeyId()), u.GetEventId(), data}
	}

	b.ResetTimer()
	began := time.Now()
	for _, m := range msgs {
		if _, err := s.PublishAsync(m.subject, m.data, jetstream.WithMsgID(m.id)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-s.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatalf("%d publishes still pending after 5 minutes", s.PublishAsyncPending())
	}
	elapsed := time.Since(began)
	b.StopTimer()

	usage, err := s.Stream(ctx, js.UsageStream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := usage.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if info.State.Msgs != uint64(n) {
		b.Fatalf("USAGE holds %d messages, published %d", info.State.Msgs, n)
	}
	rate := float64(n) / elapsed.Seconds()
	record(b, figures.LimitJetStreamPublish, rate, fmt.Sprintf("%d publishes of %d-byte events in %.2fs", n, len(msgs[0].data), elapsed.Seconds()))
}
