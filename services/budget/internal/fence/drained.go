package fence

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	js "github.com/spendledger/spendledger/ledger/jetstream"
)

// The durables of pricing (on USAGE) and the ledger (on COSTS): the consumers
// every cost passes on its way to the ledger.
var pipeline = []struct{ stream, consumer string }{
	{js.UsageStream, "pricing"},
	{js.CostsStream, "ledger"},
}

// PipelineDrained is the Drained of a deployment: every USAGE and COSTS
// message acknowledged by pricing and the ledger, and no ledger entry
// waiting to be projected into Redis.
func PipelineDrained(stream jetstream.JetStream, db *pgxpool.Pool) Drained {
	return func(ctx context.Context) (bool, error) {
		for _, p := range pipeline {
			c, err := stream.Consumer(ctx, p.stream, p.consumer)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				// Nobody has consumed yet: drained only if nothing waits.
				s, err := stream.Stream(ctx, p.stream)
				if err != nil {
					return false, fmt.Errorf("fence: stream %s: %w", p.stream, err)
				}
				info, err := s.Info(ctx)
				if err != nil {
					return false, fmt.Errorf("fence: stream %s: %w", p.stream, err)
				}
				if info.State.Msgs > 0 {
					return false, nil
				}
				continue
			}
			if err != nil {
				return false, fmt.Errorf("fence: consumer %s/%s: %w", p.stream, p.consumer, err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				return false, fmt.Errorf("fence: consumer %s/%s: %w", p.stream, p.consumer, err)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return false, nil
			}
		}
		var pending int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM ledger_projection_pending`).Scan(&pending); err != nil {
			return false, fmt.Errorf("fence: projection backlog: %w", err)
		}
		return pending == 0, nil
	}
}
