package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// localStore is a store run as a local process.
type localStore struct {
	p       *process
	cleanup func() // removes what the store owns outside the test's temp dir
}

func (s *localStore) start(context.Context) error { return s.p.start() }
func (s *localStore) stop(context.Context) error  { return s.p.stop() }
func (s *localStore) kill(context.Context) error  { s.p.kill(); return nil }
func (s *localStore) close(context.Context) {
	if err := s.p.stop(); err != nil {
		s.p.kill()
	}
	if s.cleanup != nil {
		s.cleanup()
	}
}

func (in *Infra) startLocal(ctx context.Context) error {
	var err error
	if in.nats, err = in.startLocalNATS(ctx); err != nil {
		return err
	}
	if in.redis, err = in.startLocalRedis(ctx); err != nil {
		return err
	}
	if in.pg, err = in.startLocalPostgres(ctx); err != nil {
		return err
	}
	return nil
}

// startProbed starts p and waits for probe, failing fast if p exits.
func (in *Infra) startProbed(ctx context.Context, p *process, probe func(context.Context) error) error {
	if err := p.start(); err != nil {
		return err
	}
	if err := waitFor(ctx, 60*time.Second, p.name, p.exited(), probe); err != nil {
		return fmt.Errorf("%w\n%s", err, in.logs.tail(p.name, 40))
	}
	return nil
}

func (in *Infra) startLocalNATS(ctx context.Context) (store, error) {
	bin, err := findNATSServer()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	in.NATSURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	p := &process{
		name:    "nats",
		path:    bin,
		args:    []string{"-js", "-sd", filepath.Join(in.Dir, "nats"), "-p", strconv.Itoa(port), "-a", "127.0.0.1"},
		logPath: in.logs.path("nats"),
	}
	s := &localStore{p: p}
	return s, in.startProbed(ctx, p, pingNATS(in.NATSURL))
}

func (in *Infra) startLocalRedis(ctx context.Context) (store, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found in PATH (deploy/local/deps.sh installs it)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	in.RedisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	dir := filepath.Join(in.Dir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &process{
		name: "redis",
		path: bin,
		// No persistence: a restart is a Redis that lost everything.
		args:    []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"},
		logPath: in.logs.path("redis"),
	}
	s := &localStore{p: p}
	return s, in.startProbed(ctx, p, pingRedis(in.RedisURL))
}

func (in *Infra) startLocalPostgres(ctx context.Context) (store, error) {
	bindir, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	// Postgres refuses to run as root: then it runs as the postgres user, in a
	// directory of its own (the test's temp dir is 0700 root).
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres OS user to run postgres: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	home, err := os.MkdirTemp("", "spendledger-pg-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { _ = os.RemoveAll(home) }
	data, sock := filepath.Join(home, "data"), filepath.Join(home, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			cleanup()
			return nil, err
		}
	}
	if cred != nil {
		for _, d := range []string{home, data, sock} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				cleanup()
				return nil, err
			}
		}
	}

	initdb := &process{
		name:    "postgres",
		path:    filepath.Join(bindir, "initdb"),
		args:    []string{"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"},
		dir:     home,
		logPath: in.logs.path("postgres"),
		cred:    cred,
	}
	if err := initdb.start(); err != nil {
		cleanup()
		return nil, err
	}
	<-initdb.exited()
	if err := initdb.exitErr(); err != nil {
		cleanup()
		return nil, fmt.Errorf("initdb: %v\n%s", err, in.logs.tail("postgres", 40))
	}

	port, err := freePort()
	if err != nil {
		cleanup()
		return nil, err
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	in.PostgresURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, Database)
	p := &process{
		name: "postgres",
		path: filepath.Join(bindir, "postgres"),
		args: []string{"-D", data, "-p", strconv.Itoa(port), "-k", sock,
			"-c", "listen_addresses=127.0.0.1",
			// Speed over durability against an OS crash, which no test simulates. Not
			// synchronous_commit=off: that loses acknowledged commits when postgres
			// itself is killed (KillPostgres), and with fsync=off a synchronous commit
			// costs only a write(2).
			"-c", "fsync=off", "-c", "full_page_writes=off"},
		dir:     home,
		logPath: in.logs.path("postgres"),
		cred:    cred,
		// SIGTERM is postgres' "smart" shutdown, which waits for every client to
		// disconnect; SIGINT is the "fast" one.
		stopSig: syscall.SIGINT,
	}
	s := &localStore{p: p, cleanup: cleanup}
	if err := in.startProbed(ctx, p, pingPostgres(admin)); err != nil {
		s.close(ctx)
		return nil, err
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		s.close(ctx)
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("create database: %w", err)
	}
	return s, nil
}

// findNATSServer: $REPO/.bin/nats-server (what deploy/local/deps.sh installs), then PATH.
func findNATSServer() (string, error) {
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, ".bin", "nats-server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	return "", errors.New("nats-server not found in .bin/ or PATH (run deploy/local/deps.sh)")
}

// findPostgresBin: $PG_BIN, /usr/lib/postgresql/15/bin, the newest
// /usr/lib/postgresql/*/bin, then the directory of postgres in PATH.
func findPostgresBin() (string, error) {
	var candidates []string
	if d := os.Getenv("PG_BIN"); d != "" {
		candidates = append(candidates, d)
	}
	candidates = append(candidates, "/usr/lib/postgresql/15/bin")
	others, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(others, func(i, j int) bool { return pgMajor(others[i]) > pgMajor(others[j]) })
	candidates = append(candidates, others...)
	if p, err := exec.LookPath("postgres"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, d := range candidates {
		if fileExists(filepath.Join(d, "postgres")) && fileExists(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", errors.New("postgres binaries not found (set PG_BIN, or run deploy/local/deps.sh)")
}

func pgMajor(bindir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return n
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
