// Package events builds the gateway's UsageRecorded events and publishes them
// to JetStream, falling back to the durable local spool when NATS is away.
package events

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pricing"
)

// Call is everything known about one completed upstream call.
type Call struct {
	RequestID string
	Identity  *eventsv1.Identity
	Route     *eventsv1.Route
	Usage     pricing.Usage
	// PriceOverrides are the deployment's configured price fields (LiteLLM
	// field name -> exact decimal text). Shared, never mutated.
	PriceOverrides  map[string]string
	UnpricedAllowed bool
	ReservationID   string
	ReservedNanos   int64
	// CounterKeys are the budget counters the cost lands on (ADR 2).
	CounterKeys []string
	// OccurredAt is the admission time: it decides the budget window.
	OccurredAt  time.Time
	CompletedAt time.Time
	Streamed    bool
	GatewayID   string
}

// NewUsageRecorded mints the event for c, with a fresh UUIDv7 event id (time
// ordered, so the ledger's unique index stays append-friendly).
func NewUsageRecorded(c Call) (*eventsv1.UsageRecorded, error) {
	if err := c.Usage.Validate(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("events: event id: %w", err)
	}
	// One allocation for the event and the messages it points to: one of
	// these is built for every request.
	r := &struct {
		ev                  eventsv1.UsageRecorded
		tokens              eventsv1.TokenCounts
		occurred, completed timestamppb.Timestamp
	}{}
	r.tokens.Input = c.Usage.Input
	r.tokens.Output = c.Usage.Output
	r.tokens.CacheRead = c.Usage.CacheRead
	r.tokens.CacheCreation = c.Usage.CacheCreation
	r.tokens.CacheCreation_1H = c.Usage.CacheCreation1h
	r.tokens.Reasoning = c.Usage.Reasoning
	setTimestamp(&r.occurred, c.OccurredAt)
	setTimestamp(&r.completed, c.CompletedAt)
	ev := &r.ev
	ev.EventId = id.String()
	ev.RequestId = c.RequestID
	ev.Identity = c.Identity
	ev.Route = c.Route
	ev.Tokens = &r.tokens
	ev.PriceOverrides = c.PriceOverrides
	ev.UnpricedAllowed = c.UnpricedAllowed
	ev.ReservationId = c.ReservationID
	ev.ReservedNanos = c.ReservedNanos
	ev.OccurredAt = &r.occurred
	ev.CompletedAt = &r.completed
	ev.Streamed = c.Streamed
	ev.GatewayId = c.GatewayID
	ev.CounterKeys = c.CounterKeys
	return ev, nil
}

// setTimestamp sets ts to t, as timestamppb.New does.
func setTimestamp(ts *timestamppb.Timestamp, t time.Time) {
	ts.Seconds = t.Unix()
	ts.Nanos = int32(t.Nanosecond())
}
