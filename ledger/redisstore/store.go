package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/ledger/scope"
)

// Store runs the counter scripts on one Redis deployment: a single node
// (*redis.Client, including Sentinel failover clients) or Redis Cluster
// (*redis.ClusterClient). Redis must be 7.0 or later (PEXPIRETIME, ZMSCORE)
// with maxmemory-policy noeviction. It is safe for concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	cluster   bool
	lossFence bool
}

// Option configures a Store.
type Option func(*Store)

// WithLossFence makes Reserve and ReserveBatch refuse, with ErrLost or
// ErrFenced, when Redis has lost its data or admission is fenced after such
// a loss (fence.go), checked atomically with the reservation. The budget
// service sets it; single-node Redis only (the check is a MULTI across the
// epoch key and the counters, which Cluster cannot run across slots).
func WithLossFence() Option { return func(s *Store) { s.lossFence = true } }

// New returns a Store on rdb. A *redis.ClusterClient makes every multi-
// counter call run slot group by slot group (see Reserve); *redis.Ring is not
// supported (its shards do not follow hash slots).
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	_, cluster := rdb.(*redis.ClusterClient)
	s := &Store{rdb: rdb, cluster: cluster}
	for _, o := range opts {
		o(s)
	}
	if s.cluster {
		s.lossFence = false
	}
	return s
}

// runReserve runs a reservation script, guarded by the loss fence when the
// Store has one.
func (s *Store) runReserve(ctx context.Context, script *redis.Script, keys []string, args ...any) (any, error) {
	if !s.lossFence {
		return script.Run(ctx, s.rdb, keys, args...).Result()
	}
	return s.guarded(ctx, script, keys, args...)
}

// ErrInvalid is wrapped by every error about a caller's argument.
var ErrInvalid = errors.New("redisstore: invalid argument")

// ErrExpired is returned by Seed when expireAt is not after Redis's clock:
// the counter's window (and grace) is over, so it is not recreated. The
// caller drops the projection into it; the ledger row is the record.
var ErrExpired = errors.New("redisstore: counter expiry is in the past")

// MaxExactSeq bounds stream sequences: a marker's score is a double, exact
// up to 2^53 (at a million events a second, 285 years of one stream).
const MaxExactSeq = 1 << 53

// maxIDLen bounds reservation and event IDs (UUIDs in practice): they become
// hash fields and zset members on every counter.
const maxIDLen = 256

// Counter is one counter a reservation checks: its key (from
// scope.CounterKey, nothing else) and the budget limit in nano-USD. It has no
// expiry: a counter's keys expire when Seed said (window end + grace), and
// nothing on the hot path touches that.
type Counter struct {
	Key   string
	Limit int64
}

// State is one counter as a call saw it, amounts in nano-USD.
type State struct {
	// Exists is false for a missing counter (all amounts zero).
	Exists bool
	// Spent is the settled spend: the ledger sum at seed plus every event
	// applied since.
	Spent int64
	// Reserved is the stored sum of reservations, including expired ones
	// not yet evicted (Reserve evicts before it checks).
	Reserved int64
	// Held is the sum of every reservation field; equal to Reserved in a
	// sound counter, which verify checks.
	Held int64
	// Live is the sum of the reservations that have not expired: what
	// admission counts.
	Live int64
}

// The one place companion key names are spelled. Appending a suffix keeps
// the counter's hash tag, so companions live in their counter's Redis
// Cluster slot and one script can touch all three; and since a counter key
// ends in its window index (digits), no companion is ever a counter key.
const (
	reservationsSuffix = ":x" // zset: reservation id -> expiry (unix ms)
	markersSuffix      = ":m" // zset: applied event id -> COSTS stream sequence
)

// companions returns the names of counter key k's companion keys.
func companions(k string) (reservations, markers string) {
	return k + reservationsSuffix, k + markersSuffix
}

// isCompanion tells a companion key from a counter key (for SCAN).
func isCompanion(k string) bool {
	return strings.HasSuffix(k, reservationsSuffix) || strings.HasSuffix(k, markersSuffix)
}

// scriptKeys lays out KEYS for the counters at idx: each counter followed by
// its reservation zset, and by its marker zset if markers is set.
func scriptKeys(keys []string, idx []int, withReservations, withMarkers bool) []string {
	out := make([]string, 0, 3*len(idx))
	for _, i := range idx {
		x, m := companions(keys[i])
		out = append(out, keys[i])
		if withReservations {
			out = append(out, x)
		}
		if withMarkers {
			out = append(out, m)
		}
	}
	return out
}

// checkKeys rejects what cannot be a counter key, and duplicates (a script
// would charge a duplicated counter twice). It checks the shape cheaply
// rather than parsing: keys come from scope.CounterKey on the hot path.
func checkKeys(keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no counters", ErrInvalid)
	}
	for i, k := range keys {
		if !strings.HasPrefix(k, scope.CounterPrefix+"{") || isCompanion(k) || !strings.Contains(k, "}:") {
			return fmt.Errorf("%w: %q is not a counter key (scope.CounterKey)", ErrInvalid, k)
		}
		for _, o := range keys[:i] {
			if o == k {
				return fmt.Errorf("%w: counter %q given twice", ErrInvalid, k)
			}
		}
	}
	return nil
}

func checkID(what, id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: %s must be 1 to %d bytes, got %d", ErrInvalid, what, maxIDLen, len(id))
	}
	return nil
}

func parseInt64(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an int64 amount: %q", s)
	}
	return n, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }
