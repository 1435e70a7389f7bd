package figures

import "fmt"

// Better says which way a figure improves.
type Better string

const (
	Higher Better = "higher" // throughput: the goal is a minimum
	Lower  Better = "lower"  // latency, duration, CPU: the goal is a maximum
)

// Section groups figures in BENCHMARKS.md, one per issue plus the machine's
// own limits.
type Section string

const (
	SectionPricing   Section = "pricing"
	SectionLedger    Section = "ledger"
	SectionAdmission Section = "admission"
	SectionGateway   Section = "gateway"
	SectionLimits    Section = "limits"
)

// Sections is the order BENCHMARKS.md lists them in.
var Sections = []Section{SectionPricing, SectionLedger, SectionAdmission, SectionGateway, SectionLimits}

// Spec is one figure `make bench` measures.
type Spec struct {
	Name    string // stable identifier, the results.json name
	Section Section
	Title   string // what is measured, for a reader
	Unit    string
	// Goal is the target; 0 means the figure has none (it explains
	// another, or is a limit).
	Goal   float64
	Better Better
	// Limit names the figure of the machine's own limit this one is
	// divided by (Ratio = value / limit), measured in the same run.
	Limit   string
	Command string // re-runs just this figure
	// GoBench, when set, takes the figure from Go's benchmark output of
	// another package rather than from a recorded measurement.
	GoBench *GoBenchSource
}

// GoBenchSource locates a figure in `go test -bench` output.
type GoBenchSource struct {
	Pkg    string // import path
	Bench  string // benchmark name without the -GOMAXPROCS suffix
	Metric string // unit column, e.g. "ns/op"
	// Convert turns the metric into the figure's unit (nil: unchanged).
	Convert func(float64) float64
}

// perSecond turns ns/op into operations per second.
func perSecond(nsPerOp float64) float64 { return 1e9 / nsPerOp }

// micro turns ns/op into µs/op.
func micro(nsPerOp float64) float64 { return nsPerOp / 1e3 }

func e2eCommand(bench string) string {
	return fmt.Sprintf("go test -run '^$' -bench '%s$' -benchtime 1x -timeout 30m ./e2e/bench/", bench)
}

// Names of the machine's limits, which other figures refer to.
const (
	LimitRedisEvalsha     = "limit_redis_evalsha_reserves_per_s"
	LimitPostgresInsert   = "limit_postgres_insert100_rows_per_s"
	LimitJetStreamPublish = "limit_jetstream_publish_msgid_msgs_per_s"
	LimitStubDirect       = "limit_stub_direct_req_per_s_c50"
)

// Catalog lists every figure, in the order BENCHMARKS.md shows them.
var Catalog = []Spec{
	// Issue 3.
	{Name: "pricing_cost_events_per_s", Section: SectionPricing, Unit: "events/s", Goal: 1_000_000, Better: Higher,
		Title:   "pricing one event, pure function (`Resolution.Cost`), one core",
		Command: "go test -cpu 1 -run '^$' -bench 'BenchmarkCost$' -benchmem ./ledger/pricing/",
		GoBench: &GoBenchSource{Pkg: "github.com/spendledger/spendledger/ledger/pricing", Bench: "BenchmarkCost", Metric: "ns/op", Convert: perSecond}},
	{Name: "pricing_upper_bound_ns", Section: SectionPricing, Unit: "ns/op", Better: Lower,
		Title:   "upper-bound estimate for admission (`Resolution.UpperBound`), one core",
		Command: "go test -cpu 1 -run '^$' -bench 'BenchmarkUpperBound$' -benchmem ./ledger/pricing/",
		GoBench: &GoBenchSource{Pkg: "github.com/spendledger/spendledger/ledger/pricing", Bench: "BenchmarkUpperBound", Metric: "ns/op"}},
	{Name: "pricing_price_event_us", Section: SectionPricing, Unit: "µs/op", Better: Lower,
		Title:   "usage event to CostComputed message in process (resolve cache hit, cost, proto build), one core",
		Command: "go test -cpu 1 -run '^$' -bench 'BenchmarkPriceEvent$' -benchmem ./services/internal/pricer/",
		GoBench: &GoBenchSource{Pkg: "github.com/spendledger/spendledger/services/internal/pricer", Bench: "BenchmarkPriceEvent", Metric: "ns/op", Convert: micro}},
	{Name: "pricing_service_events_per_s", Section: SectionPricing, Unit: "events/s", Goal: 20_000, Better: Higher, Limit: LimitJetStreamPublish,
		Title:   "pricing service end to end: a USAGE backlog in, CostComputed out on COSTS (JetStream timestamps of first and last output)",
		Command: e2eCommand("BenchmarkPricingService")},

	// Issue 4.
	{Name: "ledger_ingest_entries_per_s", Section: SectionLedger, Unit: "entries/s", Goal: 30_000, Better: Higher, Limit: LimitPostgresInsert,
		Title:   "ledger service draining a CostComputed backlog into Postgres with projection into Redis (first to last committed batch, then counters checked)",
		Command: e2eCommand("BenchmarkLedgerIngest")},
	{Name: "ledger_lag_p99_ms", Section: SectionLedger, Unit: "ms", Goal: 250, Better: Lower,
		Title:   "CostComputed published → counter updated, p99, at 2k events/s (probe events, polled every 2 ms)",
		Command: e2eCommand("BenchmarkLedgerLag")},
	{Name: "ledger_lag_p50_ms", Section: SectionLedger, Unit: "ms", Better: Lower,
		Title:   "the same, p50",
		Command: e2eCommand("BenchmarkLedgerLag")},
	{Name: "ledger_replay_seconds", Section: SectionLedger, Unit: "s", Goal: 10, Better: Lower,
		Title:   "`ledger replay projections` of a 1M-entry ledger into an empty Redis, process start to exit",
		Command: e2eCommand("BenchmarkReplayProjections")},
	{Name: "ledger_replay_entries_per_s", Section: SectionLedger, Unit: "entries/s", Better: Higher,
		Title:   "the same, as entries per second",
		Command: e2eCommand("BenchmarkReplayProjections")},

	// Issue 5.
	{Name: "admission_admits_per_s_c32", Section: SectionAdmission, Unit: "admits/s", Goal: 15_000, Better: Higher, Limit: LimitRedisEvalsha,
		Title:   "Admit over Connect on loopback, six budgets each, 32 concurrent callers",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_admits_per_s_c64", Section: SectionAdmission, Unit: "admits/s", Goal: 15_000, Better: Higher, Limit: LimitRedisEvalsha,
		Title:   "the same, 64 concurrent callers",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_p99_ms_at_5k", Section: SectionAdmission, Unit: "ms", Goal: 2, Better: Lower,
		Title:   "Admit p99 at a fixed 5k/s (open loop, from each call's scheduled start)",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_p50_ms_at_5k", Section: SectionAdmission, Unit: "ms", Better: Lower,
		Title:   "the same, p50",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_batched_p99_ms_at_5k", Section: SectionAdmission, Unit: "ms", Goal: 2, Better: Lower,
		Title:   "Admit p99 at a fixed 5k/s through the gateway's coalescing client (AdmitBatch; open loop, from each call's scheduled start)",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_batched_p50_ms_at_5k", Section: SectionAdmission, Unit: "ms", Better: Lower,
		Title:   "the same, p50",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_p99_ms_at_2k", Section: SectionAdmission, Unit: "ms", Better: Lower,
		Title:   "Admit p99 at a fixed 2k/s, for comparison",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_budget_cpu_us_per_admit", Section: SectionAdmission, Unit: "µs", Better: Lower,
		Title:   "budget binary CPU per admission (user+system, /proc), 64 callers",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_redis_us_per_admit", Section: SectionAdmission, Unit: "µs", Better: Lower,
		Title:   "Redis script time per admission (INFO commandstats), 64 callers",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_batched_admits_per_s_c32", Section: SectionAdmission, Unit: "admits/s", Goal: 15_000, Better: Higher, Limit: LimitRedisEvalsha,
		Title:   "Admit through the gateway's coalescing client (AdmitBatch), six budgets each, 32 concurrent callers",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_batched_admits_per_s_c64", Section: SectionAdmission, Unit: "admits/s", Goal: 15_000, Better: Higher, Limit: LimitRedisEvalsha,
		Title:   "the same, 64 concurrent callers",
		Command: e2eCommand("BenchmarkAdmitConnect")},
	{Name: "admission_batched_budget_cpu_us_per_admit", Section: SectionAdmission, Unit: "µs", Better: Lower,
		Title:   "budget binary CPU per admission through the coalescing client, 64 callers",
		Command: e2eCommand("BenchmarkAdmitConnect")},

	// Issue 6.
	{Name: "gateway_added_p50_ms", Section: SectionGateway, Unit: "ms", Goal: 0.3, Better: Lower,
		Title:   "latency the gateway adds at concurrency 1, p50 (auth, Admit, reservation, event publish; minus direct calls to the same stub)",
		Command: e2eCommand("BenchmarkGatewayOverhead")},
	{Name: "gateway_added_p99_ms", Section: SectionGateway, Unit: "ms", Goal: 1, Better: Lower,
		Title:   "the same, p99",
		Command: e2eCommand("BenchmarkGatewayOverhead")},
	{Name: "gateway_req_per_s_c50", Section: SectionGateway, Unit: "req/s", Goal: 6_000, Better: Higher, Limit: LimitStubDirect,
		Title:   "requests/s through the gateway at concurrency 50",
		Command: e2eCommand("BenchmarkGatewayOverhead")},
	{Name: "gateway_added_p50_ms_pipeline_paused", Section: SectionGateway, Unit: "ms", Better: Lower,
		Title:   "latency the gateway adds at concurrency 1, p50, with pricing and the ledger stopped during the load (events published durably, drained after and checked)",
		Command: e2eCommand("BenchmarkGatewayOverhead")},
	{Name: "gateway_added_p99_ms_pipeline_paused", Section: SectionGateway, Unit: "ms", Better: Lower,
		Title:   "the same, p99",
		Command: e2eCommand("BenchmarkGatewayOverhead")},
	{Name: "gateway_req_per_s_c50_pipeline_paused", Section: SectionGateway, Unit: "req/s", Better: Higher, Limit: LimitStubDirect,
		Title:   "the same with pricing and the ledger stopped during the load (events published durably, drained after and checked)",
		Command: e2eCommand("BenchmarkGatewayOverhead")},
	{Name: "gateway_p99_ms_c50", Section: SectionGateway, Unit: "ms", Better: Lower,
		Title:   "gateway p99 at concurrency 50",
		Command: e2eCommand("BenchmarkGatewayOverhead")},

	// The machine's own limits, measured in the same run.
	{Name: LimitRedisEvalsha, Section: SectionLimits, Unit: "reserves/s", Better: Higher,
		Title:   "Redis: `redis-benchmark -c 50` EVALSHA of Reserve's own script over six counters",
		Command: e2eCommand("BenchmarkAdmitConnect") + " (sub-benchmark redis_raw)"},
	{Name: LimitPostgresInsert, Section: SectionLimits, Unit: "rows/s", Better: Higher,
		Title:   "Postgres: plain 100-row multi-row INSERTs into a 3-column table with only a primary key, one connection",
		Command: e2eCommand("BenchmarkPostgresPlainInsert")},
	{Name: LimitJetStreamPublish, Section: SectionLimits, Unit: "msgs/s", Better: Higher,
		Title:   "JetStream: async publish with message ids (dedup on) into a file stream configured as USAGE, 4096 in flight",
		Command: e2eCommand("BenchmarkJetStreamPublish")},
	{Name: LimitStubDirect, Section: SectionLimits, Unit: "req/s", Better: Higher,
		Title:   "the gateway benchmark's upstream stub called directly at concurrency 50",
		Command: e2eCommand("BenchmarkGatewayOverhead")},
}

// Lookup returns the Spec named name.
func Lookup(name string) (Spec, bool) {
	for _, s := range Catalog {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Met reports whether value meets the spec's goal (true when it has none).
func (s Spec) Met(value float64) bool {
	switch {
	case s.Goal == 0:
		return true
	case s.Better == Lower:
		return value <= s.Goal
	default:
		return value >= s.Goal
	}
}
