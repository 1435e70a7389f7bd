package pricing

import (
	"errors"
	"slices"
	"testing"

	"github.com/spendledger/spendledger/ledger/money"
)

// claude-sonnet-4-5 (catalog): input 3e-06, output 1.5e-05, cache read 3e-07,
// cache write 5m 3.75e-06, cache write 1h 6e-06.
func TestCost_AnthropicWithCacheReadsAndWrites(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "anthropic", Model: "anthropic/claude-sonnet-4-5"})
	u, err := FromAnthropic(1000, 20_000, 6000, 2000, 800)
	if err != nil {
		t.Fatal(err)
	}
	c := mustCost(t, r, u)
	// input           1000 × 0.000003   = 0.003
	// cache_read     20000 × 0.0000003  = 0.006
	// cache_creation  4000 × 0.00000375 = 0.015   (6000 written, 2000 of them for 1h)
	// cache_1h        2000 × 0.000006   = 0.012
	// output           800 × 0.000015   = 0.012
	// total                               0.048 USD = 48,000,000 nanos
	want := map[Kind]struct{ exact, unit string }{
		KindInput:           {"0.003", "0.000003"},
		KindCacheRead:       {"0.006", "0.0000003"},
		KindCacheCreation:   {"0.015", "0.00000375"},
		KindCacheCreation1h: {"0.012", "0.000006"},
		KindOutput:          {"0.012", "0.000015"},
	}
	for k, w := range want {
		comp := component(c, k)
		if comp.Exact() != w.exact || comp.UnitPrice != w.unit || comp.Rule != "catalog:claude-sonnet-4-5" {
			t.Errorf("%s: %+v, want exact %s at %s", k, comp, w.exact, w.unit)
		}
	}
	if c.Status != StatusPriced || c.Total != 48_000_000 || c.Exact() != "0.048" || c.TierAbove != 0 {
		t.Fatalf("cost: %s %d %s tier %d", c.Status, c.Total, c.Exact(), c.TierAbove)
	}
	if comp := component(c, KindCacheCreation1h); comp.Field != "cache_creation_input_token_cost_above_1hr" || comp.Nanos != 12_000_000 {
		t.Fatalf("1h component: %+v", comp)
	}
	checkConsistent(t, c)
}

// gpt-4o (catalog): input 2.5e-06, cache read 1.25e-06, output 1e-05.
func TestCost_OpenAIWithCachedPromptTokens(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "openai", Model: "gpt-4o"})
	// OpenAI reports prompt_tokens=10000 of which cached_tokens=6000, completion_tokens=1500.
	u, err := FromOpenAI(10_000, 6000, 1500, 0)
	if err != nil {
		t.Fatal(err)
	}
	if u.Input != 4000 || u.CacheRead != 6000 {
		t.Fatalf("normalization: %+v", u)
	}
	c := mustCost(t, r, u)
	// input      4000 × 0.0000025  = 0.01
	// cache_read 6000 × 0.00000125 = 0.0075
	// output     1500 × 0.00001    = 0.015
	// total                          0.0325 USD = 32,500,000 nanos
	if c.Status != StatusPriced || c.Total != 32_500_000 || c.Exact() != "0.0325" {
		t.Fatalf("gpt-4o: %s %d %s", c.Status, c.Total, c.Exact())
	}
	if component(c, KindInput).Exact() != "0.01" || component(c, KindCacheRead).Exact() != "0.0075" || component(c, KindOutput).Exact() != "0.015" {
		t.Fatalf("components: %+v", c.Components)
	}
	checkConsistent(t, c)

	// gpt-4.1: input 2e-06, cache read 5e-07, output 8e-06.
	// 2000×0.000002 + 8000×0.0000005 + 500×0.000008 = 0.004 + 0.004 + 0.004 = 0.012
	u, _ = FromOpenAI(10_000, 8000, 500, 0)
	if c := mustCost(t, builtinCatalog(t).Resolve(Deployment{Provider: "openai", Model: "gpt-4.1"}), u); c.Total != 12_000_000 {
		t.Fatalf("gpt-4.1: %d", c.Total)
	}
}

// claude-sonnet-4-5 above 200k: input 6e-06, output 2.25e-05, cache read 6e-07,
// cache write 7.5e-06, 1h write 1.2e-05.
func TestCost_PastTwoHundredKUsesTierPricesForEveryTokenType(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	u := Usage{Input: 150_000, CacheRead: 50_000, CacheCreation: 1000, CacheCreation1h: 500, Output: 2000}
	c := mustCost(t, r, u) // prompt = 201,500 > 200,000
	// input          150000 × 0.000006  = 0.9
	// cache_read      50000 × 0.0000006 = 0.03
	// cache_creation   1000 × 0.0000075 = 0.0075
	// cache_1h          500 × 0.000012  = 0.006
	// output           2000 × 0.0000225 = 0.045
	// total                               0.9885 USD
	if c.TierAbove != 200_000 || c.Total != 988_500_000 || c.Exact() != "0.9885" {
		t.Fatalf("tiered: tier %d total %d exact %s", c.TierAbove, c.Total, c.Exact())
	}
	for k, field := range map[Kind]string{
		KindInput:           "input_cost_per_token_above_200k_tokens",
		KindCacheRead:       "cache_read_input_token_cost_above_200k_tokens",
		KindCacheCreation:   "cache_creation_input_token_cost_above_200k_tokens",
		KindCacheCreation1h: "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
		KindOutput:          "output_cost_per_token_above_200k_tokens",
	} {
		if got := component(c, k).Field; got != field {
			t.Errorf("%s priced by %s, want %s", k, got, field)
		}
	}
	checkConsistent(t, c)

	// gemini-2.5-pro past 200k: 250000 × 0.0000025 + 1000 × 0.000015 = 0.625 + 0.015 = 0.64
	g := builtinCatalog(t).Resolve(Deployment{Provider: "vertex_ai", Model: "gemini-2.5-pro"})
	if c := mustCost(t, g, Usage{Input: 250_000, Output: 1000}); c.Total != 640_000_000 {
		t.Fatalf("gemini-2.5-pro tiered: %d", c.Total)
	}
}

func TestCost_TierThresholdIsStrictlyGreater(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	// Exactly 200,000 prompt tokens is base price: 150000×0.000003 + 50000×0.0000003 + 2000×0.000015
	// = 0.45 + 0.015 + 0.03 = 0.495
	at := mustCost(t, r, Usage{Input: 150_000, CacheRead: 50_000, Output: 2000})
	if at.TierAbove != 0 || at.Total != 495_000_000 {
		t.Fatalf("at the threshold: tier %d total %d", at.TierAbove, at.Total)
	}
	// One more prompt token: 150001×0.000006 + 50000×0.0000006 + 2000×0.0000225
	// = 0.900006 + 0.03 + 0.045 = 0.975006
	past := mustCost(t, r, Usage{Input: 150_001, CacheRead: 50_000, Output: 2000})
	if past.TierAbove != 200_000 || past.Total != 975_006_000 {
		t.Fatalf("past the threshold: tier %d total %d", past.TierAbove, past.Total)
	}
}

func TestCost_XAITierStartsAtTheThreshold(t *testing.T) {
	// xai/grok-4-1-fast: input 2e-07, above 128k 4e-07. xAI bills the tier from 128k itself.
	r := builtinCatalog(t).Resolve(Deployment{Provider: "xai", Model: "xai/grok-4-1-fast"})
	c := mustCost(t, r, Usage{Input: 128_000})
	if c.TierAbove != 128_000 || c.Total != dollars(t, "0.0512") { // 128000 × 0.0000004
		t.Fatalf("xai at threshold: tier %d total %s", c.TierAbove, c.Total)
	}
	if c := mustCost(t, r, Usage{Input: 127_999}); c.TierAbove != 0 {
		t.Fatalf("xai below threshold used tier %d", c.TierAbove)
	}
}

func TestCost_TierFallsBackToBasePriceForFieldsTheTierLacks(t *testing.T) {
	r := (*Catalog)(nil).Resolve(Deployment{Provider: "custom", Model: "m", Overrides: overrides(t, map[string]string{
		"input_cost_per_token":                   "0.000001",
		"input_cost_per_token_above_100k_tokens": "0.000002",
		"output_cost_per_token":                  "0.00001",
	})})
	c := mustCost(t, r, Usage{Input: 100_001, Output: 10})
	if c.TierAbove != 100_000 {
		t.Fatalf("tier not applied: %d", c.TierAbove)
	}
	if out := component(c, KindOutput); out.Field != "output_cost_per_token" || out.UnitPrice != "0.00001" {
		t.Fatalf("output without a tier price must use its base price: %+v", out)
	}
	// A tier with no input price of its own is not a tier (LiteLLM's semantics).
	r = (*Catalog)(nil).Resolve(Deployment{Model: "m", Overrides: overrides(t, map[string]string{
		"input_cost_per_token":                    "0.000001",
		"output_cost_per_token_above_100k_tokens": "0.00002",
	})})
	if c := mustCost(t, r, Usage{Input: 200_000}); c.TierAbove != 0 {
		t.Fatalf("tier without input price applied: %d", c.TierAbove)
	}
}

func TestCost_ReasoningAtOwnPriceElseOutputPrice(t *testing.T) {
	c := builtinCatalog(t)
	// o3 lists no reasoning price: output 8e-06 applies.
	// FromOpenAI(prompt 1000, completion 3000 incl. 2000 reasoning):
	// 1000×0.000002 + 1000×0.000008 + 2000×0.000008 = 0.002 + 0.008 + 0.016 = 0.026
	u, _ := FromOpenAI(1000, 0, 3000, 2000)
	cost := mustCost(t, c.Resolve(Deployment{Provider: "openai", Model: "o3"}), u)
	if cost.Total != 26_000_000 {
		t.Fatalf("o3: %d", cost.Total)
	}
	if re := component(cost, KindReasoning); re.Field != "output_cost_per_token" || re.UnitPrice != "0.000008" || re.Rule != "catalog:o3" {
		t.Fatalf("o3 reasoning must record the output-price rule: %+v", re)
	}
	// dashscope/qwen-turbo lists reasoning 5e-07 apart from output 2e-07:
	// 1000×0.0000002 + 2000×0.0000005 = 0.0002 + 0.001 = 0.0012
	cost = mustCost(t, c.Resolve(Deployment{Provider: "dashscope", Model: "dashscope/qwen-turbo"}), Usage{Output: 1000, Reasoning: 2000})
	if cost.Total != 1_200_000 || component(cost, KindReasoning).Field != "output_cost_per_reasoning_token" {
		t.Fatalf("qwen-turbo: %d %+v", cost.Total, component(cost, KindReasoning))
	}
}

func TestCost_OneHourCacheWriteNeverFallsBackToFiveMinutePrice(t *testing.T) {
	c := builtinCatalog(t)
	// This Bedrock entry prices 5-minute writes (1.875e-05) but lists no 1-hour price.
	d := Deployment{Provider: "bedrock", Model: "anthropic.claude-opus-4-1-20250805-v1:0"}
	cost := mustCost(t, c.Resolve(d), Usage{Input: 10, CacheCreation: 100, CacheCreation1h: 100})
	if cost.Status != StatusUnpriced || !slices.Equal(cost.Unknown, []string{"cache_creation_1h"}) {
		t.Fatalf("1h writes without a 1h price: %s %v", cost.Status, cost.Unknown)
	}
	if h := component(cost, KindCacheCreation1h); h.Known || h.Field != "cache_creation_input_token_cost_above_1hr" {
		t.Fatalf("1h component must be unknown and name the field to set: %+v", h)
	}
	// 10×0.000015 + 100×0.00001875 = 0.00015 + 0.001875 = 0.002025 (known parts)
	if cost.Total != 2_025_000 {
		t.Fatalf("known parts: %d", cost.Total)
	}
	// The operator sets it: 100 × 0.00003 = 0.003 more.
	d.Overrides = overrides(t, map[string]string{"cache_creation_input_token_cost_above_1hr": "0.00003"})
	cost = mustCost(t, c.Resolve(d), Usage{Input: 10, CacheCreation: 100, CacheCreation1h: 100})
	if cost.Status != StatusPriced || cost.Total != 5_025_000 {
		t.Fatalf("with a 1h override: %s %d", cost.Status, cost.Total)
	}
}

// subNano resolves a catalog-less deployment with prices given in tenths of a nano per token.
func subNano(t *testing.T, input, output, cacheRead string) Resolution {
	return (*Catalog)(nil).Resolve(Deployment{Model: "m", Overrides: overrides(t, map[string]string{
		"input_cost_per_token":        input,
		"output_cost_per_token":       output,
		"cache_read_input_token_cost": cacheRead,
	})})
}

func TestCost_RoundsHalfToEvenOnceOnTheTotal(t *testing.T) {
	half := subNano(t, "0.0000000005", "0", "0") // 0.5 nano per token
	for tokens, want := range map[int64]money.Nanos{1: 0, 3: 2, 5: 2, 7: 4} {
		if c := mustCost(t, half, Usage{Input: tokens}); c.Total != want {
			t.Errorf("%d × 0.5 nano rounds to %d, want %d (half to even)", tokens, c.Total, want)
		}
	}
	// Three components of 0.4 nano each: rounding each would give 0; rounding the exact sum
	// (1.2 nano) once gives 1.
	r := subNano(t, "0.0000000004", "0.0000000004", "0.0000000004")
	c := mustCost(t, r, Usage{Input: 1, Output: 1, CacheRead: 1})
	if c.Total != 1 || c.Exact() != "0.0000000012" {
		t.Fatalf("once-rounded total = %d (%s), want 1", c.Total, c.Exact())
	}
	checkConsistent(t, c)
}

func TestCost_LargestRemainderAllocation(t *testing.T) {
	// input 0.6, output 0.3, cache_read 0.6 nano: exact 1.5 → total 2 (half to even). Floors are
	// all 0; the two nanos go to the largest remainders, input and cache_read (0.6 each).
	r := subNano(t, "0.0000000006", "0.0000000003", "0.0000000006")
	c := mustCost(t, r, Usage{Input: 1, Output: 1, CacheRead: 1})
	if c.Total != 2 {
		t.Fatalf("total %d", c.Total)
	}
	got := [3]money.Nanos{component(c, KindInput).Nanos, component(c, KindOutput).Nanos, component(c, KindCacheRead).Nanos}
	if got != [3]money.Nanos{1, 0, 1} {
		t.Fatalf("allocation input/output/cache_read = %v, want [1 0 1]", got)
	}
	// Ties go to the earlier kind: 0.4 each, total 1 → input.
	r = subNano(t, "0.0000000004", "0.0000000004", "0.0000000004")
	c = mustCost(t, r, Usage{Input: 1, Output: 1, CacheRead: 1})
	if component(c, KindInput).Nanos != 1 || component(c, KindOutput).Nanos != 0 {
		t.Fatalf("tie-break: %+v", c.Components)
	}
	// Fractional real-catalog price: amazon.nova-2-pro cache read is 5.46875e-07 (546.875 nanos).
	// 1 token input (2187.5 nanos) + 1 cache read (546.875): exact 2734.375 → 2734. Floors are
	// 2187 + 546 = 2733; the missing nano goes to the larger remainder, cache_read (0.875 > 0.5).
	nova := builtinCatalog(t).Resolve(Deployment{Provider: "bedrock", Model: "amazon.nova-2-pro-preview-20251202-v1:0"})
	c = mustCost(t, nova, Usage{Input: 1, CacheRead: 1})
	if c.Total != 2734 || component(c, KindInput).Nanos != 2187 || component(c, KindCacheRead).Nanos != 547 {
		t.Fatalf("nova: total %d input %d cache_read %d", c.Total, component(c, KindInput).Nanos, component(c, KindCacheRead).Nanos)
	}
	checkConsistent(t, c)
}

func TestCost_ExactPathForPricesFinerThanAttoUSD(t *testing.T) {
	// databricks-claude-3-7-sonnet carries float noise: input 2.9999900000000002e-06.
	r := builtinCatalog(t).Resolve(Deployment{Provider: "databricks", Model: "databricks/databricks-claude-3-7-sonnet"})
	c := mustCost(t, r, Usage{Input: 1_000_000, Output: 3})
	// 1e6 × 0.0000029999900000000002 = 2.9999900000000002
	// 3   × 0.000015000020000000002  = 0.000045000060000000006
	if component(c, KindInput).Exact() != "2.9999900000000002" || component(c, KindOutput).Exact() != "0.000045000060000000006" {
		t.Fatalf("exact components: %+v", c.Components)
	}
	//   2.999990000000000200000
	// + 0.000045000060000000006
	// = 3.000035000060000200006 USD = 3,000,035,000.060000200006 nanos → 3,000,035,000
	if c.Exact() != "3.000035000060000200006" || c.Total != 3_000_035_000 {
		t.Fatalf("total %d exact %s", c.Total, c.Exact())
	}
	checkConsistent(t, c)
}

func TestCost_RejectsNegativeAndOverflowingCounts(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "openai", Model: "gpt-4o"})
	if _, err := r.Cost(Usage{Input: 10, Output: -1}); !errors.Is(err, ErrNegativeTokens) {
		t.Fatalf("negative count: %v", err)
	}
	const huge = 1 << 62
	if _, err := r.Cost(Usage{Input: huge, CacheRead: huge, CacheCreation: huge}); err == nil {
		t.Fatal("prompt count overflow must be an error")
	}
	if _, err := r.Cost(Usage{Output: huge}); !errors.Is(err, ErrCostOverflow) {
		t.Fatalf("cost beyond int64 nanos: %v", err)
	}
}

func TestUsageNormalization(t *testing.T) {
	u, err := FromOpenAI(1000, 300, 500, 200)
	if err != nil || u != (Usage{Input: 700, CacheRead: 300, Output: 300, Reasoning: 200}) {
		t.Fatalf("FromOpenAI: %+v %v", u, err)
	}
	u, err = FromAnthropic(100, 2000, 500, 200, 50)
	if err != nil || u != (Usage{Input: 100, CacheRead: 2000, CacheCreation: 300, CacheCreation1h: 200, Output: 50}) {
		t.Fatalf("FromAnthropic: %+v %v", u, err)
	}
	if n, _ := u.PromptTokens(); n != 2600 {
		t.Fatalf("PromptTokens = %d", n)
	}
	for _, bad := range []func() (Usage, error){
		func() (Usage, error) { return FromOpenAI(100, 101, 0, 0) },
		func() (Usage, error) { return FromOpenAI(100, 0, 10, 11) },
		func() (Usage, error) { return FromOpenAI(-1, 0, 0, 0) },
		func() (Usage, error) { return FromAnthropic(0, 0, 10, 11, 0) },
		func() (Usage, error) { return FromAnthropic(0, -1, 0, 0, 0) },
	} {
		if u, err := bad(); err == nil {
			t.Errorf("inconsistent counts accepted: %+v", u)
		}
	}
}
