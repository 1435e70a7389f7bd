package deploy

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "deploy/docker-compose.yml"

// needs are the compose services each service must wait for (depends_on with
// condition service_healthy): the stores and services whose URL it is given.
// TestComposeDependsOnEveryURL derives the same from the environment.
var needs = map[string][]string{
	"gateway": {"nats", "budget", "ledger"},
	"pricing": {"nats"},
	"ledger":  {"nats", "postgres", "redis"},
	"budget":  {"nats", "postgres", "redis"},
}

// required are the variables compose must set to a non-empty value: their
// built-in defaults point at 127.0.0.1 or a relative path, wrong in a
// container.
var required = map[string][]string{
	"gateway": {"HTTP_ADDR", "NATS_URL", "GATEWAY_CONFIG", "BUDGET_URL", "LEDGER_URL", "SPOOL_DIR"},
	"pricing": {"HTTP_ADDR", "NATS_URL"},
	"ledger":  {"HTTP_ADDR", "NATS_URL", "DATABASE_URL", "REDIS_URL"},
	"budget":  {"HTTP_ADDR", "NATS_URL", "DATABASE_URL", "REDIS_URL"},
}

// extraEnv are variables a service reads that are not flags: the gateway's
// provider keys (services/gateway/internal/deploy reads them as LiteLLM does).
var extraEnv = map[string][]string{
	"gateway": {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY"},
}

// storePorts are the ports the stores' images listen on.
var storePorts = map[string]string{"nats": "4222", "postgres": "5432", "redis": "6379"}

// replicaOf maps the compose services of the "scale" profile to the service
// they run.
var replicaOf = map[string]string{"gateway-replica": "gateway"}

// loadCompose loads the compose file as `docker compose` would, with an empty
// environment (every ${VAR:-default} takes its default) and the given profiles.
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	dir := filepath.Join(root(t), "deploy")
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root(t), composeFile)}},
		Environment: types.Mapping{},
	}, loader.WithProfiles(profiles))
	if err != nil {
		t.Fatalf("%s does not load: %v", composeFile, err)
	}
	return p
}

// composeServices are the compose services that run one of the four
// services, with the service each runs (the scale profile included).
func composeServices(t *testing.T, p *types.Project) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range services {
		out[s] = s
	}
	for name, svc := range replicaOf {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("%s: service %s (profile scale) is missing", composeFile, name)
			continue
		}
		out[name] = svc
	}
	return out
}

func TestComposeLoadsWithEveryServiceAndStore(t *testing.T) {
	p := loadCompose(t)
	want := append(append([]string{}, services...), stores...)
	if got := keys(p.Services); !slices.Equal(got, sortedCopy(want)) {
		t.Errorf("default profile: services %v, want %v", got, sortedCopy(want))
	}
	scaled := loadCompose(t, "scale")
	want = append(want, keys(replicaOf)...)
	if got := keys(scaled.Services); !slices.Equal(got, sortedCopy(want)) {
		t.Errorf("profile scale: services %v, want %v", got, sortedCopy(want))
	}
	for name, s := range scaled.Services {
		if s.Image == "" {
			t.Errorf("%s: no image", name)
			continue
		}
		if _, tag := splitImage(s.Image); tag == "" || tag == "latest" {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
	}
}

func TestComposeHealthchecksAndDependsOn(t *testing.T) {
	p := loadCompose(t, "scale")
	for _, name := range stores {
		hc := p.Services[name].HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("store %s: no healthcheck", name)
		}
	}
	for name, svc := range composeServices(t, p) {
		s := p.Services[name]
		port := documentedPort(t, svc)
		hc := s.HealthCheck
		want := []string{"CMD", "/usr/local/bin/probe", "http://127.0.0.1:" + port + "/readyz"}
		if hc == nil || !slices.Equal([]string(hc.Test), want) {
			t.Errorf("%s: healthcheck %v, want %v", name, hc, want)
		}
		for _, dep := range needs[svc] {
			d, ok := s.DependsOn[dep]
			if !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: depends_on %s with condition %q, want service_healthy", name, dep, d.Condition)
			}
		}
	}
}

// TestComposeDependsOnEveryURL: every URL in a service's environment that
// names another compose service is a service_healthy dependency on a service
// with a healthcheck, on the port that service listens on.
func TestComposeDependsOnEveryURL(t *testing.T) {
	p := loadCompose(t, "scale")
	all := composeServices(t, p)
	for name := range all {
		s := p.Services[name]
		for env, v := range s.Environment {
			if v == nil {
				continue
			}
			u, err := url.Parse(*v)
			if err != nil || u.Host == "" {
				continue
			}
			host := u.Hostname()
			target, ok := p.Services[host]
			if !ok {
				t.Errorf("%s: %s=%s names host %q, which is not a compose service", name, env, *v, host)
				continue
			}
			if d := s.DependsOn[host]; d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: %s points at %s, but depends_on %s is %q, want service_healthy", name, env, host, host, d.Condition)
			}
			if target.HealthCheck == nil || len(target.HealthCheck.Test) == 0 {
				t.Errorf("%s: depends on %s, which has no healthcheck", name, host)
			}
			want, ok := storePorts[host]
			if svc, isService := all[host]; isService {
				want, ok = documentedPort(t, svc), true
			}
			if ok && u.Port() != want {
				t.Errorf("%s: %s=%s: %s listens on port %s", name, env, *v, host, want)
			}
		}
	}
}

// TestComposeEnvironmentIsEveryFlag: each service's environment sets exactly
// the variables of its flags (as documented in main.go, and as its binary's
// -help lists them: both must agree) plus the non-flag ones it reads.
func TestComposeEnvironmentIsEveryFlag(t *testing.T) {
	p := loadCompose(t, "scale")
	for _, svc := range services {
		doc, code := documentedFlags(t, svc), codeFlags(t, svc)
		if missing := diff(keys(code), keys(doc)); len(missing) > 0 {
			t.Errorf("services/%s/main.go: package comment does not document %v (the binary reads them)", svc, missing)
		}
		if stale := diff(keys(doc), keys(code)); len(stale) > 0 {
			t.Errorf("services/%s/main.go: package comment documents %v, which the binary does not read", svc, stale)
		}
		for env, f := range doc {
			if c, ok := code[env]; ok && c.Name != f.Name {
				t.Errorf("services/%s/main.go: documents -%s (%s), the binary has -%s (%s)", svc, f.Name, env, c.Name, env)
			}
		}
		if missing := diff(required[svc], keys(doc)); len(missing) > 0 {
			t.Errorf("this test's table requires %s to set %v, which services/%s/main.go does not document", svc, missing, svc)
		}
	}
	for name, svc := range composeServices(t, p) {
		env := p.Services[name].Environment
		want := sortedCopy(append(keys(documentedFlags(t, svc)), extraEnv[svc]...))
		if missing := diff(want, keys(env)); len(missing) > 0 {
			t.Errorf("%s: environment does not set %v", name, missing)
		}
		if unknown := diff(keys(env), want); len(unknown) > 0 {
			t.Errorf("%s: environment sets %v, which %s does not read", name, unknown, svc)
		}
		for _, k := range required[svc] {
			if v := env[k]; v == nil || *v == "" {
				t.Errorf("%s: %s must be set to a non-empty value", name, k)
			}
		}
		port := documentedPort(t, svc)
		if v := env["HTTP_ADDR"]; v == nil || *v != "0.0.0.0:"+port {
			t.Errorf("%s: HTTP_ADDR=%v, want 0.0.0.0:%s (all interfaces, the service's standard port)", name, deref(v), port)
		}
	}
}

var composeDefaultRE = regexp.MustCompile(`(?m)^\s+([A-Z][A-Z0-9_]*): \$\{([A-Z][A-Z0-9_]*):-([^}]*)\}\s*$`)

// TestComposeDefaultsAreTheBinaries: a setting written as NAME: ${NAME:-v}
// (overridable from the shell) defaults to the binary's own default, so the
// containers behave as `make up` does unless told otherwise. An empty v means
// "unset": the binary's default applies.
func TestComposeDefaultsAreTheBinaries(t *testing.T) {
	text := readFile(t, composeFile)
	seen := 0
	for _, m := range composeDefaultRE.FindAllStringSubmatch(text, -1) {
		name, v := m[1], m[3]
		if m[1] != m[2] || v == "" {
			continue
		}
		for _, svc := range services {
			f, ok := codeFlags(t, svc)[name]
			if !ok {
				continue
			}
			seen++
			if !sameValue(v, f.Default) {
				t.Errorf("%s: %s defaults to %q in %s, the binary's default is %q", svc, name, v, composeFile, f.Default)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no ${NAME:-default} settings found: the pattern no longer matches the file")
	}
}

// sameValue compares a compose default with a flag default: durations by
// value ("5m" is "5m0s"), false and 0 with the flag package's omitted zero.
func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	if b == "" && (a == "false" || a == "0") {
		return true
	}
	da, errA := time.ParseDuration(a)
	db, errB := time.ParseDuration(b)
	return errA == nil && errB == nil && da == db
}

func TestComposeBuildsEachServiceFromTheDockerfile(t *testing.T) {
	p := loadCompose(t, "scale")
	r := root(t)
	for name, svc := range composeServices(t, p) {
		s := p.Services[name]
		b := s.Build
		if b == nil {
			t.Errorf("%s: no build section", name)
			continue
		}
		if filepath.Clean(b.Context) != r {
			t.Errorf("%s: build context %s, want the repository root %s", name, b.Context, r)
		}
		if b.Dockerfile != dockerfile {
			t.Errorf("%s: dockerfile %q, want %q", name, b.Dockerfile, dockerfile)
		}
		port := documentedPort(t, svc)
		if v := b.Args["SERVICE"]; v == nil || *v != svc {
			t.Errorf("%s: build arg SERVICE=%s, want %s", name, deref(v), svc)
		}
		if v := b.Args["PORT"]; v == nil || *v != port {
			t.Errorf("%s: build arg PORT=%s, want %s", name, deref(v), port)
		}
		if want := "spendledger/" + svc; !strings.HasPrefix(s.Image, want+":") {
			t.Errorf("%s: image %q, want %s:<tag>", name, s.Image, want)
		}
		// Ports: the gateway's on a fixed host port; every other one (and
		// every replica) on an ephemeral one, so --scale can run several.
		for _, pc := range s.Ports {
			if pc.Target != uint32(atoi(t, port)) {
				t.Errorf("%s: publishes container port %d, the service listens on %s", name, pc.Target, port)
			}
			if fixed := pc.Published != ""; fixed != (name == "gateway") {
				t.Errorf("%s: published host port %q (only the first gateway has a fixed one)", name, pc.Published)
			}
		}
		// stop_grace_period leaves SHUTDOWN_GRACE to finish in-flight work
		// (the gateway then also waits up to 20s for event acks, main.go).
		grace := envDuration(t, s, "SHUTDOWN_GRACE")
		if svc == "gateway" {
			grace += 20 * time.Second
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= grace {
			t.Errorf("%s: stop_grace_period %v must exceed %v, or docker kills it mid-shutdown", name, s.StopGracePeriod, grace)
		}
	}
}

// TestComposeGatewayConfigAndSpool: the config is mounted read-only from the
// demo config, and each gateway's spool (a single-writer directory) is on a
// volume of its own: the named gateway-spool for the first gateway, an
// anonymous one per replica.
func TestComposeGatewayConfigAndSpool(t *testing.T) {
	p := loadCompose(t, "scale")
	demo := filepath.Join(root(t), "deploy", "local", "demo.yaml")
	if _, err := os.Stat(demo); err != nil {
		t.Error(err)
	}
	wantSpool := map[string]string{"gateway": "gateway-spool", "gateway-replica": ""}
	for name, wantSource := range wantSpool {
		s := p.Services[name]
		cfg, spool := deref(s.Environment["GATEWAY_CONFIG"]), deref(s.Environment["SPOOL_DIR"])
		var cfgMounted, spoolMounted bool
		for _, v := range s.Volumes {
			switch v.Target {
			case cfg:
				cfgMounted = true
				if v.Type != types.VolumeTypeBind || v.Source != demo || !v.ReadOnly {
					t.Errorf("%s: %s mounted from %s %s (read-only %v), want a read-only bind of %s", name, cfg, v.Type, v.Source, v.ReadOnly, demo)
				}
			case spool:
				spoolMounted = true
				if v.Type != types.VolumeTypeVolume || v.Source != wantSource {
					t.Errorf("%s: spool %s on %s volume %q, want volume %q", name, spool, v.Type, v.Source, wantSource)
				}
			}
		}
		if !cfgMounted {
			t.Errorf("%s: GATEWAY_CONFIG %s is not mounted", name, cfg)
		}
		if !spoolMounted {
			t.Errorf("%s: SPOOL_DIR %s is not on a volume (spooled events would die with the container)", name, spool)
		}
	}
	if _, ok := p.Volumes["gateway-spool"]; !ok {
		t.Error("volume gateway-spool is not declared")
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Source == "gateway-spool" && name != "gateway" {
				t.Errorf("%s mounts the gateway's spool volume: two writers would corrupt it", name)
			}
		}
	}
}

// TestComposeStores: versions and settings the services rely on.
func TestComposeStores(t *testing.T) {
	p := loadCompose(t)

	nats := p.Services["nats"]
	pin := regexp.MustCompile(`(?m)^NATS_SERVER_VERSION\s*:=\s*v(\S+)`).FindStringSubmatch(readFile(t, "Makefile"))
	if pin == nil {
		t.Fatal("Makefile: NATS_SERVER_VERSION not found")
	}
	if name, tag := splitImage(nats.Image); name != "nats" || !strings.HasPrefix(tag, pin[1]) {
		t.Errorf("nats: image %s, want nats:%s (the Makefile's NATS_SERVER_VERSION)", nats.Image, pin[1])
	}
	cmd := strings.Join(nats.Command, " ")
	if !strings.Contains(" "+cmd+" ", " -js ") {
		t.Errorf("nats: command %q does not enable JetStream (-js)", cmd)
	}
	if m := regexp.MustCompile(`-sd (\S+)`).FindStringSubmatch(cmd); m == nil || !hasVolumeAt(nats, m[1]) {
		t.Errorf("nats: JetStream store directory (-sd) is not on a volume: %q", cmd)
	}

	pg := p.Services["postgres"]
	if name, tag := splitImage(pg.Image); name != "postgres" || !strings.HasPrefix(tag, "15") {
		t.Errorf("postgres: image %s, want postgres:15", pg.Image)
	}
	if !hasVolumeAt(pg, "/var/lib/postgresql/data") {
		t.Error("postgres: data directory is not on a volume")
	}
	if hc := strings.Join(pg.HealthCheck.Test, " "); !strings.Contains(hc, "pg_isready") {
		t.Errorf("postgres: healthcheck %q does not use pg_isready", hc)
	}
	for _, svc := range []string{"ledger", "budget"} {
		u, err := url.Parse(*p.Services[svc].Environment["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		pw, _ := u.User.Password()
		if u.User.Username() != *pg.Environment["POSTGRES_USER"] || pw != *pg.Environment["POSTGRES_PASSWORD"] ||
			strings.TrimPrefix(u.Path, "/") != *pg.Environment["POSTGRES_DB"] {
			t.Errorf("%s: DATABASE_URL %s does not match the postgres service's user, password and database", svc, u.Redacted())
		}
	}

	redis := p.Services["redis"]
	if name, tag := splitImage(redis.Image); name != "redis" || !strings.HasPrefix(tag, "7") {
		t.Errorf("redis: image %s, want redis:7 (ledger/redisstore needs 7.0 or later)", redis.Image)
	}
	cmd = strings.Join(redis.Command, " ")
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis: command %q lacks %q (ADR 2: counters and their companions must never be evicted)", cmd, want)
		}
	}
	if !hasVolumeAt(redis, "/data") {
		t.Error("redis: /data is not on a volume")
	}
	if hc := strings.Join(redis.HealthCheck.Test, " "); !strings.Contains(hc, "redis-cli ping") {
		t.Errorf("redis: healthcheck %q does not ping", hc)
	}
}

func hasVolumeAt(s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Target == target && v.Type == types.VolumeTypeVolume {
			return true
		}
	}
	return false
}

// splitImage splits name[:tag][@digest] into name and tag (or digest).
func splitImage(ref string) (name, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

func envDuration(t *testing.T, s types.ServiceConfig, k string) time.Duration {
	t.Helper()
	v := s.Environment[k]
	if v == nil {
		t.Fatalf("%s: %s not set", s.Name, k)
	}
	d, err := time.ParseDuration(*v)
	if err != nil {
		t.Fatalf("%s: %s: %v", s.Name, k, err)
	}
	return d
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func deref(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
