// Package migrations holds the project's schema as plain SQL files and the small
// runner that applies them.
//
// Each service owns one Set (the ledger service owns the entries table, the
// budget service owns keys and budgets) and applies it at start. Files are named
// NNNN_description.sql and applied in order, each in its own transaction together
// with the row that records it, so a crash never leaves a file half applied or
// applied but unrecorded. A Postgres advisory lock serializes concurrent starts,
// which makes Apply safe to run any number of times from any number of instances.
//
// An applied file must never change: Apply compares checksums and refuses to run
// against a database whose recorded history differs from the files. Schema
// changes are new files.
//
// Why not a migration library: the whole need is "apply ordered SQL files once,
// under a lock"; this runner does that in one screen of code on the pgx
// connection the services already hold, with no second driver, no CLI, and no
// down-migrations to keep honest (the ledger is append-only, so is its schema).
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed ledger/*.sql budget/*.sql
var files embed.FS

// Set is a group of migrations owned by one service.
type Set string

const (
	Ledger Set = "ledger"
	Budget Set = "budget"
)

// lockID is an arbitrary constant shared by every runner, so two services
// migrating the same database never interleave.
const lockID int64 = 0x5e11d9e7

// Migration is one SQL file of a Set.
type Migration struct {
	Version  string // the file name, e.g. "0001_entries.sql"
	SQL      string
	Checksum string // hex SHA-256 of SQL
}

// Load returns the migrations of a set in the order they apply.
func Load(set Set) ([]Migration, error) {
	entries, err := fs.ReadDir(files, string(set))
	if err != nil {
		return nil, fmt.Errorf("migrations: unknown set %q: %w", set, err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		b, err := files.ReadFile(path.Join(string(set), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s/%s: %w", set, e.Name(), err)
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: e.Name(), SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Apply brings the database up to date with set and returns the versions it
// applied now (empty when it was already current).
func Apply(ctx context.Context, pool *pgxpool.Pool, set Set) ([]string, error) {
	want, err := Load(set)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: acquire connection: %w", err)
	}
	defer conn.Release()

	// A session lock, not a transaction lock: it must span several transactions.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockID); err != nil {
		return nil, fmt.Errorf("migrations: take lock: %w", err)
	}
	defer func() {
		// Unlock on a fresh context: the caller's may be cancelled, and a held
		// session lock would block every other instance until this conn closes.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockID)
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		set_name   text        NOT NULL,
		version    text        NOT NULL,
		checksum   text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (set_name, version))`); err != nil {
		return nil, fmt.Errorf("migrations: create schema_migrations: %w", err)
	}

	done, err := appliedChecksums(ctx, conn.Conn(), set)
	if err != nil {
		return nil, err
	}
	if err := checkHistory(set, want, done); err != nil {
		return nil, err
	}

	var applied []string
	for _, m := range want {
		if _, ok := done[m.Version]; ok {
			continue
		}
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx,
				"INSERT INTO schema_migrations (set_name, version, checksum) VALUES ($1, $2, $3)",
				string(set), m.Version, m.Checksum)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrations: apply %s/%s: %w", set, m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

func appliedChecksums(ctx context.Context, conn *pgx.Conn, set Set) (map[string]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, checksum FROM schema_migrations WHERE set_name = $1", string(set))
	if err != nil {
		return nil, fmt.Errorf("migrations: read history: %w", err)
	}
	done := map[string]string{}
	for rows.Next() {
		var v, sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("migrations: read history: %w", err)
		}
		done[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrations: read history: %w", err)
	}
	return done, nil
}

// ErrHistoryMismatch means the database records a migration this binary does not
// have, or one whose file has changed since it was applied.
var ErrHistoryMismatch = errors.New("migrations: database history does not match the files")

func checkHistory(set Set, want []Migration, done map[string]string) error {
	known := make(map[string]string, len(want))
	for _, m := range want {
		known[m.Version] = m.Checksum
	}
	for v, sum := range done {
		have, ok := known[v]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s/%s is applied but unknown to this binary (is it older than the database?)", ErrHistoryMismatch, set, v)
		case have != sum:
			return fmt.Errorf("%w: %s/%s changed after it was applied; add a new migration instead", ErrHistoryMismatch, set, v)
		}
	}
	return nil
}
