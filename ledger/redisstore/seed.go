package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/ledger/scope"
)

// Seed creates counter key from the ledger: spent is the ledger's sum for
// its scope and window and snapshot the pg_current_snapshot() text of the
// same REPEATABLE READ transaction ("xmin:xmax:xip1,xip2,..."). It writes
// only if the counter is absent — the first of many concurrent seeders
// wins, the rest change nothing (created false) — so a cold counter is never
// counted twice. Apply then skips exactly the entries whose transaction is
// visible in snapshot: the ones in spent.
//
// The counter and its companions expire at expireAt (the window's end plus
// grace). An expireAt not after Redis's clock returns ErrExpired and writes
// nothing.
func (s *Store) Seed(ctx context.Context, key string, spent int64, snapshot string, expireAt time.Time) (created bool, err error) {
	if err := checkKeys([]string{key}); err != nil {
		return false, fmt.Errorf("seed: %w", err)
	}
	if err := CheckSnapshot(snapshot); err != nil {
		return false, fmt.Errorf("seed %q: %w", key, err)
	}
	if expireAt.IsZero() {
		return false, fmt.Errorf("%w: seed %q: no expiry", ErrInvalid, key)
	}
	x, m := companions(key)
	n, err := seedScript.Run(ctx, s.rdb, []string{key, x, m}, itoa(spent), snapshot, expireAt.UnixMilli()).Int64()
	if err != nil {
		return false, fmt.Errorf("seed %q: %w", key, err)
	}
	switch n {
	case 1:
		return true, nil
	case 0:
		return false, nil
	case -1:
		return false, fmt.Errorf("seed %q at %v: %w", key, expireAt, ErrExpired)
	}
	return false, fmt.Errorf("seed %q: unexpected reply %d", key, n)
}

// CheckSnapshot validates Postgres snapshot text as pg_current_snapshot()
// writes it: "xmin:xmax:xip,..." in canonical decimal (no sign, no leading
// zeros), xmin ≤ xmax, every xip in [xmin, xmax) and ascending. The scripts
// compare xids as decimal text, so the full xid8 (uint64) range is exact —
// no assumption that xids stay below 2^53.
func CheckSnapshot(snap string) error {
	parts := strings.Split(snap, ":")
	if len(parts) != 3 {
		return fmt.Errorf("%w: snapshot %q is not xmin:xmax:xip,...", ErrInvalid, snap)
	}
	xmin, err1 := parseXID(parts[0])
	xmax, err2 := parseXID(parts[1])
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("%w: snapshot %q: %v", ErrInvalid, snap, err)
	}
	if xmin > xmax {
		return fmt.Errorf("%w: snapshot %q: xmin above xmax", ErrInvalid, snap)
	}
	if parts[2] == "" {
		return nil
	}
	prev := uint64(0)
	for _, f := range strings.Split(parts[2], ",") {
		x, err := parseXID(f)
		if err != nil {
			return fmt.Errorf("%w: snapshot %q: %v", ErrInvalid, snap, err)
		}
		if x < xmin || x >= xmax || x <= prev {
			return fmt.Errorf("%w: snapshot %q: xip %d not ascending within [xmin, xmax)", ErrInvalid, snap, x)
		}
		prev = x
	}
	return nil
}

func parseXID(s string) (uint64, error) {
	x, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(x, 10) != s {
		return 0, fmt.Errorf("xid %q is not a canonical decimal", s)
	}
	return x, nil
}

// Read returns the state of each counter (Exists false for a missing one).
// It writes nothing; expired reservations are excluded from Live but stay
// in Reserved and Held until a Reserve evicts them.
func (s *Store) Read(ctx context.Context, keys []string) ([]State, error) {
	if err := checkKeys(keys); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	out := make([]State, len(keys))
	for _, g := range s.groups(keys) {
		v, err := readScript.Run(ctx, s.rdb, scriptKeys(keys, g, true, false)).Result()
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		rows, err := replySlice(v, "read")
		if err != nil || len(rows) != len(g) {
			return nil, fmt.Errorf("read: unexpected reply %v", v)
		}
		for j, i := range g {
			row, err := replySlice(rows[j], "read")
			if err != nil || len(row) != 5 {
				return nil, fmt.Errorf("read %q: unexpected reply %v", keys[i], rows[j])
			}
			exists, err0 := replyInt(row[0], "exists")
			spent, err1 := replyDecimal(row[1], "spent")
			reserved, err2 := replyDecimal(row[2], "reserved")
			held, err3 := replyDecimal(row[3], "held")
			live, err4 := replyDecimal(row[4], "live")
			if err := errors.Join(err0, err1, err2, err3, err4); err != nil {
				return nil, fmt.Errorf("read %q: %w", keys[i], err)
			}
			out[i] = State{Exists: exists == 1, Spent: spent, Reserved: reserved, Held: held, Live: live}
		}
	}
	return out, nil
}

// ScanCounters calls fn with every counter key in Redis (on Redis Cluster:
// on every master), skipping companion keys, for verify. It uses SCAN, so
// it does not block Redis, and like SCAN it may report a key twice (during
// a rehash or a slot migration): fn must tolerate that. Calls to fn are
// serialized. An error from fn stops the scan and is returned.
func (s *Store) ScanCounters(ctx context.Context, fn func(key string) error) error {
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, scope.CounterPrefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			if isCompanion(k) {
				continue
			}
			mu.Lock()
			err := fn(k)
			mu.Unlock()
			if err != nil {
				return err
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("scan counters: %w", err)
		}
		return nil
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, s.rdb)
}
