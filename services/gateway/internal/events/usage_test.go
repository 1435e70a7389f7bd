package events

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pricing"
)

func TestNewUsageRecordedCarriesTheCall(t *testing.T) {
	occurred := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	completed := occurred.Add(1500 * time.Millisecond)
	c := Call{
		RequestID: "req", Identity: &eventsv1.Identity{KeyId: "k", Tags: []string{"t"}}, Route: &eventsv1.Route{ModelGroup: "g", DeploymentId: "d"},
		Usage:          pricing.Usage{Input: 1, Output: 2, CacheRead: 3, CacheCreation: 4, CacheCreation1h: 5, Reasoning: 6},
		PriceOverrides: map[string]string{"input_cost_per_token": "0.1"}, UnpricedAllowed: true,
		ReservationID: "res", ReservedNanos: 7, CounterKeys: []string{"c1"},
		OccurredAt: occurred, CompletedAt: completed, Streamed: true, GatewayID: "gw",
	}
	ev, err := NewUsageRecorded(c)
	if err != nil {
		t.Fatal(err)
	}
	want := &eventsv1.UsageRecorded{
		EventId: ev.GetEventId(), RequestId: "req", Identity: c.Identity, Route: c.Route,
		Tokens:         &eventsv1.TokenCounts{Input: 1, Output: 2, CacheRead: 3, CacheCreation: 4, CacheCreation_1H: 5, Reasoning: 6},
		PriceOverrides: c.PriceOverrides, UnpricedAllowed: true, ReservationId: "res", ReservedNanos: 7,
		OccurredAt: timestamppb.New(occurred), CompletedAt: timestamppb.New(completed), Streamed: true, GatewayId: "gw", CounterKeys: []string{"c1"},
	}
	if !proto.Equal(ev, want) || len(ev.GetEventId()) != 36 {
		t.Fatalf("got %v\nwant %v", ev, want)
	}
}
