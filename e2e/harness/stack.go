package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Services are the four services, in start order.
var Services = []string{"pricing", "ledger", "budget", "gateway"}

// Stack is a test's infra plus the four services.
type Stack struct {
	*Infra
	GatewayURL string // http://127.0.0.1:PORT, the OpenAI API
	BudgetURL  string
	LedgerURL  string
	PricingURL string

	GatewayConfig string // path of the gateway's config
	MasterKey     string // general_settings.master_key of that config (os.environ/ resolved)
	SpoolDir      string // the gateway's spool dir; kept across gateway restarts

	services map[string]*Service
}

// Service is one running service. Its port, flags and data survive Stop/Kill/Start.
type Service struct {
	Name string
	URL  string // http://127.0.0.1:PORT

	t            testing.TB
	p            *process
	logs         *logSet
	readyTimeout time.Duration
}

// StartStack starts infra and the four services and waits until every service's
// /readyz answers 200. Everything stops at tb's cleanup.
func StartStack(tb testing.TB, opts ...Option) *Stack {
	tb.Helper()
	cfg := newConfig(opts)
	bindir, err := serviceBinaries()
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	in := startInfra(tb, cfg)
	st := &Stack{Infra: in, services: map[string]*Service{}, SpoolDir: filepath.Join(in.Dir, "spool")}
	if err := st.resolveGatewayConfig(cfg); err != nil {
		tb.Fatalf("harness: %v", err)
	}
	if err := os.MkdirAll(st.SpoolDir, 0o755); err != nil {
		tb.Fatalf("harness: %v", err)
	}

	addrs := map[string]string{}
	for _, name := range Services {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("harness: %v", err)
		}
		addrs[name] = "127.0.0.1:" + strconv.Itoa(port)
	}
	st.GatewayURL, st.BudgetURL = "http://"+addrs["gateway"], "http://"+addrs["budget"]
	st.LedgerURL, st.PricingURL = "http://"+addrs["ledger"], "http://"+addrs["pricing"]

	common := []string{"--nats-url", in.NATSURL, "--log-level", cfg.logLevel}
	stores := []string{"--database-url", in.PostgresURL, "--redis-url", in.RedisURL}
	flags := map[string][]string{
		"pricing": common,
		"ledger":  concat(common, stores),
		"budget":  concat(common, stores),
		"gateway": concat(common, []string{"--budget-url", st.BudgetURL, "--ledger-url", st.LedgerURL,
			"--config", st.GatewayConfig, "--spool-dir", st.SpoolDir}),
	}
	for _, name := range Services {
		st.services[name] = in.newService(name, addrs[name], filepath.Join(bindir, name),
			concat([]string{"--http-addr", addrs[name]}, flags[name], cfg.args[name]), cfg.env[name])
	}
	// Registered after the infra's cleanup, so it runs before it: services stop
	// (gateway first) while their stores are still up.
	tb.Cleanup(func() {
		for i := len(Services) - 1; i >= 0; i-- {
			st.services[Services[i]].stopChecked()
		}
	})

	// The gateway depends on budget and ledger; start it once they are ready. The
	// other three start together, as they would in a deployment.
	backends := Services[:len(Services)-1]
	for _, name := range backends {
		st.services[name].StartNoWait()
	}
	for _, name := range backends {
		st.services[name].WaitReady()
	}
	st.services["gateway"].Start()
	return st
}

// Service returns the handle of a service by name (see Services).
func (st *Stack) Service(name string) *Service {
	s, ok := st.services[name]
	if !ok {
		st.t.Fatalf("harness: no service %q (have %v)", name, Services)
	}
	return s
}

// Start starts the service (again, on the same port) and waits for /readyz 200.
func (s *Service) Start() {
	s.t.Helper()
	s.StartNoWait()
	s.WaitReady()
}

// StartNoWait starts the service without waiting for it to be ready.
func (s *Service) StartNoWait() {
	s.t.Helper()
	if err := s.p.start(); err != nil {
		s.t.Fatalf("harness: %v", err)
	}
}

// WaitReady waits until /readyz answers 200; fails the test with the service's
// log tail if it does not within the ready timeout or the process exits.
func (s *Service) WaitReady() {
	s.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	probe := func(ctx context.Context) error { return httpOK(ctx, client, s.URL+"/readyz") }
	if err := waitFor(context.Background(), s.readyTimeout, s.Name, s.p.exited(), probe); err != nil {
		s.t.Fatalf("harness: service %s: %v\n%s", s.Name, err, s.logs.tail(s.Name, 60))
	}
}

// Stop sends SIGTERM and waits for the process to exit; the test fails if it
// does not exit within 15s or exits non-zero (services must exit cleanly on SIGTERM).
func (s *Service) Stop() {
	s.t.Helper()
	s.stopChecked()
}

func (s *Service) stopChecked() {
	s.t.Helper()
	wasRunning := s.p.running()
	if err := s.p.stop(); err != nil {
		s.t.Errorf("harness: service %s: %v", s.Name, err)
		return
	}
	if wasRunning {
		if err := s.p.exitErr(); err != nil {
			s.t.Errorf("harness: service %s did not exit cleanly on SIGTERM: %s", s.Name, exitDesc(err))
		}
	}
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (s *Service) Kill() { s.p.kill() }

// Restart is Stop then Start.
func (s *Service) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Running reports whether the process is alive.
func (s *Service) Running() bool { return s.p.running() }

// PID is the current process id (0 if never started).
func (s *Service) PID() int { return s.p.pid() }

// LogPath is the service's log file (all runs appended).
func (s *Service) LogPath() string { return s.p.logPath }

func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func (st *Stack) resolveGatewayConfig(cfg *config) error {
	switch {
	case cfg.gatewayConfigYAML != "":
		st.GatewayConfig = filepath.Join(st.Dir, "gateway.yaml")
		if err := os.WriteFile(st.GatewayConfig, []byte(cfg.gatewayConfigYAML), 0o644); err != nil {
			return err
		}
	case cfg.gatewayConfig != "":
		p, err := filepath.Abs(cfg.gatewayConfig)
		if err != nil {
			return err
		}
		st.GatewayConfig = p
	default:
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		st.GatewayConfig = filepath.Join(root, "deploy", "local", "demo.yaml")
	}
	raw, err := os.ReadFile(st.GatewayConfig)
	if err != nil {
		return fmt.Errorf("gateway config: %w (pass WithGatewayConfig or WithGatewayConfigYAML)", err)
	}
	var doc struct {
		GeneralSettings struct {
			MasterKey string `yaml:"master_key"`
		} `yaml:"general_settings"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("gateway config %s: %w", st.GatewayConfig, err)
	}
	st.MasterKey = doc.GeneralSettings.MasterKey
	if name, ok := strings.CutPrefix(st.MasterKey, "os.environ/"); ok {
		st.MasterKey = os.Getenv(name)
	}
	return nil
}

var builds struct {
	once sync.Once
	dir  string
	err  error
}

// serviceBinaries builds the four services once per test binary (or returns
// $SPENDLEDGER_E2E_BIN_DIR) and returns the directory holding them.
func serviceBinaries() (string, error) {
	if dir := os.Getenv("SPENDLEDGER_E2E_BIN_DIR"); dir != "" {
		return filepath.Abs(dir)
	}
	builds.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			builds.err = err
			return
		}
		dir, err := os.MkdirTemp("", "spendledger-e2e-bin-")
		if err != nil {
			builds.err = err
			return
		}
		builds.dir = dir
		args := []string{"build", "-o", dir + string(filepath.Separator)}
		for _, name := range Services {
			args = append(args, "./services/"+name)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			builds.err = fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(args, " "), root, err, out)
		}
	})
	return builds.dir, builds.err
}

// Main runs the tests and then removes the service binaries built for them. Use
// it from TestMain: func TestMain(m *testing.M) { harness.Main(m) }.
func Main(m interface{ Run() int }) {
	code := m.Run()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Run runs a service binary with a subcommand (e.g. "ledger", "verify") against
// the stack's stores and returns its exit code and combined output. The stores
// reach it through the environment variables every service reads for a flag
// not given (DATABASE_URL, REDIS_URL, NATS_URL) rather than appended flags: a
// flag in args then points the command at another store (a second database,
// say), and a command that uses no NATS ignores NATS_URL where it would reject
// an unknown -nats-url.
func (st *Stack) Run(service string, args ...string) (int, string) {
	st.t.Helper()
	dir, err := serviceBinaries()
	if err != nil {
		st.t.Fatalf("harness: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, service), args...)
	// Later entries win over the test process's own environment.
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+st.PostgresURL, "REDIS_URL="+st.RedisURL, "NATS_URL="+st.NATSURL)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	default:
		st.t.Fatalf("harness: run %s %v: %v\n%s", service, args, err, out)
		return -1, ""
	}
}

// StartReplica starts another instance of a running service: the same binary
// and flags on a port of its own (a gateway also on a spool directory of its
// own), as a second instance in a deployment would run. It is stopped at the test's cleanup, before the stores.
func (st *Stack) StartReplica(name string) *Service {
	st.t.Helper()
	orig := st.Service(name)
	port, err := freePort()
	if err != nil {
		st.t.Fatalf("harness: %v", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := slices.Clone(orig.p.args)
	for i := range args {
		if args[i] == "--http-addr" && i+1 < len(args) {
			args[i+1] = addr
		}
		// A spool has one writer (the second gateway on one would not start):
		// a gateway replica gets its own, as in a deployment.
		if args[i] == "--spool-dir" && i+1 < len(args) {
			args[i+1] = filepath.Join(st.Dir, "spool-"+strconv.Itoa(port))
		}
	}
	replica := name + "-" + strconv.Itoa(port)
	s := &Service{
		Name: replica,
		URL:  "http://" + addr,
		t:    orig.t,
		logs: orig.logs,
		p: &process{
			name: replica, path: orig.p.path, args: args, env: orig.p.env, dir: orig.p.dir,
			logPath: orig.logs.path(replica), stopWait: orig.p.stopWait,
		},
		readyTimeout: orig.readyTimeout,
	}
	st.t.Cleanup(s.stopChecked)
	s.Start()
	return s
}
