package deploy

import (
	"context"
	"errors"
	"go/format"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProbe builds deploy/probe and runs it against a /readyz that is ready,
// then not, as a container health check would.
func TestProbe(t *testing.T) {
	dir := filepath.Join(root(t), "deploy", "probe")
	bin := filepath.Join(t.TempDir(), "probe")
	// Its own module, outside go.work, as the Dockerfile builds it (the
	// Dockerfile's flags only strip the binary; left out here so the build
	// shares the cache of every other test build).
	env := []string{"GOWORK=off"}
	if out, err := goCmd(dir, env, "build", "-o", bin, "."); err != nil {
		t.Fatalf("go build deploy/probe: %v\n%s", err, out)
	}
	// make lint covers the workspace modules only; this one is checked here.
	if out, err := goCmd(dir, env, "vet", "."); err != nil {
		t.Errorf("go vet deploy/probe: %v\n%s", err, out)
	}
	src, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if formatted, err := format.Source(src); err != nil || string(formatted) != string(src) {
		t.Errorf("deploy/probe/main.go is not gofmt-clean (%v)", err)
	}

	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"not ready","failed":{"redis":"redis: connection refused"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	run := func(env []string, args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &exit):
			return exit.ExitCode(), string(out)
		}
		t.Fatalf("probe %v: %v", args, err)
		return -1, ""
	}

	if code, out := run([]string{}, srv.URL+"/readyz"); code != 0 {
		t.Errorf("ready: exit %d, want 0: %s", code, out)
	}
	// As in the image: no argument, the port from HTTP_ADDR.
	if code, out := run([]string{"HTTP_ADDR=0.0.0.0:" + port}); code != 0 {
		t.Errorf("ready, URL from HTTP_ADDR: exit %d, want 0: %s", code, out)
	}
	ready = false
	code, out := run([]string{"HTTP_ADDR=:" + port})
	if code != 1 || !strings.Contains(out, "503") || !strings.Contains(out, "redis") {
		t.Errorf("not ready: exit %d, want 1 with the status and the failed check: %s", code, out)
	}
	if code, out := run([]string{}, "-timeout", "2s", "http://127.0.0.1:1/readyz"); code != 1 {
		t.Errorf("nothing listening: exit %d, want 1: %s", code, out)
	}
	if code, out := run([]string{}); code != 2 {
		t.Errorf("no URL and no HTTP_ADDR: exit %d, want 2: %s", code, out)
	}
}

// TestImageBuildResolvesLikeTheWorkspace: the Dockerfile builds the services
// module alone (GOWORK=off, its go.mod and go.sum); `make up` and the e2e
// tests build it in the workspace, where other modules' requirements could
// raise a dependency's version. Both must pick the same version of every
// module the four services link, or the images would ship code the tests
// never ran.
func TestImageBuildResolvesLikeTheWorkspace(t *testing.T) {
	r := root(t)
	list := func(dir string, env []string, pkgs ...string) map[string]string {
		t.Helper()
		args := append([]string{"list", "-mod=readonly", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}"}, pkgs...)
		out, err := goCmd(dir, env, args...)
		if err != nil {
			t.Fatalf("go %s (in %s, %v): %v\n%s", strings.Join(args, " "), dir, env, err, out)
		}
		mods := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			path, version, _ := strings.Cut(line, " ")
			if path != "" && !strings.HasPrefix(path, "github.com/spendledger/spendledger/") {
				mods[path] = version
			}
		}
		return mods
	}
	var inServices, inRoot []string
	for _, s := range services {
		inServices = append(inServices, "./"+s)
		inRoot = append(inRoot, "./services/"+s)
	}
	image := list(filepath.Join(r, "services"), []string{"GOWORK=off", "CGO_ENABLED=0"}, inServices...)
	workspace := list(r, []string{"CGO_ENABLED=0"}, inRoot...)
	for _, path := range keys(workspace) {
		if image[path] != workspace[path] {
			t.Errorf("%s: %q in the image build (services/go.mod), %q in the workspace: align services/go.mod (go get %s@%s in services/)",
				path, image[path], workspace[path], path, workspace[path])
		}
	}
	if len(image) != len(workspace) {
		t.Errorf("the image build links %d modules, the workspace build %d", len(image), len(workspace))
	}
}
