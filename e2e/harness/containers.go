package harness

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnats "github.com/testcontainers/testcontainers-go/modules/nats"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// Images used when a Docker engine is available. Override with env
// SPENDLEDGER_E2E_{NATS,POSTGRES,REDIS}_IMAGE.
var (
	natsImage     = envOr("SPENDLEDGER_E2E_NATS_IMAGE", "nats:2.12-alpine")
	postgresImage = envOr("SPENDLEDGER_E2E_POSTGRES_IMAGE", "postgres:15-alpine")
	redisImage    = envOr("SPENDLEDGER_E2E_REDIS_IMAGE", "redis:7-alpine")
)

var docker struct {
	once   sync.Once
	ok     bool
	reason string
}

// dockerAvailable decides between containers and local binaries, once per test
// binary. SPENDLEDGER_E2E_INFRA=local|docker forces the choice.
func dockerAvailable(cfg *config) (bool, string) {
	if cfg.forceLocal {
		return false, "WithLocalInfra"
	}
	switch v := os.Getenv("SPENDLEDGER_E2E_INFRA"); v {
	case "local":
		return false, "SPENDLEDGER_E2E_INFRA=local"
	case "docker":
		return true, "SPENDLEDGER_E2E_INFRA=docker"
	case "":
	default:
		return false, "unknown SPENDLEDGER_E2E_INFRA=" + v + ", using local"
	}
	docker.once.Do(func() { docker.ok, docker.reason = pingDocker() })
	return docker.ok, docker.reason
}

func pingDocker() (bool, string) {
	// Cheap pre-check so a machine without any engine does not pay for (or get log
	// noise from) the testcontainers client: no DOCKER_HOST, no known socket, no
	// testcontainers config that could name a remote engine.
	home, _ := os.UserHomeDir()
	candidates := []string{"/var/run/docker.sock", filepath.Join(home, ".docker/run/docker.sock"), filepath.Join(home, ".testcontainers.properties")}
	if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" {
		candidates = append(candidates, filepath.Join(xdg, "docker.sock"), filepath.Join(xdg, "podman/podman.sock"))
	}
	found := os.Getenv("DOCKER_HOST") != "" || os.Getenv("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE") != ""
	for _, c := range candidates {
		found = found || fileExists(c)
	}
	if !found {
		return false, "no Docker engine (no DOCKER_HOST, no docker.sock)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false, "Docker engine unreachable: " + err.Error()
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return false, "Docker engine does not answer: " + err.Error()
	}
	return true, "Docker engine answers"
}

// containerStore is a store run as a container. Its host port is pinned (chosen
// free up front) so that a stopped and started container keeps its URL.
type containerStore struct {
	name string
	ctr  testcontainers.Container
}

func (s *containerStore) start(ctx context.Context) error { return s.ctr.Start(ctx) }
func (s *containerStore) stop(ctx context.Context) error {
	d := 15 * time.Second
	return s.ctr.Stop(ctx, &d)
}
func (s *containerStore) kill(ctx context.Context) error {
	d := time.Duration(0) // no grace period: docker sends SIGKILL at once
	return s.ctr.Stop(ctx, &d)
}
func (s *containerStore) close(ctx context.Context) { _ = testcontainers.TerminateContainer(s.ctr) }

// pinPort binds containerPort ("4222/tcp") to hostPort on 127.0.0.1.
func pinPort(containerPort string, hostPort int) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		hc.PortBindings[network.MustParsePort(containerPort)] = []network.PortBinding{
			{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hostPort)},
		}
	})
}

func (in *Infra) startContainers(ctx context.Context) error {
	var natsPort, pgPort, redisPort int
	for _, p := range []*int{&natsPort, &pgPort, &redisPort} {
		var err error
		if *p, err = freePort(); err != nil {
			return err
		}
	}

	nc, err := tcnats.Run(ctx, natsImage,
		testcontainers.WithCmd("-js", "-sd", "/data/jetstream"),
		pinPort("4222/tcp", natsPort))
	if nc != nil {
		in.nats = in.containerStore("nats", nc)
	}
	if err != nil {
		return fmt.Errorf("nats container: %w", err)
	}
	in.NATSURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)

	rc, err := tcredis.Run(ctx, redisImage,
		testcontainers.WithCmd("redis-server", "--save", "", "--appendonly", "no"),
		pinPort("6379/tcp", redisPort))
	if rc != nil {
		in.redis = in.containerStore("redis", rc)
	}
	if err != nil {
		return fmt.Errorf("redis container: %w", err)
	}
	in.RedisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort)

	pc, err := tcpostgres.Run(ctx, postgresImage,
		tcpostgres.WithDatabase(Database),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
		// The module already runs postgres with fsync=off; see local.go on synchronous_commit.
		testcontainers.WithCmdArgs("-c", "full_page_writes=off"),
		pinPort("5432/tcp", pgPort))
	if pc != nil {
		in.pg = in.containerStore("postgres", pc)
	}
	if err != nil {
		return fmt.Errorf("postgres container: %w", err)
	}
	in.PostgresURL = fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/%s?sslmode=disable", pgPort, Database)

	// The modules' wait strategies answer before the stores do in some cases
	// (e.g. JetStream); probe them the same way as local ones.
	for name, probe := range map[string]func(context.Context) error{
		"nats": pingNATS(in.NATSURL), "redis": pingRedis(in.RedisURL), "postgres": pingPostgres(in.PostgresURL),
	} {
		if err := waitFor(ctx, 60*time.Second, name, nil, probe); err != nil {
			return err
		}
	}
	return nil
}

// containerStore wraps a container and arranges for its logs to be written to
// the per-test log dir when logs are dumped.
func (in *Infra) containerStore(name string, ctr testcontainers.Container) *containerStore {
	in.logs.addFetcher(func(ctx context.Context) {
		rc, err := ctr.Logs(ctx)
		if err != nil {
			return
		}
		defer rc.Close()
		if f, err := os.Create(in.logs.path(name)); err == nil {
			_, _ = io.Copy(f, rc)
			f.Close()
		}
	})
	return &containerStore{name: name, ctr: ctr}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
