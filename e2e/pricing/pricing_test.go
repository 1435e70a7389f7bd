// Package pricing_test runs the pricing service against real JetStream: usage
// in on USAGE, costs out on COSTS, bad input to the dead-letter stream.
package pricing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spendledger/spendledger/e2e/harness"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
)

func TestMain(m *testing.M) { harness.Main(m) }

func usageEvent(keyID string) *eventsv1.UsageRecorded {
	id, _ := uuid.NewV7()
	return &eventsv1.UsageRecorded{
		EventId:  id.String(),
		Identity: &eventsv1.Identity{KeyId: keyID},
		Route: &eventsv1.Route{ModelGroup: "sonnet", DeploymentId: "sonnet-1",
			Provider: "anthropic", BackendModel: "anthropic/claude-sonnet-4-5"},
		// claude-sonnet-4-5: 1000 × 3e-6 + 200 × 1.5e-5 + 10000 × 3e-7 + 2000 × 3.75e-6 = 0.0165 USD.
		Tokens:     &eventsv1.TokenCounts{Input: 1000, Output: 200, CacheRead: 10000, CacheCreation: 2000},
		OccurredAt: timestamppb.Now(),
	}
}

func publishUsage(t *testing.T, s jetstream.JetStream, u *eventsv1.UsageRecorded, msgID string) {
	t.Helper()
	harness.Publish(t, s, js.UsageSubject(u.GetIdentity().GetKeyId()), msgID, u)
}

// costsFor reads every CostComputed on COSTS, waiting until want of them
// arrived and then a little longer for any extra (a duplicate would show up
// then).
func costsFor(t *testing.T, s jetstream.JetStream, want int) []*eventsv1.CostComputed {
	t.Helper()
	return harness.ReadEvents[eventsv1.CostComputed](t, s, js.CostsStream, want, 1500*time.Millisecond)
}

func TestUsageInCostOutAndRedeliveryIsNotPricedTwice(t *testing.T) {
	t.Parallel()
	st := harness.StartStack(t)
	s := harness.JetStream(t, st.NATSURL)

	u := usageEvent("key-e2e")
	publishUsage(t, s, u, u.GetEventId())
	// The same event again under another message id: JetStream cannot dedupe
	// the input, exactly as when pricing crashed before acking and the event is
	// redelivered. Pricing must not produce a second CostComputed downstream.
	publishUsage(t, s, u, u.GetEventId()+"-redelivered")

	costs := costsFor(t, s, 1)
	if len(costs) != 1 {
		t.Fatalf("COSTS holds %d events for one usage event; want exactly 1", len(costs))
	}
	c := costs[0]
	if c.GetEventId() != u.GetEventId() {
		t.Fatalf("cost event id %q; want the usage event's %q", c.GetEventId(), u.GetEventId())
	}
	if c.GetTotalNanos() != 16_500_000 || c.GetStatus() != eventsv1.PricingStatus_PRICING_STATUS_PRICED {
		t.Fatalf("cost %d %v; want 16500000 PRICED", c.GetTotalNanos(), c.GetStatus())
	}
	if c.GetCatalogVersion() == "" || c.GetResolvedEntry() != "claude-sonnet-4-5" {
		t.Fatalf("catalog version %q entry %q", c.GetCatalogVersion(), c.GetResolvedEntry())
	}
}

func TestMalformedUsageGoesToDeadLetterAndTheConsumerMovesOn(t *testing.T) {
	t.Parallel()
	st := harness.StartStack(t)
	s := harness.JetStream(t, st.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Not a protobuf message at all, then a valid protobuf with a bad event id.
	if _, err := s.Publish(ctx, js.UsageSubject("key-bad"), []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	bad := usageEvent("key-bad")
	bad.EventId = "not-a-uuid"
	publishUsage(t, s, bad, "bad-1")
	good := usageEvent("key-good")
	publishUsage(t, s, good, good.GetEventId())

	costs := costsFor(t, s, 1)
	if len(costs) != 1 || costs[0].GetEventId() != good.GetEventId() {
		t.Fatalf("costs %v; want only the good event priced", costs)
	}

	letters := harness.ReadEvents[eventsv1.DeadLetter](t, s, js.DeadLetterStream, 2, 1500*time.Millisecond)
	if len(letters) != 2 {
		t.Fatalf("%d dead letters; want 2", len(letters))
	}
	if letters[0].GetStream() != js.UsageStream || len(letters[0].GetPayload()) != 3 || letters[0].GetReason() == "" {
		t.Fatalf("first dead letter %v; want the 3 original bytes from USAGE with a reason", letters[0])
	}
	if got := letters[1].GetReason(); got == "" || !strings.Contains(got, "event_id") {
		t.Fatalf("second dead letter reason %q; want it to name event_id", got)
	}
}
