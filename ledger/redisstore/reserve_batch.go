package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxReserveBatch bounds the requests one ReserveBatch script call decides;
// a longer batch is split into several calls. Redis runs one script at a
// time, so a call's length is what any other command waits behind it: at
// 50-80 µs per six-counter request on the reference machine (BENCHMARKS.md),
// a full call is several milliseconds, so callers should send fewer (the
// budget service's group commit sends at most 64).
const MaxReserveBatch = 128

// reserveBatchScript is lua/reserve_batch.lua with reserve.lua's body
// wrapped as the function reserve_one(KEYS, ARGV) before it: a request off
// the common path runs exactly Reserve's code.
var reserveBatchScript = redis.NewScript(ScriptHeader("reserve_batch") +
	luaSource("common", "num") +
	"local function reserve_one(KEYS, ARGV)\n" + luaSource("reserve") + "end\n" +
	luaSource("reserve_batch"))

// luaSource concatenates lua/<name>.lua files as newScript does.
func luaSource(names ...string) string {
	var b strings.Builder
	for _, f := range names {
		src, err := luaFS.ReadFile("lua/" + f + ".lua")
		if err != nil {
			panic(fmt.Sprintf("redisstore: %v", err))
		}
		b.Write(src)
		b.WriteString("\n")
	}
	return b.String()
}

// ReserveScriptSource is the source of the script Reserve runs, byte for
// byte (its SHA1 is the one Reserve's EVALSHA names). It is for loading the
// script by hand, e.g. to measure Redis's own limit with redis-benchmark
// EVALSHA against the very script admission runs.
func ReserveScriptSource() string {
	return ScriptHeader("reserve") + luaSource("common", "num", "reserve")
}

// ReserveBatchResult is one request's outcome in ReserveBatch: what Reserve
// would have returned for it.
type ReserveBatchResult struct {
	ReserveResult
	Err error
}

// ReserveBatch decides many Reserve requests with the per-request semantics
// of Reserve, in as few script calls as it can (group commit): on a single
// node one call per MaxReserveBatch requests. It returns one result per
// request, in order.
//
// Requests are decided in the order given, each as if by its own Reserve
// call, the state one leaves being the next one's start: two requests that
// together pass a limit are admitted and denied in that order, and a
// request repeating an earlier one's ID is idempotent exactly as a retried
// Reserve is. A request that is invalid (ErrInvalid) or whose counters the
// script finds corrupt gets its own error and holds nothing; the others are
// decided regardless. An error of the call itself (Redis unreachable, a lost
// reply) is every request's error in that call, and as with Reserve those
// requests may or may not hold their reservation: retry with the same IDs,
// or Release, or let them expire.
//
// The reservation's ExpiresAt, and the eviction of expired reservations,
// use Redis's clock read once per call.
//
// On Redis Cluster one request's counters may span slots, which one script
// cannot touch; there ReserveBatch runs Reserve for each request in turn,
// with Reserve's slot-by-slot semantics, and saves nothing (see Cluster).
func (s *Store) ReserveBatch(ctx context.Context, reqs []ReserveRequest) []ReserveBatchResult {
	out := make([]ReserveBatchResult, len(reqs))
	if s.cluster {
		for i, r := range reqs {
			out[i].ReserveResult, out[i].Err = s.Reserve(ctx, r)
		}
		return out
	}
	var valid []int
	for i, r := range reqs {
		if err := r.check(); err != nil {
			out[i].Err = err
			continue
		}
		valid = append(valid, i)
	}
	for len(valid) > 0 {
		n := min(len(valid), MaxReserveBatch)
		s.reserveBatchCall(ctx, reqs, valid[:n], out)
		valid = valid[n:]
	}
	return out
}

// Cluster reports whether s runs on Redis Cluster, where ReserveBatch is no
// faster than Reserve: a caller batching Reserve calls (group commit) should
// call Reserve directly there.
func (s *Store) Cluster() bool { return s.cluster }

// check validates a request as Reserve does.
func (r ReserveRequest) check() error {
	keys := make([]string, len(r.Counters))
	for i, c := range r.Counters {
		keys[i] = c.Key
		if c.Limit < 0 {
			return fmt.Errorf("%w: reserve: counter %q has negative limit %d", ErrInvalid, c.Key, c.Limit)
		}
	}
	if err := checkKeys(keys); err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if err := checkID("reservation id", r.ID); err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if r.Amount <= 0 {
		return fmt.Errorf("%w: reserve %q: amount %d must be positive", ErrInvalid, r.ID, r.Amount)
	}
	if r.TTL < time.Millisecond {
		return fmt.Errorf("%w: reserve %q: ttl %v below 1ms", ErrInvalid, r.ID, r.TTL)
	}
	return nil
}

// reserveBatchCall runs one script call for the requests at idx and fills
// their results in out.
func (s *Store) reserveBatchCall(ctx context.Context, reqs []ReserveRequest, idx []int, out []ReserveBatchResult) {
	counter := map[string]int{} // key -> 1-based counter number
	var keys []string
	var args []any
	for _, i := range idx {
		r := reqs[i]
		args = append(args, r.ID, itoa(r.Amount), r.TTL.Milliseconds(), len(r.Counters))
		for _, c := range r.Counters {
			n, ok := counter[c.Key]
			if !ok {
				x, _ := companions(c.Key)
				keys = append(keys, c.Key, x)
				n = len(keys) / 2
				counter[c.Key] = n
			}
			args = append(args, n, itoa(c.Limit))
		}
	}
	fail := func(err error) {
		for _, i := range idx {
			out[i].Err = err
		}
	}
	v, err := s.runReserve(ctx, reserveBatchScript, keys, args...)
	if guard := errors.Is(err, ErrLost) || errors.Is(err, ErrFenced); guard && v != nil {
		// The script ran in the fenced step: release what it admitted.
		defer s.undoBatch(ctx, reqs, idx, out, err)
	} else if err != nil {
		fail(fmt.Errorf("reserve batch of %d: %w", len(idx), err))
		return
	}
	flat, err := replySlice(v, "reserve batch")
	if err != nil {
		fail(fmt.Errorf("reserve batch of %d: unexpected reply %v (%v)", len(idx), v, err))
		return
	}
	r := &flatReply{v: flat}
	for _, i := range idx {
		out[i].ReserveResult, out[i].Err = decodeReserveReply(r, reqs[i])
		if r.broken != nil {
			fail(fmt.Errorf("reserve batch of %d: %w", len(idx), r.broken))
			return
		}
	}
	if r.at != len(flat) {
		fail(fmt.Errorf("reserve batch of %d: %d reply values left over", len(idx), len(flat)-r.at))
	}
}

// flatReply reads reserve_batch.lua's flat reply value by value. A reply
// cut short or of the wrong type sets broken: the rest cannot be framed, so
// the whole call fails.
type flatReply struct {
	v      []any
	at     int
	broken error
}

func (r *flatReply) next() any {
	if r.at >= len(r.v) {
		if r.broken == nil {
			r.broken = errors.New("reply cut short")
		}
		return nil
	}
	r.at++
	return r.v[r.at-1]
}

func (r *flatReply) int(what string) int64 {
	n, err := replyInt(r.next(), what)
	if err != nil && r.broken == nil {
		r.broken = err
	}
	return n
}

// list reads a count, at most limit, and that many values.
func (r *flatReply) list(what string, limit int) []any {
	k := r.int(what + " count")
	if k < 0 || k > int64(limit) || k > int64(len(r.v)-r.at) {
		if r.broken == nil {
			r.broken = fmt.Errorf("%s: bad count %d", what, k)
		}
		return nil
	}
	out := r.v[r.at : r.at+int(k)]
	r.at += int(k)
	return out
}

// decodeReserveReply reads one request's part of the flat reply: code,
// denied, expires_ms, #missing, missing..., #states, states..., or -1,
// message for a request that raised an error.
func decodeReserveReply(r *flatReply, req ReserveRequest) (ReserveResult, error) {
	n := len(req.Counters)
	code := r.int("reserve code")
	if code == -1 {
		msg, _ := r.next().(string)
		return ReserveResult{}, fmt.Errorf("reserve %q: %s", req.ID, msg)
	}
	denied := r.int("reserve denied")
	expiresMS := r.int("reserve expiry")
	missing := r.list("reserve missing", n)
	states := r.list("reserve states", 2*n)
	if r.broken != nil {
		return ReserveResult{}, r.broken
	}
	res := ReserveResult{Denied: -1, States: make([]State, n)}
	for _, m := range missing {
		j, err := replyInt(m, "reserve missing")
		if err != nil || j < 1 || int(j) > n {
			return ReserveResult{}, fmt.Errorf("reserve %q: bad missing index %v", req.ID, m)
		}
		res.Missing = append(res.Missing, int(j-1))
	}
	if code == 2 {
		return res, nil
	}
	if len(states) != 2*n {
		return ReserveResult{}, fmt.Errorf("reserve %q: %d state values for %d counters", req.ID, len(states), n)
	}
	for j := range n {
		spent, err1 := replyDecimal(states[2*j], "reserve spent")
		reserved, err2 := replyDecimal(states[2*j+1], "reserve reserved")
		if err := errors.Join(err1, err2); err != nil {
			return ReserveResult{}, fmt.Errorf("reserve %q: %w", req.ID, err)
		}
		res.States[j] = State{Exists: true, Spent: spent, Reserved: reserved, Held: reserved, Live: reserved}
	}
	switch code {
	case 0:
		res.Admitted = true
		res.ExpiresAt = time.UnixMilli(expiresMS)
		return res, nil
	case 1:
		if denied < 1 || int(denied) > n {
			return ReserveResult{}, fmt.Errorf("reserve %q: bad denied index %d", req.ID, denied)
		}
		res.Denied = int(denied - 1)
		return res, nil
	}
	return ReserveResult{}, fmt.Errorf("reserve %q: unknown code %d", req.ID, code)
}

// undoBatch releases the reservations a batch made in a step that turned
// out lost or fenced, and fails every request of it with guard.
func (s *Store) undoBatch(ctx context.Context, reqs []ReserveRequest, idx []int, out []ReserveBatchResult, guard error) {
	for _, i := range idx {
		if out[i].Err == nil && out[i].Admitted {
			keys := make([]string, len(reqs[i].Counters))
			for j, c := range reqs[i].Counters {
				keys[j] = c.Key
			}
			if _, err := s.Release(ctx, reqs[i].ID, keys); err != nil {
				guard = errors.Join(guard, err)
			}
		}
		out[i] = ReserveBatchResult{Err: guard}
	}
}
