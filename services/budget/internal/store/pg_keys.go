package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spendledger/spendledger/ledger/scope"
)

const keyColumns = `k.key_id, k.key_alias_hint, k.key_alias, k.team_id, k.user_id, k.org_id,
	k.models, k.tags, k.metadata, k.blocked, k.expires_at, k.created_at, k.updated_at`

// keyReturning is keyColumns for INSERT/UPDATE ... RETURNING, where the table
// cannot be aliased in PG 15.
var keyReturning = strings.ReplaceAll(keyColumns, "k.", "")

func scanKey(row pgx.Row, extra ...any) (Key, error) {
	var k Key
	var expires *time.Time
	dest := append([]any{&k.ID, &k.AliasHint, &k.Alias, &k.TeamID, &k.UserID, &k.OrgID,
		&k.Models, &k.Tags, &k.Metadata, &k.Blocked, &expires, &k.CreatedAt, &k.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Key{}, err
	}
	if expires != nil {
		k.ExpiresAt = expires.UTC()
	}
	k.CreatedAt, k.UpdatedAt = utc(k.CreatedAt), utc(k.UpdatedAt)
	return k, nil
}

// keyArgs are the mutable columns, in the order the INSERT and UPDATE below
// use them ($2..$10).
func keyArgs(k Key) []any {
	var expires *time.Time
	if !k.ExpiresAt.IsZero() {
		expires = &k.ExpiresAt
	}
	return []any{k.Alias, k.TeamID, k.UserID, k.OrgID, nonNil(k.Models), nonNil(k.Tags),
		nonNilMap(k.Metadata), k.Blocked, expires}
}

// CreateKey implements Store.
func (s *PG) CreateKey(ctx context.Context, nk NewKey, budgets []BudgetInput) (Key, []Budget, error) {
	var key Key
	var created []Budget
	err := s.write(ctx, fmt.Sprintf("create key %q", nk.ID), func(w *writeTx) error {
		if err := ensureImplicit(ctx, w, scope.KindUser, nk.UserID); err != nil {
			return err
		}
		args := append([]any{nk.ID}, keyArgs(nk.Key)...)
		args = append(args, nk.Hash, nk.AliasHint)
		k, err := scanKey(w.QueryRow(ctx, `INSERT INTO virtual_keys
			(key_id, key_alias, team_id, user_id, org_id, models, tags, metadata, blocked, expires_at, key_hash, key_alias_hint)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			RETURNING `+keyReturning, args...))
		if err != nil {
			return err
		}
		key = k
		w.changed(KeyChange(k.ID))
		for _, in := range budgets {
			b, err := setBudget(ctx, w, in)
			if err != nil {
				return err
			}
			created = append(created, b)
		}
		return nil
	})
	if err != nil {
		return Key{}, nil, err
	}
	return key, created, nil
}

// GetKey implements Store.
func (s *PG) GetKey(ctx context.Context, id string) (Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM virtual_keys k WHERE k.key_id = $1`, id))
	return read(fmt.Sprintf("key %q", id), k, err)
}

// authKeyQuery joins the principals whose blocked flag blocks the key.
const authKeyQuery = `SELECT ` + keyColumns + `, k.key_hash,
	COALESCE(t.blocked, false), COALESCE(u.blocked, false), COALESCE(o.blocked, false)
	FROM virtual_keys k
	LEFT JOIN principals t ON t.kind = 'team' AND t.id = k.team_ref
	LEFT JOIN principals u ON u.kind = 'user' AND u.id = k.user_ref
	LEFT JOIN principals o ON o.kind = 'org' AND o.id = k.org_ref
	WHERE `

func scanAuthKey(row pgx.Row) (AuthKey, error) {
	var a AuthKey
	k, err := scanKey(row, &a.Hash, &a.TeamBlocked, &a.UserBlocked, &a.OrgBlocked)
	a.Key = k
	return a, err
}

// KeyByHash implements Store.
func (s *PG) KeyByHash(ctx context.Context, hash string) (AuthKey, error) {
	a, err := scanAuthKey(s.pool.QueryRow(ctx, authKeyQuery+`k.key_hash = $1`, hash))
	// The hash is not secret, but neither is it useful in an error message.
	return read("key by hash", a, err)
}

// KeyByID implements Store.
func (s *PG) KeyByID(ctx context.Context, id string) (AuthKey, error) {
	a, err := scanAuthKey(s.pool.QueryRow(ctx, authKeyQuery+`k.key_id = $1`, id))
	return read(fmt.Sprintf("key %q", id), a, err)
}

// UpdateKey implements Store.
func (s *PG) UpdateKey(ctx context.Context, id string, update func(*Key) error) (Key, error) {
	var key Key
	err := s.write(ctx, fmt.Sprintf("update key %q", id), func(w *writeTx) error {
		k, err := scanKey(w.QueryRow(ctx, `SELECT `+keyColumns+` FROM virtual_keys k WHERE k.key_id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		oldUser := k.UserID
		if err := update(&k); err != nil {
			return err
		}
		if k.UserID != oldUser {
			if err := ensureImplicit(ctx, w, scope.KindUser, k.UserID); err != nil {
				return err
			}
		}
		args := append([]any{id}, keyArgs(k)...)
		key, err = scanKey(w.QueryRow(ctx, `UPDATE virtual_keys SET
			key_alias = $2, team_id = $3, user_id = $4, org_id = $5, models = $6, tags = $7,
			metadata = $8, blocked = $9, expires_at = $10, updated_at = now()
			WHERE key_id = $1 RETURNING `+keyReturning, args...))
		w.changed(KeyChange(id))
		return err
	})
	return key, err
}

// DeleteKey implements Store. The key's budgets go with it (ON DELETE CASCADE).
func (s *PG) DeleteKey(ctx context.Context, id string) error {
	what := fmt.Sprintf("delete key %q", id)
	return s.write(ctx, what, func(w *writeTx) error {
		tag, err := w.Exec(ctx, `DELETE FROM virtual_keys WHERE key_id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		w.changed(KeyChange(id))
		return nil
	})
}

// ListKeys implements Store.
func (s *PG) ListKeys(ctx context.Context, f KeyFilter, p Page) ([]Key, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.TeamID != "" {
		where = append(where, "k.team_ref = "+arg(f.TeamID))
	}
	if f.UserID != "" {
		where = append(where, "k.user_ref = "+arg(f.UserID))
	}
	if len(p.After) > 0 {
		where = append(where, "k.key_id > "+arg(p.After[0]))
	}
	q := `SELECT ` + keyColumns + ` FROM virtual_keys k` + whereClause(where) +
		` ORDER BY k.key_id LIMIT ` + arg(p.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, classify("list keys", err)
	}
	keys, err := collect(rows, func(r pgx.Row) (Key, error) { return scanKey(r) })
	return read("list keys", keys, err)
}

// ensureImplicit creates the principal (kind, id) if kind is created on first
// reference and it does not exist yet. Other kinds must exist already; their
// foreign keys say so.
func ensureImplicit(ctx context.Context, q querier, kind scope.Kind, id string) error {
	if id == "" || !ImplicitKind(kind) {
		return nil
	}
	_, err := q.Exec(ctx, `INSERT INTO principals (kind, id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, kind.String(), id)
	return err
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// nonNilMap keeps a nil map from being written as JSON null.
func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
