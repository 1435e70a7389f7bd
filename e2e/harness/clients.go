package harness

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Helpers a test uses on the stores and services the harness started. Each
// fails the test on error and closes what it opened at the test's cleanup.

// Context is a context for one test's calls: it ends after two minutes, so a
// hung store fails the test instead of hanging it, or at the test's cleanup.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// Pool is a pgx pool on the Postgres at url, closed at tb's cleanup.
func Pool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatalf("harness: postgres pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// RedisClient is a client of the Redis at url, closed at tb's cleanup.
func RedisClient(tb testing.TB, url string) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("harness: redis url: %v", err)
	}
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Eventually polls cond every 10ms until it holds, and fails tb if it does not
// within the given time; cond's string says what it saw, for the message.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v (last: %s)", what, within, saw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// OK wraps a Connect call that must succeed and returns its message:
// OK[budgetv1.AdmitResponse](t, "admit")(client.Admit(ctx, req)).
func OK[T any](tb testing.TB, what string) func(*connect.Response[T], error) *T {
	return func(r *connect.Response[T], err error) *T {
		tb.Helper()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		return r.Msg
	}
}

// WantCode fails tb unless err is a Connect error with code want.
func WantCode(tb testing.TB, what string, err error, want connect.Code) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("%s: succeeded; want %v", what, want)
	}
	if got := connect.CodeOf(err); got != want {
		tb.Fatalf("%s: %v (%v); want %v", what, got, err, want)
	}
}

// ScriptStats reads Redis's script calls (EVALSHA and EVAL) and the time
// they took, in µs, since its start or CONFIG RESETSTAT: a benchmark takes
// the difference over its run.
func ScriptStats(tb testing.TB, rdb *redis.Client) (calls, usec int64) {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatalf("harness: redis commandstats: %v", err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		for _, kv := range strings.Split(line[strings.IndexByte(line, ':')+1:], ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				calls += n
			case "usec":
				usec += n
			}
		}
	}
	return calls, usec
}
