package catalogfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFileEntriesExtendTheBuiltinCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(`{"my-private-model": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	builtin, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	merged, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := builtin.Entry("my-private-model"); ok {
		t.Fatal("the built-in catalog must not know the file's model")
	}
	if _, ok := merged.Entry("my-private-model"); !ok {
		t.Fatal("the file's entry is missing from the merged catalog")
	}
	if _, ok := merged.Entry("gpt-4o"); !ok || merged.Version() == builtin.Version() {
		t.Fatal("merged catalog must keep built-in entries and carry a new version")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("want an error for a missing file")
	}
}
