// Package thresholds announces soft thresholds: when a budget's settled
// spend in a window reaches one of its soft_thresholds (a fraction of the
// limit, e.g. "0.8"), a BudgetThresholdCrossed event goes to the BUDGET
// stream and, if configured, a webhook is called — once per budget, window
// and threshold, however many budget-service instances run and restart.
//
// # How
//
// A Watcher runs in every instance. Every Interval (default 5s) it makes a
// pass:
//
//  1. Scan. It lists the budgets that have soft thresholds (Postgres), and
//     reads the settled spend ("spent", not reservations) of each one's
//     current window from the Redis counter admission and the ledger use,
//     named by scope.CounterKey — plus the previous window for LateWindow
//     after it ended, because a request admitted just before a rollover is
//     settled into the window it was admitted in, up to a reservation's
//     lifetime later. A missing counter has nothing settled to report.
//  2. Decide. Crossed compares spent ≥ threshold × limit exactly, in
//     integers (a threshold is a decimal fraction, never a float): spend
//     exactly at 0.8 × limit has crossed "0.8". A new window has a new
//     counter key, so it crosses again; a lifetime budget has one window.
//  3. Record. Each crossing is inserted into threshold_crossings with ON
//     CONFLICT DO NOTHING on the key (budget, window, threshold). That is
//     the "once": of all the instances that see it, in this pass or any
//     later one, exactly one insert lands. The window is its counter key
//     rather than its index alone, because an index only means something
//     under one duration and anchor (a budget changed from 1d to 7d counts
//     windows from 0 again). The row holds the whole event as first seen.
//  4. Publish (outbox). A row owing its event is taken by moving its due
//     time a lease ahead, in one UPDATE on a row picked with FOR UPDATE
//     SKIP LOCKED (of instances racing for it one wins, the others see it
//     not due), published with Nats-Msg-Id = "threshold:" + event id, and
//     marked published once JetStream acknowledged. No transaction is
//     open meanwhile. The event id is a name-based UUID of (budget,
//     window, threshold), so a publish repeated after a crash before the
//     mark — the row is due again when its lease ends — carries the same
//     id and JetStream drops it (within the stream's 10-minute duplicate
//     window; consumers should still treat event_id as the identity).
//  5. Webhook (optional). Rows owing a call are taken the same way (the
//     two steps have separate due times, so a receiver that hangs does not
//     hold back the event, nor NATS being down the call) and POSTed as
//     JSON (WebhookPayload: decimal-dollar and nano-USD strings, never
//     floats), with the event id as Idempotency-Key. A failure is retried
//     with exponential backoff (1s doubling to 5m) for 24h, then abandoned
//     with an error log. Delivery is at least once: a call whose success
//     could not be recorded is made again with the same key.
//
// NATS, the webhook receiver, Redis or Postgres failing only delays this
// work: rows wait in the table, the next pass retries, and nothing here is
// on the admission path. Each instance remembers the crossings it saw
// recorded on its last pass, so a crossing costs one INSERT per instance,
// not one per pass.
//
// # Why polling
//
// Settlement happens in the ledger service (projection into Redis), not in
// the budget service, so there is no settle to hook into here; a pass is a
// few indexed Postgres reads and one Redis script call per 256 budgets,
// and its cost grows with the number of budgets that have thresholds, not
// with traffic. A crossing is announced within one Interval of its spend
// being projected.
//
// What it does not do: spend that crossed a threshold while its counter
// was missing from Redis (lost, not yet reseeded) is announced once the
// counter is back; the threshold_crossings table keeps every crossing
// (there is no retention job yet).
package thresholds
