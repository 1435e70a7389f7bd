package harness

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
)

// Publish publishes the protobuf m on subject with msgID as its Nats-Msg-Id
// and returns once JetStream acknowledged it.
func Publish(tb testing.TB, s jetstream.JetStream, subject, msgID string, m proto.Message) {
	tb.Helper()
	data, err := proto.Marshal(m)
	if err != nil {
		tb.Fatalf("harness: marshal %T: %v", m, err)
	}
	PublishRaw(tb, s, subject, msgID, data)
}

// PublishRaw is Publish of bytes as they are (a payload no decoder accepts, say).
func PublishRaw(tb testing.TB, s jetstream.JetStream, subject, msgID string, data []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Publish(ctx, subject, data, jetstream.WithMsgID(msgID)); err != nil {
		tb.Fatalf("harness: publish on %s: %v", subject, err)
	}
}

// PricedCost is the CostComputed pricing would publish for u at one nano-USD
// per input token, so that a test picks an event's cost by its input tokens:
// one "input" component from the catalog, status PRICED, the usage event's
// id as its own.
func PricedCost(u *eventsv1.UsageRecorded) *eventsv1.CostComputed {
	nanos := u.GetTokens().GetInput()
	return &eventsv1.CostComputed{
		EventId: u.GetEventId(),
		Usage:   u,
		Components: []*eventsv1.CostComponent{{Name: "input", Tokens: nanos, UnitPrice: "0.000000001",
			Source: eventsv1.PriceSource_PRICE_SOURCE_CATALOG, ExactCost: fmt.Sprintf("%d.%09d", nanos/1e9, nanos%1e9), CostNanos: nanos}},
		TotalNanos:     nanos,
		Status:         eventsv1.PricingStatus_PRICING_STATUS_PRICED,
		CatalogVersion: "e2e",
	}
}
