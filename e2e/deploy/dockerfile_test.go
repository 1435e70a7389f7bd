package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const dockerfile = "deploy/docker/service.Dockerfile"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case
	Args string
	Line int
}

// stage is one FROM and the instructions after it.
type stage struct {
	From, Name string
	Body       []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows what this
// project's Dockerfile uses: comments, backslash continuations, FROM ... AS.
func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	var (
		out  []stage
		cur  string
		line int
	)
	flush := func() {
		if strings.TrimSpace(cur) == "" {
			return
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur), " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: line}
		cur = ""
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			out = append(out, st)
			return
		}
		if len(out) == 0 {
			if in.Cmd != "ARG" {
				t.Errorf("%s:%d: %s before the first FROM", dockerfile, in.Line, in.Cmd)
			}
			return
		}
		out[len(out)-1].Body = append(out[len(out)-1].Body, in)
	}
	for i, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if cur == "" {
			line = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		flush()
	}
	flush()
	return out
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Body {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func TestDockerfileStagesArePinnedAndRunAsNonRoot(t *testing.T) {
	stages := parseDockerfile(t, readFile(t, dockerfile))
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages, want a build stage and a final one", dockerfile, len(stages))
	}
	names := map[string]bool{}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindStringSubmatch(readFile(t, "go.work"))
	for _, st := range stages {
		if names[st.From] {
			continue // FROM an earlier stage
		}
		names[st.Name] = true
		name, tag := splitImage(st.From)
		switch {
		case name == "scratch":
		case strings.HasPrefix(tag, "sha256:"):
		case tag == "" || tag == "latest":
			t.Errorf("FROM %s: not pinned (give a version tag or a digest)", st.From)
		}
		if name == "golang" && (goVersion == nil || !regexp.MustCompile(`^`+regexp.QuoteMeta(goVersion[1])+`($|-)`).MatchString(tag)) {
			t.Errorf("FROM %s: want golang:%s, the Go version of go.work", st.From, goVersion[1])
		}
	}

	final := stages[len(stages)-1]
	if name, _ := splitImage(final.From); name != "scratch" && !strings.HasPrefix(name, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s: want distroless static or scratch (static binaries, no shell)", final.From)
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("final stage sets no USER: it would run as root")
	}
	user := strings.Fields(users[len(users)-1].Args)[0]
	if uid, _, _ := strings.Cut(user, ":"); uid == "root" || uid == "0" || uid == "" {
		t.Errorf("final stage runs as %q, want a non-root user", user)
	}
	if ex := final.all("EXPOSE"); len(ex) != 1 || (ex[0].Args != "${PORT}" && ex[0].Args != "$PORT") {
		t.Errorf("final stage EXPOSE %v, want EXPOSE ${PORT}", ex)
	}
	if hc := final.all("HEALTHCHECK"); len(hc) != 1 || !strings.Contains(hc[0].Args, `CMD ["/usr/local/bin/probe"`) {
		t.Errorf("final stage HEALTHCHECK %v, want the exec form running /usr/local/bin/probe (no shell in the image)", hc)
	}
	if ep := final.all("ENTRYPOINT"); len(ep) != 1 || !strings.HasPrefix(ep[0].Args, "[") {
		t.Errorf("final stage ENTRYPOINT %v, want the exec form", ep)
	}
}

func TestDockerfileBuildsStaticStrippedBinariesWithCachedModules(t *testing.T) {
	stages := parseDockerfile(t, readFile(t, dockerfile))
	build := stages[0]
	var env string
	for _, in := range build.all("ENV") {
		env += " " + in.Args + " "
	}
	for _, want := range []string{" CGO_ENABLED=0 ", " GOWORK=off ", " GOTOOLCHAIN=local "} {
		if !strings.Contains(env, want) {
			t.Errorf("build stage ENV lacks %s", strings.TrimSpace(want))
		}
	}
	builds := 0
	for _, in := range build.all("RUN") {
		for _, part := range strings.Split(in.Args, "go build")[1:] {
			builds++
			part, _, _ = strings.Cut(part, "&&")
			if !strings.Contains(part, "-trimpath") || !strings.Contains(part, `-ldflags="-s -w"`) {
				t.Errorf("%s:%d: go build%s: want -trimpath -ldflags=\"-s -w\"", dockerfile, in.Line, part)
			}
		}
	}
	if builds != 2 {
		t.Errorf("build stage: %d go build commands, want 2 (the service and the probe)", builds)
	}

	// Layer order: every module's go.mod and go.sum, then go mod download,
	// then the sources of every module the services module replaces.
	mods := append(replacedModules(t), "services")
	download, firstSource := -1, -1
	modFiles := map[string]int{}
	for i, in := range build.Body {
		switch {
		case in.Cmd == "RUN" && strings.Contains(in.Args, "go mod download"):
			download = i
		case in.Cmd == "COPY":
			srcs, _ := copySources(in)
			for _, src := range srcs {
				if base := filepath.Base(src); base == "go.mod" || base == "go.sum" {
					modFiles[filepath.Dir(src)+"/"+base] = i
				} else if firstSource < 0 {
					firstSource = i
				}
			}
		}
	}
	for _, m := range mods {
		for _, f := range []string{m + "/go.mod", m + "/go.sum"} {
			if i, ok := modFiles[f]; !ok || i > download {
				t.Errorf("build stage: %s is not copied before go mod download", f)
			}
		}
		if !copiesDir(build, m) {
			t.Errorf("build stage: the sources of %s are not copied", m)
		}
	}
	if download < 0 || firstSource < download {
		t.Errorf("build stage: sources (instruction %d) must come after go mod download (instruction %d)", firstSource, download)
	}
	// A RUN after an ARG is cached per value of it: SERVICE comes after the
	// shared layers, or the four images download the modules four times.
	for i, in := range build.Body {
		if in.Cmd == "ARG" && strings.HasPrefix(in.Args, "SERVICE") && i < download {
			t.Errorf("%s:%d: ARG SERVICE before go mod download: the download layer would not be shared", dockerfile, in.Line)
		}
	}
	if !copiesDir(build, "deploy/probe") {
		t.Error("build stage: deploy/probe is not copied")
	}
}

// replacedModules are the workspace modules services/go.mod replaces with
// their directories, as paths from the repository root.
func replacedModules(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`=>\s*\.\./(\S+)`).FindAllStringSubmatch(readFile(t, "services/go.mod"), -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("services/go.mod replaces no sibling module")
	}
	return out
}

func copiesDir(s stage, dir string) bool {
	for _, in := range s.all("COPY") {
		srcs, _ := copySources(in)
		for _, src := range srcs {
			if strings.TrimSuffix(src, "/") == dir {
				return true
			}
		}
	}
	return false
}

// copySources are the context paths of a COPY (none for COPY --from).
func copySources(in instruction) (srcs []string, fromStage bool) {
	f := strings.Fields(in.Args)
	var args []string
	for _, a := range f {
		if strings.HasPrefix(a, "--from=") {
			return nil, true
		}
		if !strings.HasPrefix(a, "--") {
			args = append(args, a)
		}
	}
	if len(args) < 2 {
		return nil, false
	}
	return args[:len(args)-1], false
}

// TestDockerignoreKeepsWhatTheBuildNeeds: every file the Dockerfile copies
// and the build reads is in the build context after /.dockerignore; local
// state, tools, logs and packages are not.
func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	r := root(t)
	f, err := os.Open(filepath.Join(r, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(rel string) bool {
		ex, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	for _, p := range []string{".data/logs/gateway.log", ".bin/nats-server", "e2e/.logs/x.log", "node_modules/x/index.js",
		"e2e/openainpm/node_modules/openai/index.js", ".git/HEAD", "e2e/go.mod", "budget", "services/ledger/ledger.test"} {
		if !excluded(p) {
			t.Errorf(".dockerignore: %s is in the build context", p)
		}
	}

	checked := 0
	for _, st := range parseDockerfile(t, readFile(t, dockerfile)) {
		for _, in := range st.all("COPY") {
			srcs, fromStage := copySources(in)
			if fromStage {
				continue
			}
			for _, src := range srcs {
				abs := filepath.Join(r, src)
				info, err := os.Stat(abs)
				if err != nil {
					t.Errorf("%s:%d: COPY %s: %v", dockerfile, in.Line, src, err)
					continue
				}
				if !info.IsDir() {
					checked++
					if excluded(src) {
						t.Errorf("%s:%d: COPY %s, which .dockerignore leaves out", dockerfile, in.Line, src)
					}
					continue
				}
				// A directory: every file in it that git does not ignore,
				// but tests, must be in the context.
				out, err := exec.Command("git", "-C", r, "ls-files", "--cached", "--others", "--exclude-standard", "--", src).Output()
				if err != nil {
					t.Fatalf("git ls-files %s: %v", src, err)
				}
				for _, rel := range strings.Fields(string(out)) {
					if strings.HasSuffix(rel, "_test.go") || strings.Contains(rel, "/testdata/") {
						continue
					}
					if _, err := os.Stat(filepath.Join(r, rel)); err != nil {
						continue // deleted in the work tree
					}
					checked++
					if excluded(rel) {
						t.Errorf(".dockerignore leaves out %s, which the image build needs (COPY %s)", rel, src)
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d files checked: the COPY parsing no longer matches the Dockerfile", checked)
	}
}
