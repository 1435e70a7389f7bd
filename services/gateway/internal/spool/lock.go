package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the lock file in a spool directory. It holds no data; only its
// advisory lock matters, so it is never removed (removing it would let a
// second process lock a new file while the first still holds the old one).
const lockName = ".lock"

// ErrLocked is returned by Open when another open Spool — another gateway
// process, or this one — holds the directory.
var ErrLocked = errors.New("spool: directory is in use by another gateway process")

// lockDir takes an exclusive, non-blocking flock(2) on dir's lock file. A
// spool is single-writer: two gateways draining one directory would publish
// its records twice and delete segments under each other. The kernel drops
// the lock when the process exits, even on SIGKILL, so a crash never leaves
// a stale lock behind.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked (%s); give each gateway its own -spool-dir", ErrLocked, dir, path)
		}
		return nil, fmt.Errorf("spool: lock %s: %w", path, err)
	}
	return f, nil
}

// unlockDir releases the lock taken by lockDir (closing the file drops it).
func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spool: release lock: %w", err)
	}
	return nil
}
