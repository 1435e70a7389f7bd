// Package chaos_test runs the whole product under load while a seeded,
// randomized schedule of faults hits it, then checks the books at quiescence.
//
// Load: concurrent clients call the gateway's /v1/chat/completions (mock
// deployments, no provider) with virtual keys that have budgets; most requests
// set max_tokens. Faults (one at a time, each waited out before the next):
// SIGKILL and restart of each service, a Redis flush, a Redis restart (which
// loses every key), NATS and Postgres restarts, and duplicate publishes of
// USAGE and COSTS messages, both with their own message id (JetStream's dedupe
// window drops them) and with a new one (only the event id can catch them).
// The long mode adds compound faults: a service SIGKILLed while a store it
// depends on is down (the gateway's spool, the ledger's projection backlog
// must survive it), and Redis flushed while pricing is stopped (spend not yet
// in the ledger when the counters vanish must still count).
//
// At quiescence it asserts, for the run as a whole:
//
//   - every request the gateway answered 200 is in the ledger exactly once: one
//     entry whose request id is the response's x-litellm-call-id, costing
//     exactly the response's x-litellm-response-cost; and no entry for a
//     request the client did not see succeed;
//   - the ledger's sum over the run's keys equals the sum of those costs, to
//     the nano-dollar;
//   - `ledger verify` passes (every counter equals the ledger);
//   - no key whose requests all set max_tokens spent past its limit.
//
// The schedule and every client's choices derive from one seed, printed at
// the start and in the report. Environment:
//
//	CHAOS_MODE=short|long   short (default, part of `make test`): every single fault
//	                        once, in seeded order, ~1-2 min; long (`make chaos`):
//	                        rounds of every fault, compound ones too, until
//	                        CHAOS_DURATION or CHAOS_STEPS
//	CHAOS_SEED=n            replay a run's schedule and load decisions
//	CHAOS_STEPS=n           run at most n faults (short default: 10, one of each)
//	CHAOS_DURATION=d        start no fault after d (long default: 5m); with both
//	                        set, whichever comes first ends the schedule
//	CHAOS_CLIENTS=n         concurrent clients (short 6, long 8)
//	CHAOS_REPORT=path       where to write the markdown report (long mode default:
//	                        e2e/chaos/REPORT.md; short: e2e/.logs/chaos/REPORT-short.md)
//	CHAOS_BUDGET_ARGS=args  extra budget service flags, space separated
//	                        (e.g. "-lease-max-age 0" to run without leases)
package chaos_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// gatewayConfig has mock deployments only: two for gpt-4o (so routing picks
// between them) and one for another model group priced differently.
const gatewayConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      mock_response: "Hello from the chaos suite."
      weight: 3
    model_info:
      id: gpt-4o-primary
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o
      mock_response: "Hello from the second chaos deployment, a little longer."
      weight: 1
    model_info:
      id: gpt-4o-secondary
  - model_name: claude-sonnet-4-5
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      mock_response: "Hello from a mock Anthropic deployment."
    model_info:
      id: claude-sonnet-mock
general_settings:
  master_key: sk-chaos-master
`

// modelGroups are the groups clients ask for.
var modelGroups = []string{"gpt-4o", "claude-sonnet-4-5"}

func TestChaos(t *testing.T) {
	cfg := loadConfig(t)
	t.Logf("chaos: mode %s, CHAOS_SEED=%d (set it to replay this schedule); report: %s", cfg.mode, cfg.seed, cfg.report)

	r := &run{cfg: cfg, started: time.Now()}
	// Mock upstreams answer in milliseconds, so a short reservation TTL
	// still outlives every request; it also bounds how long admission stays
	// fenced after a Redis data loss, which the schedule causes often.
	st := harness.StartStack(t, harness.WithGatewayConfigYAML(gatewayConfig), harness.WithLogLevel("info"),
		harness.WithServiceArgs("budget", append([]string{"-reservation-ttl", "10s"}, chaosBudgetArgs()...)...))
	r.backend = st.Backend
	// Registered after the stack's cleanups, so it runs first; it runs also
	// when an invariant failed or the schedule stopped early: the report is
	// the finding.
	t.Cleanup(func() { r.writeReport(t) })

	r.keys = newKeyring(st)
	r.keys.create(t, initialBoundedKeys, false)
	r.keys.create(t, mixedKeys, true)

	load := startLoad(st, r.keys, cfg)
	stopLoad := func() {
		if r.requests == nil {
			r.requests, r.loadTook = load.stop(), load.elapsed()
		}
	}
	t.Cleanup(stopLoad) // when the schedule fails the test midway
	runSchedule(t, st, r.keys, cfg, load.elapsed, func(s step) { r.steps = append(r.steps, s) })
	stopLoad()

	r.books = checkBooks(t, st, r.keys, r.requests, r.steps)
	for _, c := range r.books.checks {
		if !c.ok {
			t.Errorf("chaos (CHAOS_SEED=%d): %s: %s", cfg.seed, c.name, c.detail)
		}
	}
}

// chaosBudgetArgs are extra budget flags from CHAOS_BUDGET_ARGS (space
// separated), to replay a schedule with admission configured otherwise.
func chaosBudgetArgs() []string { return strings.Fields(os.Getenv("CHAOS_BUDGET_ARGS")) }
