package chaos_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
)

// faults are the single faults every mode injects. A schedule runs rounds of
// its catalog, each round a fresh seeded permutation, so every fault runs once
// per round and the short mode (one round) covers them all.
var faults = []string{
	"kill gateway", "kill pricing", "kill ledger", "kill budget",
	"flush redis", "restart redis", "restart nats", "restart postgres",
	"duplicate usage", "duplicate costs",
}

// compoundFaults, long mode only, combine two. A service killed while a store
// it depends on is down: what it kept for later (the gateway's spool, the
// ledger's projection backlog, unacknowledged messages) must survive the
// kill. Redis flushed while pricing is stopped: spend admitted but not yet in
// the ledger when the counters vanish must still count against the budgets.
var compoundFaults = []string{
	"kill gateway while nats down", "kill pricing while nats down",
	"kill ledger while redis down", "kill ledger while postgres down",
	"kill budget while redis down", "flush redis while pricing down",
}

// step is one fault of a schedule as it ran.
type step struct {
	n     int
	fault string
	gap   time.Duration // quiet time before it, drawn from the seed
	at    time.Duration // when it started, since the load started
	took  time.Duration // until every service answered /readyz again
	note  string        // what it did: downtime, pids, messages republished
}

// runSchedule runs faults, one at a time, while the load runs, until the
// configured steps or duration are used up. After each fault it waits for
// every service to be ready, records the step and adds keys, so the load
// keeps finding budget.
func runSchedule(t *testing.T, st *harness.Stack, keys *keyring, cfg config, elapsed func() time.Duration, record func(step)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.seed, 0x736368656475)) // "schedu"
	inj := newInjector(t, st, cfg.seed)
	var order []int
	for i := 0; ; i++ {
		if (cfg.steps > 0 && i >= cfg.steps) || (cfg.duration > 0 && elapsed() >= cfg.duration) {
			break
		}
		if i%len(cfg.catalog) == 0 {
			order = rng.Perm(len(cfg.catalog))
		}
		s := step{n: i + 1, fault: cfg.catalog[order[i%len(cfg.catalog)]]}
		s.gap = cfg.gapMin + time.Duration(rng.Int64N(int64(cfg.gapMax-cfg.gapMin)))
		// Each fault draws its own details (downtime, messages) from a
		// generator of its own, so a replay matches step by step.
		frng := rand.New(rand.NewPCG(cfg.seed, uint64(s.n)))
		time.Sleep(s.gap)
		s.at = elapsed()
		s.note = inj.inject(s.fault, frng, s.n)
		st.WaitReady()
		s.took = elapsed() - s.at
		t.Logf("chaos: step %d at %v: %s (%s), ready after %v", s.n, s.at.Round(time.Millisecond), s.fault, s.note, s.took.Round(time.Millisecond))
		record(s)
		keys.create(t, keysPerStep, false)
	}
}
