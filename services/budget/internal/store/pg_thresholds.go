package store

import "context"

// BudgetsWithThresholds returns every budget that has soft thresholds, in
// budget_id order, for the threshold watcher (internal/thresholds). It reads
// Postgres, not the cache: the watcher runs every few seconds in the
// background, off the request path.
func (s *PG) BudgetsWithThresholds(ctx context.Context) ([]Budget, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+budgetColumns+` FROM budgets
		WHERE cardinality(soft_thresholds) > 0 ORDER BY budget_id`)
	if err != nil {
		return nil, classify("budgets with soft thresholds", err)
	}
	bs, err := collect(rows, scanBudget)
	return read("budgets with soft thresholds", bs, err)
}
