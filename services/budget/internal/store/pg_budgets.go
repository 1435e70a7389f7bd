package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

const budgetColumns = `budget_id, scope_kind, scope_id, model_group, limit_nanos, duration,
	calendar_aligned, anchor, soft_thresholds, created_at, updated_at`

func scanBudget(row pgx.Row) (Budget, error) {
	var b Budget
	var kind, dur string
	var limit int64
	if err := row.Scan(&b.ID, &kind, &b.Scope.ID, &b.Scope.ModelGroup, &limit, &dur,
		&b.Calendar, &b.Anchor, &b.SoftThresholds, &b.CreatedAt, &b.UpdatedAt); err != nil {
		return Budget{}, err
	}
	k, err := scope.ParseKind(kind)
	if err != nil {
		return Budget{}, fmt.Errorf("budget %q: %w", b.ID, err)
	}
	b.Scope.Kind = k
	b.Limit = money.Nanos(limit)
	if b.Duration, err = parseStoredDuration(dur); err != nil {
		return Budget{}, fmt.Errorf("budget %q: %w", b.ID, err)
	}
	b.Anchor, b.CreatedAt, b.UpdatedAt = utc(b.Anchor), utc(b.CreatedAt), utc(b.UpdatedAt)
	return b, nil
}

// durationText is how a duration is stored: canonical text, so "24h" and "1d"
// collide on the (scope, duration) unique constraint, and "" for lifetime.
func durationText(d window.Duration) string {
	if d.IsLifetime() {
		return ""
	}
	return d.String()
}

func parseStoredDuration(s string) (window.Duration, error) {
	if s == "" {
		return window.Lifetime, nil
	}
	return window.Parse(s)
}

// anchorSQL is the anchor of a budget with duration $dur and alignment $cal:
// rolling windows start at the creation second, the rest ignore the anchor and
// get the epoch so the column never suggests otherwise.
func anchorSQL(dur, cal string) string {
	return `CASE WHEN ` + cal + ` OR ` + dur + ` = '' THEN 'epoch'::timestamptz ELSE date_trunc('second', now()) END`
}

// setBudget creates or replaces a budget inside w. Replacing keeps the anchor
// unless the windows change (duration or alignment), so raising a limit never
// resets the spend counted so far in the current window.
func setBudget(ctx context.Context, w *writeTx, in BudgetInput) (Budget, error) {
	if kind, id, ok := Owner(in.Scope); ok {
		if err := ensureImplicit(ctx, w, kind, id); err != nil {
			return Budget{}, err
		}
	}
	dur := durationText(in.Duration)
	cal := in.Calendar && !in.Duration.IsLifetime()
	thresholds := nonNil(in.SoftThresholds)
	if in.ID != "" {
		old, err := scanBudget(w.QueryRow(ctx, `SELECT `+budgetColumns+` FROM budgets WHERE budget_id = $1 FOR UPDATE`, in.ID))
		if err != nil {
			return Budget{}, classify(fmt.Sprintf("budget %q", in.ID), err)
		}
		if old.Scope != in.Scope {
			return Budget{}, fmt.Errorf("budget %q is on %v; a budget's scope cannot change (delete it and create another): %w",
				in.ID, old.Scope, ErrInvalid)
		}
		b, err := scanBudget(w.QueryRow(ctx, `UPDATE budgets SET limit_nanos = $2, duration = $3, calendar_aligned = $4,
			anchor = CASE WHEN duration = $3 AND calendar_aligned = $4 THEN anchor ELSE `+anchorSQL("$3", "$4")+` END,
			soft_thresholds = $5, updated_at = now()
			WHERE budget_id = $1 RETURNING `+budgetColumns,
			in.ID, int64(in.Limit), dur, cal, thresholds))
		if err != nil {
			return Budget{}, err
		}
		w.changed(ownerChanges(b.Scope)...)
		return b, nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Budget{}, fmt.Errorf("budget id: %w", err)
	}
	b, err := scanBudget(w.QueryRow(ctx, `INSERT INTO budgets
		(budget_id, scope_kind, scope_id, model_group, limit_nanos, duration, calendar_aligned, soft_thresholds, anchor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, `+anchorSQL("$6", "$7")+`)
		ON CONFLICT ON CONSTRAINT budgets_scope_duration_key DO UPDATE SET
			limit_nanos = EXCLUDED.limit_nanos,
			calendar_aligned = EXCLUDED.calendar_aligned,
			anchor = CASE WHEN budgets.calendar_aligned = EXCLUDED.calendar_aligned THEN budgets.anchor ELSE EXCLUDED.anchor END,
			soft_thresholds = EXCLUDED.soft_thresholds,
			updated_at = now()
		RETURNING `+budgetColumns,
		id.String(), in.Scope.Kind.String(), in.Scope.ID, in.Scope.ModelGroup, int64(in.Limit), dur, cal, thresholds))
	if err != nil {
		return Budget{}, err
	}
	w.changed(ownerChanges(b.Scope)...)
	return b, nil
}

// SetBudget implements Store.
func (s *PG) SetBudget(ctx context.Context, in BudgetInput) (Budget, error) {
	var b Budget
	err := s.write(ctx, fmt.Sprintf("set budget on %v", in.Scope), func(w *writeTx) error {
		var err error
		b, err = setBudget(ctx, w, in)
		return err
	})
	return b, err
}

// DeleteBudget implements Store.
func (s *PG) DeleteBudget(ctx context.Context, id string) error {
	return s.write(ctx, fmt.Sprintf("delete budget %q", id), func(w *writeTx) error {
		b, err := scanBudget(w.QueryRow(ctx, `DELETE FROM budgets WHERE budget_id = $1 RETURNING `+budgetColumns, id))
		if err != nil {
			return err
		}
		w.changed(ownerChanges(b.Scope)...)
		return nil
	})
}

// ListBudgets implements Store.
func (s *PG) ListBudgets(ctx context.Context, f BudgetFilter, p Page) ([]Budget, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Kind != 0 {
		where = append(where, "scope_kind = "+arg(f.Kind.String()), "scope_id = "+arg(f.ID))
		if f.ModelGroup != "" {
			where = append(where, "model_group = "+arg(f.ModelGroup))
		}
	}
	if len(p.After) > 0 {
		where = append(where, "budget_id > "+arg(p.After[0]))
	}
	q := `SELECT ` + budgetColumns + ` FROM budgets` + whereClause(where) + ` ORDER BY budget_id LIMIT ` + arg(p.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, classify("list budgets", err)
	}
	bs, err := collect(rows, scanBudget)
	return read("list budgets", bs, err)
}

// BudgetsFor implements Store: one indexed query however many scopes.
func (s *PG) BudgetsFor(ctx context.Context, scopes []scope.Scope) ([]Budget, error) {
	scopes = dedupe(scopes)
	if len(scopes) == 0 {
		return nil, nil
	}
	kinds, ids, models := make([]string, len(scopes)), make([]string, len(scopes)), make([]string, len(scopes))
	for i, sc := range scopes {
		kinds[i], ids[i], models[i] = sc.Kind.String(), sc.ID, sc.ModelGroup
	}
	rows, err := s.pool.Query(ctx, `SELECT `+prefixed("b.", budgetColumns)+`
		FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS s(kind, id, model_group, ord)
		JOIN budgets b ON b.scope_kind = s.kind AND b.scope_id = s.id AND b.model_group = s.model_group
		ORDER BY s.ord, b.budget_id`, kinds, ids, models)
	if err != nil {
		return nil, classify("budgets for scopes", err)
	}
	bs, err := collect(rows, scanBudget)
	return read("budgets for scopes", bs, err)
}

// BudgetsOwnedBy implements Store.
func (s *PG) BudgetsOwnedBy(ctx context.Context, owners []scope.Scope) ([]Budget, error) {
	if len(owners) == 0 {
		return nil, nil
	}
	pairs := make([]scope.Scope, len(owners))
	for i, o := range owners {
		pairs[i] = scope.Scope{Kind: o.Kind, ID: o.ID} // every model group matches
	}
	pairs = dedupe(pairs)
	kinds, ids := make([]string, len(pairs)), make([]string, len(pairs))
	for i, o := range pairs {
		kinds[i], ids[i] = o.Kind.String(), o.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+prefixed("b.", budgetColumns)+`
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(kind, id, ord)
		JOIN budgets b ON b.scope_kind = s.kind AND b.scope_id = s.id
		ORDER BY s.ord, b.model_group, b.budget_id`, kinds, ids)
	if err != nil {
		return nil, classify("budgets owned by", err)
	}
	bs, err := collect(rows, scanBudget)
	return read("budgets owned by", bs, err)
}

// dedupe returns scopes without repeats, first occurrence kept, so a query
// never returns one budget twice.
func dedupe(scopes []scope.Scope) []scope.Scope {
	seen := make(map[scope.Scope]struct{}, len(scopes))
	out := make([]scope.Scope, 0, len(scopes))
	for _, s := range scopes {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}

// prefixed qualifies every column of a column list with p (e.g. "b.").
func prefixed(p, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
