// Package store is the budget service's Postgres access: principals (teams,
// users, orgs, end users, tags), virtual keys and budgets, and the change
// notifications that keep every instance's cache honest.
//
// The Store interface is what the API and the cache depend on; PG implements
// it on a pgx pool and memstore implements it in memory for unit tests. Both
// keep the invariants listed in README.md; the Postgres schema
// (migrations/budget) enforces the referential ones with foreign keys, so they
// hold whatever code writes the tables.
//
// Every write runs in one transaction that ends with
//
//	NOTIFY spendledger_budget_changed, '<change>'
//
// for each thing it changed (see Change). Postgres delivers notifications only
// when the transaction commits, so a listener never hears of a change it
// cannot yet read, and never hears of one that rolled back.
package store
