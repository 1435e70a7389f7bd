// Package api is the budget service's Connect handler (BudgetService).
//
// Every call validates its input before touching the store and answers with
// the Connect code that says what to do about a failure:
//
//   - InvalidArgument: malformed input; the message starts with the field, in
//     request-path form ("key.team_id: ...", "spec.limit_usd: ...",
//     "budgets[1].duration: ...", "update_fields[0]: unknown field ...").
//   - NotFound: the key, principal or budget addressed does not exist.
//   - AlreadyExists: key id, key alias, clear key or principal taken; or
//     SetBudget by budget_id moving a budget onto a duration its scope
//     already has a budget for. (SetBudget without budget_id replaces the
//     budget on the same scope and duration instead.)
//   - FailedPrecondition: a referenced team, org or key does not exist, or a
//     principal to delete is still referenced by keys (or an org by teams and
//     users).
//   - Unauthenticated: Authenticate with an unknown key hash.
//   - PermissionDenied: Authenticate with a blocked or expired key, or a key
//     whose team, user or org is blocked; Admit the same, or for a model
//     group the key may not call, or naming a blocked end user or tag (the
//     request's or its key's).
//   - Unavailable: Postgres (or, once wired, the spend reader) is down.
//   - Unimplemented: Admit and Release until an Admitter is wired.
//
// AdmitBatch answers each item with what Admit would have: a response, or the
// code and message of the error, as data (admitbatch.go). The call itself
// fails only for the batch as a whole (InvalidArgument: none, or over 256).
//
// # Decisions
//
// References: teams and orgs must exist before a key, principal or budget
// names them (as LiteLLM requires for team_id), so a typo fails loudly
// instead of creating an unbudgeted team. Users, end users and tags are
// created implicitly on first reference (LiteLLM creates the user of a new
// key; end users and tags arrive with requests).
//
// Deletion: deleting a key deletes its key and key_model budgets; deleting a
// principal deletes its budgets (an end user's end_user_model budgets too).
// A principal still referenced by keys, or an org by teams and users, cannot
// be deleted (FailedPrecondition): its keys would silently lose the team
// budget that capped them.
//
// Reads for operators (GetKey, GetPrincipal, List*) go to Postgres; only
// Authenticate (and admission) read through the cache.
//
// Limits are exact decimal dollars (money.ParseLimit); durations are
// window.Parse forms, "" for lifetime; soft thresholds are exact fractions in
// (0, 1], returned canonical and ascending.
//
// Lists page in id order (UUIDv7 ids sort by creation): page_size defaults
// to 100 and is capped at 1000; page_token is opaque and bound to the list's
// filters.
package api
