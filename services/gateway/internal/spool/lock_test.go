package spool

import (
	"errors"
	"strings"
	"testing"
)

// A second Spool on a directory that is open fails with ErrLocked naming the
// directory, and opens once the first is closed.
func TestSecondOpenOfADirectoryFailsUntilTheFirstCloses(t *testing.T) {
	dir := t.TempDir()
	first := open(t, dir)
	if err := first.Append(rec(0)); err != nil {
		t.Fatal(err)
	}

	second, err := Open(dir, quiet)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of %s: spool %v, err %v; want ErrLocked", dir, second, err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name the directory %s", err, dir)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil { // idempotent: the lock is not released twice
		t.Fatalf("second Close: %v", err)
	}
	reopened := open(t, dir)
	defer reopened.Close()
	if got := drainAll(t, reopened); !equal(got, want(0, 1)) {
		t.Fatalf("drained %v after reopening; want the record of the first spool", got)
	}
}
