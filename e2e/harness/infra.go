package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// Database is the name of the database the harness creates for the services.
const Database = "spendledger"

// Infra is a test's private NATS JetStream, Postgres and Redis. The URLs stay the
// same for the life of the test, across Stop/Start of a store.
type Infra struct {
	NATSURL     string // nats://127.0.0.1:PORT
	PostgresURL string // postgres://...@127.0.0.1:PORT/spendledger?sslmode=disable
	RedisURL    string // redis://127.0.0.1:PORT/0
	Backend     string // "local" (processes from local binaries) or "docker" (testcontainers)
	Dir         string // per-test directory; logs are in Dir/logs

	t     testing.TB
	cfg   *config
	nats  store
	pg    store
	redis store
	logs  *logSet
}

// store is one of the three stores, local process or container.
type store interface {
	start(ctx context.Context) error // start again after stop/kill, same port and data
	stop(ctx context.Context) error  // graceful stop
	kill(ctx context.Context) error  // SIGKILL
	close(ctx context.Context)       // final teardown at test cleanup
}

// StartInfra starts NATS (JetStream), Postgres and Redis for tb and stops them at
// tb's cleanup. It uses containers when a Docker engine answers (and
// SPENDLEDGER_E2E_INFRA is not "local"), local binaries otherwise.
func StartInfra(tb testing.TB, opts ...Option) *Infra {
	tb.Helper()
	return startInfra(tb, newConfig(opts))
}

func startInfra(tb testing.TB, cfg *config) *Infra {
	tb.Helper()
	in := newInfra(tb, cfg)
	useDocker, why := dockerAvailable(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	if useDocker {
		in.Backend = "docker"
		err = in.startContainers(ctx)
	} else {
		in.Backend = "local"
		err = in.startLocal(ctx)
	}
	if err != nil {
		tb.Fatalf("harness: start infra (%s: %s): %v", in.Backend, why, err)
	}
	return in
}

// newInfra is an Infra with no store started yet: its directory, its logs,
// and the cleanup that stops whichever stores get started and dumps the logs
// of a failed test.
func newInfra(tb testing.TB, cfg *config) *Infra {
	tb.Helper()
	in := &Infra{t: tb, cfg: cfg, Dir: tb.TempDir()}
	in.logs = &logSet{dir: filepath.Join(in.Dir, "logs")}
	if err := os.MkdirAll(in.logs.dir, 0o755); err != nil {
		tb.Fatalf("harness: %v", err)
	}
	// Registered first, so it runs last: after the services (registered later) stopped.
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if tb.Failed() {
			in.logs.fetch(ctx) // container logs vanish with the containers
		}
		for _, s := range []store{in.nats, in.redis, in.pg} {
			if s != nil {
				s.close(ctx)
			}
		}
		if tb.Failed() {
			in.logs.dump(tb)
		}
	})
	return in
}

// ---- store control for chaos tests. Each fails the test on error and, when it
// starts a store, returns once the store answers.

func (in *Infra) StopNATS()     { in.t.Helper(); in.do("stop nats", in.nats.stop) }
func (in *Infra) KillNATS()     { in.t.Helper(); in.do("kill nats", in.nats.kill) }
func (in *Infra) StartNATS()    { in.t.Helper(); in.do("start nats", in.nats.start); in.waitNATS() }
func (in *Infra) StopRedis()    { in.t.Helper(); in.do("stop redis", in.redis.stop) }
func (in *Infra) KillRedis()    { in.t.Helper(); in.do("kill redis", in.redis.kill) }
func (in *Infra) StartRedis()   { in.t.Helper(); in.do("start redis", in.redis.start); in.waitRedis() }
func (in *Infra) StopPostgres() { in.t.Helper(); in.do("stop postgres", in.pg.stop) }
func (in *Infra) KillPostgres() { in.t.Helper(); in.do("kill postgres", in.pg.kill) }
func (in *Infra) StartPostgres() {
	in.t.Helper()
	in.do("start postgres", in.pg.start)
	in.waitPostgres()
}

// RestartNATS stops and starts NATS; JetStream streams and consumers survive.
func (in *Infra) RestartNATS() { in.t.Helper(); in.StopNATS(); in.StartNATS() }

// RestartRedis stops and starts Redis. Redis runs without persistence, so every
// key is gone afterwards: this is "Redis lost its state".
func (in *Infra) RestartRedis() { in.t.Helper(); in.StopRedis(); in.StartRedis() }

// RestartPostgres stops (fast shutdown) and starts Postgres; data survives.
func (in *Infra) RestartPostgres() { in.t.Helper(); in.StopPostgres(); in.StartPostgres() }

// FlushRedis deletes every key in every Redis database.
func (in *Infra) FlushRedis() {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := in.Redis()
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		in.t.Fatalf("harness: flush redis: %v", err)
	}
}

// Redis returns a new client for the test's Redis; the caller closes it.
func (in *Infra) Redis() *redis.Client {
	opt, err := redis.ParseURL(in.RedisURL)
	if err != nil {
		in.t.Fatalf("harness: %v", err)
	}
	return redis.NewClient(opt)
}

// LogPath returns the log file of a store or service by name ("nats", "postgres",
// "redis", "gateway", ...).
func (in *Infra) LogPath(name string) string { return filepath.Join(in.logs.dir, name+".log") }

func (in *Infra) do(what string, f func(context.Context) error) {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		in.t.Fatalf("harness: %s: %v", what, err)
	}
}

func (in *Infra) waitNATS() {
	in.t.Helper()
	if err := waitFor(context.Background(), 30*time.Second, "nats", nil, pingNATS(in.NATSURL)); err != nil {
		in.t.Fatalf("harness: %v", err)
	}
}

func (in *Infra) waitRedis() {
	in.t.Helper()
	if err := waitFor(context.Background(), 30*time.Second, "redis", nil, pingRedis(in.RedisURL)); err != nil {
		in.t.Fatalf("harness: %v", err)
	}
}

func (in *Infra) waitPostgres() {
	in.t.Helper()
	if err := waitFor(context.Background(), 30*time.Second, "postgres", nil, pingPostgres(in.PostgresURL)); err != nil {
		in.t.Fatalf("harness: %v", err)
	}
}

// ---- readiness probes

func pingNATS(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		_, err = js.AccountInfo(ctx)
		return err
	}
}

func pingRedis(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return err
		}
		opt.MaxRetries = -1
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		return rdb.Ping(ctx).Err()
	}
}

func pingPostgres(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var one int
		return conn.QueryRow(ctx, "select 1").Scan(&one)
	}
}

// waitFor polls probe (each try bounded to 2s) until it succeeds, timeout passes or
// exited (if not nil) is closed.
func waitFor(ctx context.Context, timeout time.Duration, what string, exited <-chan struct{}, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		last = probe(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready (last probe: %v)", what, last)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %v", what, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ---- logs

// logSet is the per-test directory of process logs, dumped when the test fails.
type logSet struct {
	dir      string
	mu       sync.Mutex
	fetchers []func(context.Context) // refresh container logs into files before a dump
}

func (l *logSet) path(name string) string { return filepath.Join(l.dir, name+".log") }

func (l *logSet) addFetcher(f func(context.Context)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fetchers = append(l.fetchers, f)
}

// fetch writes container logs into the log dir.
func (l *logSet) fetch(ctx context.Context) {
	l.mu.Lock()
	fetchers := append([]func(context.Context){}, l.fetchers...)
	l.mu.Unlock()
	for _, f := range fetchers {
		f(ctx)
	}
}

const tailLines = 100

// dump prints the tail of every log to the test log and copies the logs to
// $REPO/e2e/.logs/<test>/ (git-ignored; CI can upload it as an artifact).
func (l *logSet) dump(tb testing.TB) {
	files, _ := filepath.Glob(filepath.Join(l.dir, "*.log"))
	sort.Strings(files)
	keep := ""
	if root, err := RepoRoot(); err == nil {
		keep = filepath.Join(root, "e2e", ".logs", regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(tb.Name(), "_"))
		_ = os.RemoveAll(keep)
		if os.MkdirAll(keep, 0o755) != nil {
			keep = ""
		}
	}
	for _, f := range files {
		tb.Logf("----- last %d lines of %s -----\n%s", tailLines, filepath.Base(f), tailFile(f, tailLines))
		if keep != "" {
			if b, err := os.ReadFile(f); err == nil {
				_ = os.WriteFile(filepath.Join(keep, filepath.Base(f)), b, 0o644)
			}
		}
	}
	if keep != "" {
		tb.Logf("full logs kept in %s", keep)
	}
}

// logTail is the end of one process's log, for error messages.
func (l *logSet) tail(name string, n int) string {
	return fmt.Sprintf("----- last %d lines of %s.log -----\n%s\n-----", n, name, strings.TrimRight(tailFile(l.path(name), n), "\n"))
}
