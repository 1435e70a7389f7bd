// Package jetstream is the one place that names the project's JetStream streams,
// subjects and partitions, and creates them.
//
// Every service calls EnsureStreams at start; it creates or updates the streams
// to the configuration below, so starting any service in any order (or ten at
// once) converges on the same topology.
//
// Subjects carry a partition, the hash of the key id, so one key's events stay
// in order on one subject while consumers scale out across partitions.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	UsageStream      = "USAGE"
	CostsStream      = "COSTS"
	DeadLetterStream = "DLQ"
	BudgetStream     = "BUDGET"
)

// Subject prefixes; the last token is the partition.
const (
	usageSubjectPrefix  = "usage.recorded."
	costSubjectPrefix   = "cost.computed."
	dlqSubjectPrefix    = "dlq."
	budgetSubjectPrefix = "budget.threshold."
)

// Partitions is the number of subject partitions. Changing it moves keys to
// other subjects, which only reorders events across keys, never within one
// message's processing: consumers are idempotent by event id.
const Partitions = 16

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. Longer
// redeliveries are caught by the ledger's unique event id instead.
const DuplicateWindow = 10 * time.Minute

// Partition maps a key id to its partition.
func Partition(keyID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(keyID))
	return int(h.Sum32() % Partitions)
}

// UsageSubject is the subject a key's UsageRecorded events are published on.
func UsageSubject(keyID string) string {
	return usageSubjectPrefix + strconv.Itoa(Partition(keyID))
}

// CostSubject is the subject a key's CostComputed events are published on.
func CostSubject(keyID string) string {
	return costSubjectPrefix + strconv.Itoa(Partition(keyID))
}

// BudgetThresholdSubject is the subject for a scope's threshold events.
func BudgetThresholdSubject(scopeKey string) string {
	return budgetSubjectPrefix + strconv.Itoa(Partition(scopeKey))
}

// DeadLetterSubject is where a consumer sends what it cannot process.
func DeadLetterSubject(stream, consumer string) string {
	return dlqSubjectPrefix + stream + "." + consumer
}

// CostMsgID is the Nats-Msg-Id of the CostComputed for a usage event. It is
// derived from the event id so a re-priced redelivery deduplicates.
func CostMsgID(eventID string) string { return "cost:" + eventID }

// Streams returns the configuration of every stream. Usage and costs are kept
// without age limit: replay and re-pricing read them from the start.
func Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        UsageStream,
			Description: "UsageRecorded events from gateways",
			Subjects:    []string{usageSubjectPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  DuplicateWindow,
		},
		{
			Name:        CostsStream,
			Description: "CostComputed events from pricing",
			Subjects:    []string{costSubjectPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  DuplicateWindow,
		},
		{
			Name:        DeadLetterStream,
			Description: "messages a consumer rejected, with the reason",
			Subjects:    []string{dlqSubjectPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
		},
		{
			Name:        BudgetStream,
			Description: "budget events (soft thresholds crossed)",
			Subjects:    []string{budgetSubjectPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  DuplicateWindow,
		},
	}
}

// EnsureStreams creates every stream, or updates it to this configuration.
func EnsureStreams(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range Streams() {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("jetstream: ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// EnsureConsumer creates or updates a durable pull consumer. Instances of a
// service share one durable, so JetStream spreads the work across them.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if cfg.Durable == "" {
		return nil, errors.New("jetstream: consumer needs a durable name")
	}
	// An ack means "done and durable" everywhere in this project.
	cfg.AckPolicy = jetstream.AckExplicitPolicy
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("jetstream: ensure consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}

// StreamsExist reports whether every stream is present; readiness uses it.
func StreamsExist(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range Streams() {
		if _, err := js.Stream(ctx, cfg.Name); err != nil {
			return fmt.Errorf("jetstream: stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
