package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spendledger/spendledger/ledger/scope"
)

const principalColumns = `kind, id, alias, org_id, metadata, blocked, created_at, updated_at`

func scanPrincipal(row pgx.Row) (Principal, error) {
	var p Principal
	var kind string
	if err := row.Scan(&kind, &p.ID, &p.Alias, &p.OrgID, &p.Metadata, &p.Blocked, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return Principal{}, err
	}
	k, err := scope.ParseKind(kind)
	if err != nil {
		return Principal{}, fmt.Errorf("principal %q: %w", p.ID, err)
	}
	p.Kind = k
	p.CreatedAt, p.UpdatedAt = utc(p.CreatedAt), utc(p.UpdatedAt)
	return p, nil
}

// CreatePrincipal implements Store.
func (s *PG) CreatePrincipal(ctx context.Context, p Principal, budgets []BudgetInput) (Principal, []Budget, error) {
	var out Principal
	var created []Budget
	err := s.write(ctx, fmt.Sprintf("create %v %q", p.Kind, p.ID), func(w *writeTx) error {
		var err error
		out, err = scanPrincipal(w.QueryRow(ctx, `INSERT INTO principals (kind, id, alias, org_id, metadata, blocked)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+principalColumns,
			p.Kind.String(), p.ID, p.Alias, p.OrgID, nonNilMap(p.Metadata), p.Blocked))
		if err != nil {
			return err
		}
		w.changed(principalChanges(p.Kind, p.ID)...)
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
		return Principal{}, nil, err
	}
	return out, created, nil
}

// GetPrincipal implements Store.
func (s *PG) GetPrincipal(ctx context.Context, kind scope.Kind, id string) (Principal, error) {
	p, err := scanPrincipal(s.pool.QueryRow(ctx, `SELECT `+principalColumns+` FROM principals WHERE kind = $1 AND id = $2`,
		kind.String(), id))
	return read(fmt.Sprintf("%v %q", kind, id), p, err)
}

// UpdatePrincipal implements Store.
func (s *PG) UpdatePrincipal(ctx context.Context, kind scope.Kind, id string, update func(*Principal) error) (Principal, error) {
	var out Principal
	err := s.write(ctx, fmt.Sprintf("update %v %q", kind, id), func(w *writeTx) error {
		p, err := scanPrincipal(w.QueryRow(ctx, `SELECT `+principalColumns+` FROM principals WHERE kind = $1 AND id = $2 FOR UPDATE`,
			kind.String(), id))
		if err != nil {
			return err
		}
		if err := update(&p); err != nil {
			return err
		}
		out, err = scanPrincipal(w.QueryRow(ctx, `UPDATE principals SET alias = $3, org_id = $4, metadata = $5, blocked = $6,
			updated_at = now() WHERE kind = $1 AND id = $2 RETURNING `+principalColumns,
			kind.String(), id, p.Alias, p.OrgID, nonNilMap(p.Metadata), p.Blocked))
		w.changed(principalChanges(kind, id)...)
		return err
	})
	return out, err
}

// DeletePrincipal implements Store. Its budgets go with it (ON DELETE CASCADE);
// keys and principals that reference it make it fail instead (the foreign keys
// have no action): deleting a team must not silently leave its keys without
// the team budget that capped them.
func (s *PG) DeletePrincipal(ctx context.Context, kind scope.Kind, id string) error {
	what := fmt.Sprintf("delete %v %q", kind, id)
	return s.write(ctx, what, func(w *writeTx) error {
		tag, err := w.Exec(ctx, `DELETE FROM principals WHERE kind = $1 AND id = $2`, kind.String(), id)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == pgForeignKeyViolation {
			by := "principals (teams or users of the org)"
			if strings.HasPrefix(pe.ConstraintName, "virtual_keys") {
				by = "keys"
			}
			return fmt.Errorf("%s: still referenced by %s; delete them or move them elsewhere first: %w",
				what, by, ErrFailedPrecondition)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		w.changed(principalChanges(kind, id)...)
		return nil
	})
}

// ListPrincipals implements Store.
func (s *PG) ListPrincipals(ctx context.Context, kind scope.Kind, p Page) ([]Principal, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if kind != 0 {
		where = append(where, "kind = "+arg(kind.String()))
	}
	if len(p.After) == 2 {
		where = append(where, "(kind, id) > ("+arg(p.After[0])+", "+arg(p.After[1])+")")
	}
	q := `SELECT ` + principalColumns + ` FROM principals` + whereClause(where) +
		` ORDER BY kind, id LIMIT ` + arg(p.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, classify("list principals", err)
	}
	ps, err := collect(rows, scanPrincipal)
	return read("list principals", ps, err)
}
