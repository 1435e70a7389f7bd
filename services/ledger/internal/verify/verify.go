// Package verify checks the invariant that makes the Redis counters
// trustworthy: at quiescence every live counter's spend equals the ledger's
// sum for its scope and window, and its reserved amount equals the sum of the
// reservations it holds (ADR 2).
package verify

import (
	"context"
	"fmt"

	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// Difference is one counter that disagrees with the ledger.
type Difference struct {
	Key      string
	Spent    int64 // the counter's settled spend
	Ledger   int64 // the ledger's sum for the counter's scope and window
	Reserved int64 // the counter's reserved total
	Held     int64 // the sum of the reservations the counter holds
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: counter spent %d, ledger %d (off by %d); reserved %d, reservations held %d",
		d.Key, d.Spent, d.Ledger, d.Spent-d.Ledger, d.Reserved, d.Held)
}

// Report is the outcome of one verification.
type Report struct {
	Checked     int
	Differences []Difference
}

// Run checks every live counter. It reads each counter and then the ledger,
// so it is exact only when no event is in flight; progress, when set, is
// called after each counter.
func Run(ctx context.Context, db pgstore.DB, rs *redisstore.Store, progress func(checked int)) (Report, error) {
	var r Report
	err := rs.ScanCounters(ctx, func(key string) error {
		d, ok, err := check(ctx, db, rs, key)
		if err != nil {
			return err
		}
		r.Checked++
		if !ok {
			r.Differences = append(r.Differences, d)
		}
		if progress != nil {
			progress(r.Checked)
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	return r, nil
}

func check(ctx context.Context, db pgstore.DB, rs *redisstore.Store, key string) (Difference, bool, error) {
	s, spec, index, err := scope.ParseCounterKey(key)
	if err != nil {
		return Difference{}, false, fmt.Errorf("counter %q: %w", key, err)
	}
	states, err := rs.Read(ctx, []string{key})
	if err != nil {
		return Difference{}, false, err
	}
	st := states[0]
	if !st.Exists {
		return Difference{}, true, nil // expired between the scan and the read
	}
	start, end := spec.Bounds(index)
	sum, err := pgstore.Sum(ctx, db, s, start, end)
	if err != nil {
		return Difference{}, false, err
	}
	d := Difference{Key: key, Spent: st.Spent, Ledger: sum.Nanos, Reserved: st.Reserved, Held: st.Held}
	return d, st.Spent == sum.Nanos && st.Reserved == st.Held, nil
}
