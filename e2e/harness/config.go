// Package harness runs the spend ledger's stores and services for end-to-end tests.
//
// StartInfra gives a test its own NATS (JetStream), Postgres and Redis: containers
// through testcontainers-go when a Docker engine answers, otherwise processes from
// local binaries (nats-server from .bin/ or PATH, redis-server from PATH, postgres
// from /usr/lib/postgresql/*/bin; deploy/local/deps.sh installs them all).
// StartStack adds the four services, built once per test binary from this
// repository and run as processes on free ports. StartNATSServer gives a test
// NATS alone, with NewService to run one service binary against it.
//
// A test talks to them through the helpers of clients.go (Context, Pool,
// RedisClient, Eventually, Connect's OK and WantCode), jetstream.go
// (JetStream, ReadStream, ReadEvents) and events.go (Publish, PricedCost),
// rather than a copy of its own.
//
// Everything a test starts is stopped at its cleanup; when the test failed, the
// tail of every log is printed and the full logs are kept in e2e/.logs/<test>/.
//
// Environment:
//
//	SPENDLEDGER_E2E_INFRA=local|docker   force the store backend (default: docker if it answers)
//	SPENDLEDGER_E2E_BIN_DIR=dir          use prebuilt service binaries instead of building
//	SPENDLEDGER_E2E_LOG_LEVEL=level      services' --log-level (default debug)
//	PG_BIN=dir                           postgres binaries for the local backend
package harness

import (
	"errors"
	"os"
	"path/filepath"
	"time"
)

// Option configures StartInfra and StartStack.
type Option func(*config)

type config struct {
	gatewayConfig     string
	gatewayConfigYAML string
	logLevel          string
	readyTimeout      time.Duration
	forceLocal        bool
	args              map[string][]string
	env               map[string][]string
}

func newConfig(opts []Option) *config {
	c := &config{
		logLevel:     envOr("SPENDLEDGER_E2E_LOG_LEVEL", "debug"),
		readyTimeout: 60 * time.Second,
		args:         map[string][]string{},
		env:          map[string][]string{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithGatewayConfig runs the gateway with the LiteLLM-style config at path
// (default: deploy/local/demo.yaml of this repository).
func WithGatewayConfig(path string) Option { return func(c *config) { c.gatewayConfig = path } }

// WithGatewayConfigYAML writes yaml to a file in the test's directory and runs
// the gateway with it.
func WithGatewayConfigYAML(yaml string) Option {
	return func(c *config) { c.gatewayConfigYAML = yaml }
}

// WithLogLevel sets the services' --log-level.
func WithLogLevel(level string) Option { return func(c *config) { c.logLevel = level } }

// WithReadyTimeout bounds how long a service may take to answer /readyz 200
// (default 60s).
func WithReadyTimeout(d time.Duration) Option { return func(c *config) { c.readyTimeout = d } }

// WithServiceArgs appends command-line arguments to one service's flags.
func WithServiceArgs(service string, args ...string) Option {
	return func(c *config) { c.args[service] = append(c.args[service], args...) }
}

// WithServiceEnv adds KEY=VALUE environment entries for one service.
func WithServiceEnv(service string, kv ...string) Option {
	return func(c *config) { c.env[service] = append(c.env[service], kv...) }
}

// WithLocalInfra uses local binaries for the stores even when Docker answers.
func WithLocalInfra() Option { return func(c *config) { c.forceLocal = true } }

// RepoRoot is the directory holding go.work, found by walking up from the working
// directory (a test runs in its package's directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.work")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
}
