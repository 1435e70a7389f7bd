package pricing

import (
	"reflect"
	"slices"
	"testing"
)

// Reference 000: a deployment registered under a non-canonical key with only input/output custom
// prices lost its cache prices, and cache reads/writes were billed at zero.
func TestRegression000_PartialOverridesUnderDoubledBedrockKeyStillBillCache(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{
		Provider: "bedrock",
		Model:    "bedrock/bedrock/us.anthropic.claude-sonnet-4-6",
		Overrides: overrides(t, map[string]string{
			"input_cost_per_token":  "0.000003",
			"output_cost_per_token": "0.000015",
		}),
	})
	c := mustCost(t, r, Usage{Input: 1000, CacheRead: 100_000, CacheCreation: 20_000, Output: 1000})
	// us.anthropic.claude-sonnet-4-6: cache read 3.3e-07, cache write 4.125e-06.
	// input            1000 × 0.000003   = 0.003    (override)
	// output           1000 × 0.000015   = 0.015    (override)
	// cache_read     100000 × 0.00000033 = 0.033    (inherited)
	// cache_creation  20000 × 0.000004125 = 0.0825  (inherited)
	// total                                0.1335 USD
	if c.Status != StatusPriced || c.Total != 133_500_000 {
		t.Fatalf("cost %s %d, want PRICED 133,500,000", c.Status, c.Total)
	}
	for k, rule := range map[Kind]string{
		KindInput:         RuleOverride,
		KindOutput:        RuleOverride,
		KindCacheRead:     "catalog:us.anthropic.claude-sonnet-4-6",
		KindCacheCreation: "catalog:us.anthropic.claude-sonnet-4-6",
	} {
		if got := component(c, k).Rule; got != rule {
			t.Errorf("%s priced by %s, want %s", k, got, rule)
		}
	}
}

// Reference 000, second fix: borrowing a canonical entry's prices must not borrow its provider.
func TestRegression000_OpenAICommandRPlusStaysOpenAI(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "openai", Model: "openai/command-r-plus"})
	if r.Provider != "openai" || r.Entry != "command-r-plus" || r.EntryProvider != "cohere_chat" {
		t.Fatalf("provider %q entry %q (%q)", r.Provider, r.Entry, r.EntryProvider)
	}
}

// Reference 000: when nothing resolves and no cache prices were given, LiteLLM could only log a
// warning. Here the event itself says UNPRICED and names what is missing.
func TestRegression000_UnresolvableModelWithCacheTrafficIsUnpricedNotZero(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "bedrock", Model: "this-backend-model-does-not-exist-x9y8z7",
		Overrides: overrides(t, map[string]string{"input_cost_per_token": "0.000003"})})
	c := mustCost(t, r, Usage{Input: 10, CacheRead: 1000, CacheCreation: 1000})
	if c.Status != StatusUnpriced || !slices.Equal(c.Unknown, []string{"cache_read", "cache_creation"}) {
		t.Fatalf("%s %v", c.Status, c.Unknown)
	}
}

// Reference 002: re-registering a model without custom prices persisted synthesized zero
// prices, after which every budget check skipped the model as free.
func TestRegression002_ReRegisteringDoesNotTurnUnknownIntoZero(t *testing.T) {
	c := builtinCatalog(t)
	d := Deployment{Provider: "openai", Model: "fixed-uuid-123"} // no entry, no custom prices
	first := c.Resolve(d)
	// Re-register from whatever the first registration would persist.
	d.Overrides = overrides(t, resolvedPrices(first.Prices()).overridesMap())
	second := c.Resolve(d)
	if !reflect.DeepEqual(first.Prices(), second.Prices()) {
		t.Fatal("re-registration changed the prices")
	}
	for _, r := range []Resolution{first, second} {
		if p := r.Price("input_cost_per_token"); p.Price.Known() || p.Price.IsFree() {
			t.Fatalf("unknown input price became %s", p.Price)
		}
		_, unknown, err := r.UpperBound(1000, 1000)
		if err != nil || !slices.Equal(unknown, []string{"input", "output"}) {
			t.Fatalf("admission must see the price as unknown, not free: %v %v", unknown, err)
		}
		if cost := mustCost(t, r, Usage{Input: 1000, Output: 1000}); cost.Status != StatusUnpriced {
			t.Fatalf("cost status %s", cost.Status)
		}
	}
	if len(d.Overrides.Map()) != 0 {
		t.Fatalf("nothing may be persisted for unknown prices: %v", d.Overrides.Map())
	}
}

// Reference 002's test suite: an explicitly free deployment is free, and does not make another
// deployment of the same backend model free.
func TestRegression002_ExplicitZeroIsFreeAndPollutesNothing(t *testing.T) {
	c := builtinCatalog(t)
	free := Deployment{Provider: "vertex_ai", Model: "vertex_ai/gemini-2.5-flash", Overrides: overrides(t, map[string]string{
		"input_cost_per_token":  "0",
		"output_cost_per_token": "0",
	})}
	standard := Deployment{Provider: "vertex_ai", Model: "vertex_ai/gemini-2.5-flash"}
	u := Usage{Input: 1000, Output: 1000}
	for _, order := range [][]Deployment{{free, standard}, {standard, free}} {
		var costs []Cost
		for _, d := range order {
			costs = append(costs, mustCost(t, c.Resolve(d), u))
		}
		freeCost, stdCost := costs[0], costs[1]
		if order[0].Overrides.Len() == 0 {
			freeCost, stdCost = costs[1], costs[0]
		}
		if freeCost.Status != StatusPriced || freeCost.Total != 0 {
			t.Fatalf("explicitly free: %s %d", freeCost.Status, freeCost.Total)
		}
		// gemini-2.5-flash: 1000 × 0.0000003 + 1000 × 0.0000025 = 0.0003 + 0.0025 = 0.0028
		if stdCost.Total != 2_800_000 {
			t.Fatalf("standard deployment polluted: %d", stdCost.Total)
		}
	}
}

// overridesMap is what a careless re-registration would persist: every known price. Unknown
// prices have no text to persist, so they cannot come back as zero.
func (ps resolvedPrices) overridesMap() map[string]string {
	m := map[string]string{}
	for _, p := range ps {
		if p.Price.Known() {
			m[p.Field] = p.Price.String()
		}
	}
	return m
}

type resolvedPrices []ResolvedPrice
