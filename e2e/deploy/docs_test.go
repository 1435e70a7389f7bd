package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const operationsDoc = "docs/operations.md"

// TestOperationsDocCoversEverySettingAndMetric: docs/operations.md names
// every environment variable of every service and every Prometheus metric the
// code registers, and README.md links it.
func TestOperationsDocCoversEverySettingAndMetric(t *testing.T) {
	doc := readFile(t, operationsDoc)
	for _, svc := range services {
		for _, env := range append(keys(codeFlags(t, svc)), extraEnv[svc]...) {
			if !strings.Contains(doc, "`"+env+"`") {
				t.Errorf("%s does not document %s's `%s`", operationsDoc, svc, env)
			}
		}
	}
	metrics := registeredMetrics(t)
	if len(metrics) < 10 {
		t.Fatalf("found only %d metrics in the code: the pattern no longer matches", len(metrics))
	}
	for _, m := range metrics {
		if !strings.Contains(doc, "`"+m+"`") {
			t.Errorf("%s does not name the metric `%s` (registered in %s)", operationsDoc, m, metricsSource[m])
		}
	}
	if !strings.Contains(readFile(t, "README.md"), operationsDoc) {
		t.Errorf("README.md does not link %s", operationsDoc)
	}
}

var metricRE = regexp.MustCompile(`prometheus\.(?:Counter|Gauge|Histogram|Summary)Opts\{\s*Name:\s*"([a-z][a-z0-9_]*)"`)

// metricsSource maps each metric found to the file that registers it.
var metricsSource = map[string]string{}

// registeredMetrics are the names of the Prometheus metrics defined in the
// non-test Go files of services/ and ledger/.
func registeredMetrics(t *testing.T) []string {
	t.Helper()
	r := root(t)
	for _, top := range []string{"services", "ledger"} {
		err := filepath.WalkDir(filepath.Join(r, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(r, path)
			for _, m := range metricRE.FindAllStringSubmatch(string(b), -1) {
				metricsSource[m[1]] = rel
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return keys(metricsSource)
}
