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
	return &eventsv1.UsageRecorded{
		EventId:   id.String(),
		RequestId: c.RequestID,
		Identity:  c.Identity,
		Route:     c.Route,
		Tokens: &eventsv1.TokenCounts{
			Input:            c.Usage.Input,
			Output:           c.Usage.Output,
			CacheRead:        c.Usage.CacheRead,
			CacheCreation:    c.Usage.CacheCreation,
			CacheCreation_1H: c.Usage.CacheCreation1h,
			Reasoning:        c.Usage.Reasoning,
		},
		PriceOverrides:  c.PriceOverrides,
		UnpricedAllowed: c.UnpricedAllowed,
		ReservationId:   c.ReservationID,
		ReservedNanos:   c.ReservedNanos,
		OccurredAt:      timestamppb.New(c.OccurredAt),
		CompletedAt:     timestamppb.New(c.CompletedAt),
		Streamed:        c.Streamed,
		GatewayId:       c.GatewayID,
		CounterKeys:     c.CounterKeys,
	}, nil
}
