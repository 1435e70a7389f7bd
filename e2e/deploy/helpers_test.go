// Package deploy checks the container deployment without a Docker engine:
// deploy/docker-compose.yml (loaded and validated by compose-go, the loader
// Docker Compose itself uses), deploy/docker/service.Dockerfile and
// /.dockerignore (parsed as text), the health prober deploy/probe (built and
// run), and docs/operations.md, against what the services actually read: the
// flags of each binary's -help and the package comment of each main.go.
package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
)

// services are the four mains under services/.
var services = []string{"gateway", "pricing", "ledger", "budget"}

// stores are the compose services of the three stores.
var stores = []string{"nats", "postgres", "redis"}

// root is the repository root: the directory holding go.work.
func root(t testing.TB) string {
	t.Helper()
	dir, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// flagInfo is one flag of a service: its name, environment variable and
// default (for a documented flag: the rest of its line in the comment).
type flagInfo struct {
	Name, Env, Default string
}

var docFlagRE = regexp.MustCompile(`^//\s+-([a-z0-9-]+) \(([A-Z0-9_]+)\)(.*)$`)

// documentedFlags are the "-flag (ENV)" pairs of the package comment of
// services/<svc>/main.go, by environment variable, with the rest of the line.
func documentedFlags(t testing.TB, svc string) map[string]flagInfo {
	t.Helper()
	src := readFile(t, filepath.Join("services", svc, "main.go"))
	out := map[string]flagInfo{}
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, "package ") {
			break
		}
		if m := docFlagRE.FindStringSubmatch(line); m != nil {
			out[m[2]] = flagInfo{Name: m[1], Env: m[2], Default: strings.TrimSpace(m[3])}
		}
	}
	if len(out) == 0 {
		t.Fatalf("services/%s/main.go: no '-flag (ENV)' lines in the package comment", svc)
	}
	return out
}

// documentedPort is the port of the default -http-addr in the package comment.
func documentedPort(t testing.TB, svc string) string {
	t.Helper()
	f, ok := documentedFlags(t, svc)["HTTP_ADDR"]
	if !ok {
		t.Fatalf("services/%s/main.go documents no -http-addr (HTTP_ADDR)", svc)
	}
	m := regexp.MustCompile(`default 127\.0\.0\.1:(\d+)`).FindStringSubmatch(f.Default)
	if m == nil {
		t.Fatalf("services/%s/main.go: -http-addr documents no default 127.0.0.1:PORT: %q", svc, f.Default)
	}
	return m[1]
}

var binaries struct {
	once sync.Once
	dir  string
	err  error
}

// binaryDir builds the four services once, as the e2e harness does (same
// command, so the build cache is shared), and returns their directory.
func binaryDir(t testing.TB) string {
	t.Helper()
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "spendledger-deploy-test-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		args := []string{"build", "-o", dir + string(filepath.Separator)}
		for _, s := range services {
			args = append(args, "./services/"+s)
		}
		out, err := goCmd(root(t), nil, args...)
		if err != nil {
			binaries.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.dir
}

var helpFlagRE = regexp.MustCompile(`^\s+-([a-z0-9-]+)`)
var helpEnvRE = regexp.MustCompile(`\(env ([A-Z0-9_]+)\)(?: \(default (.*)\))?\s*$`)

// codeFlags are the flags the service binary defines, from its -help output,
// by environment variable. A default the flag package leaves out (the zero
// value) is "".
func codeFlags(t testing.TB, svc string) map[string]flagInfo {
	t.Helper()
	if f, ok := helpCache.Load(svc); ok {
		return f.(map[string]flagInfo)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binaryDir(t), svc), "-help")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no variable may leak into the defaults
	out, _ := cmd.CombinedOutput()                  // -help exits non-zero
	flags := map[string]flagInfo{}
	var name, usage string
	flush := func() {
		if name == "" {
			return
		}
		m := helpEnvRE.FindStringSubmatch(usage)
		if m == nil {
			t.Errorf("%s -help: flag -%s names no environment variable: %q", svc, name, usage)
		} else {
			flags[m[1]] = flagInfo{Name: name, Env: m[1], Default: strings.Trim(m[2], `"`)}
		}
		name, usage = "", ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			flush()
			name = helpFlagRE.FindStringSubmatch(line)[1]
		case name != "" && strings.HasPrefix(line, "    "):
			usage += " " + strings.TrimSpace(line)
		default: // "Usage of ...", the error line after the flags
			flush()
		}
	}
	flush()
	if len(flags) == 0 {
		t.Fatalf("%s -help printed no flags:\n%s", svc, out)
	}
	helpCache.Store(svc, flags)
	return flags
}

var helpCache sync.Map // service -> map[string]flagInfo

// goCmd runs the go command in dir with extra environment variables.
func goCmd(dir string, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.Bytes(), err
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// diff returns the elements of a not in b.
func diff(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// TestMain removes the binaries built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}
