package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spendledger/spendledger/e2e/bench/figures"
	"github.com/spendledger/spendledger/e2e/harness"
)

// TestEveryCatalogFigureHasASource catches, without running a benchmark, a
// figure BENCHMARKS.md would show as "not measured": every catalog figure
// must be recorded by a load driver of this package (its name, or the
// constant naming it, passed to record), or come from a Go benchmark that
// exists in the package its spec names.
func TestEveryCatalogFigureHasASource(t *testing.T) {
	src := readGo(t, ".")
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	constants := map[string]string{
		figures.LimitRedisEvalsha: "figures.LimitRedisEvalsha", figures.LimitPostgresInsert: "figures.LimitPostgresInsert",
		figures.LimitJetStreamPublish: "figures.LimitJetStreamPublish", figures.LimitStubDirect: "figures.LimitStubDirect",
	}
	for _, s := range figures.Catalog {
		if g := s.GoBench; g != nil {
			dir := filepath.Join(root, strings.TrimPrefix(g.Pkg, "github.com/spendledger/spendledger/"))
			if !strings.Contains(readGo(t, dir), "func "+g.Bench+"(b *testing.B)") {
				t.Errorf("%s: no %s in %s", s.Name, g.Bench, dir)
			}
			continue
		}
		if !strings.Contains(src, `"`+s.Name+`"`) && (constants[s.Name] == "" || !strings.Contains(src, constants[s.Name])) {
			t.Errorf("%s: no load driver in e2e/bench records it", s.Name)
		}
	}
}

// readGo concatenates the Go test files of dir.
func readGo(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go test files in %s: %v", dir, err)
	}
	var sb strings.Builder
	for _, f := range files {
		if filepath.Base(f) == "catalog_test.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(b)
	}
	return sb.String()
}
