package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spendledger/spendledger/e2e/harness"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
)

// BenchmarkPricingService measures the pricing service end to end: a
// backlog of UsageRecorded on USAGE (100k; 10k in a smoke run) is published
// while pricing is stopped; pricing is started and drains it into COSTS.
// The rate is taken from the JetStream timestamps of the first and last
// CostComputed, so start-up time and the driver's own publishing are not
// counted.
func BenchmarkPricingService(b *testing.B) {
	events := scaled(100_000, 10_000)
	st := harness.StartStack(b, harness.WithLogLevel("warn"))
	pricing := st.Service("pricing")
	pricing.Stop()
	// The ledger would drain COSTS as pricing fills it, on the same two
	// cores: that is the ledger's cost (its own benchmark), not pricing's.
	// With it running, this machine measured 17.4-17.6k events/s.
	st.Service("ledger").Stop()

	s := natsJS(b, st.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	for i := range events {
		u := benchUsage(i)
		data, err := proto.Marshal(u)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.PublishAsync(js.UsageSubject(u.GetIdentity().GetKeyId()), data, jetstream.WithMsgID(u.GetEventId())); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-s.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatal("publishing the backlog timed out")
	}

	b.ResetTimer()
	pricing.Start()
	costs, err := s.Stream(ctx, js.CostsStream)
	if err != nil {
		b.Fatal(err)
	}
	for {
		info, err := costs.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs >= uint64(events) {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("COSTS has %d of %d events after 10 minutes", info.State.Msgs, events)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.StopTimer()

	first, err := costs.GetMsg(ctx, 1)
	if err != nil {
		b.Fatal(err)
	}
	info, err := costs.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	last, err := costs.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		b.Fatal(err)
	}
	span := last.Time.Sub(first.Time)
	rate := float64(info.State.Msgs-1) / span.Seconds()
	record(b, "pricing_service_events_per_s", rate, fmt.Sprintf("%d events in %.2fs", info.State.Msgs, span.Seconds()))
}

func benchUsage(i int) *eventsv1.UsageRecorded {
	id, _ := uuid.NewV7()
	return &eventsv1.UsageRecorded{
		EventId:  id.String(),
		Identity: &eventsv1.Identity{KeyId: fmt.Sprintf("key-%d", i%64), TeamId: "team-1"},
		Route: &eventsv1.Route{ModelGroup: "sonnet", DeploymentId: "sonnet-1",
			Provider: "anthropic", BackendModel: "anthropic/claude-sonnet-4-5"},
		Tokens:     &eventsv1.TokenCounts{Input: int64(100 + i%1000), Output: 200, CacheRead: 1000},
		OccurredAt: timestamppb.Now(),
	}
}
