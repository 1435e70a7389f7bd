package figures

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAppendWritesLinesReadRecordReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "figures.jsonl")
	t.Setenv(RecordEnv, path)
	t.Setenv(ShortEnv, "1")
	if err := Append("ledger_lag_p99_ms", 12.5, "200 probes"); err != nil {
		t.Fatal(err)
	}
	if err := AppendFact(FactNATSVersion, "2.12.15"); err != nil {
		t.Fatal(err)
	}
	lines, err := ReadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Name != "ledger_lag_p99_ms" || lines[0].Value != 12.5 || !lines[0].Short || lines[0].At.IsZero() {
		t.Fatalf("lines = %+v", lines)
	}
	if lines[1].Fact != FactNATSVersion || lines[1].FactValue != "2.12.15" {
		t.Errorf("fact = %+v", lines[1])
	}
}

func TestAppendRejectsNamesOutsideTheCatalog(t *testing.T) {
	t.Setenv(RecordEnv, filepath.Join(t.TempDir(), "figures.jsonl"))
	if err := Append("ledger_lag_p98_ms", 1, ""); err == nil {
		t.Fatal("a figure outside the catalog was recorded")
	}
}

func TestAppendWithoutARecordFileWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(RecordEnv, "")
	if err := Append("ledger_lag_p99_ms", 1, ""); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files written: %v", ents)
	}
	if lines, err := ReadRecord(filepath.Join(dir, "none.jsonl")); err != nil || lines != nil {
		t.Errorf("a missing record file is an empty run: %v %v", lines, err)
	}
}
