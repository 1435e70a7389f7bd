package pricing

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestResolve_ExactNameFirst(t *testing.T) {
	c := builtinCatalog(t)
	r := c.Resolve(Deployment{Provider: "vertex_ai", Model: "vertex_ai/claude-opus-4-6@default"})
	if r.Entry != "vertex_ai/claude-opus-4-6@default" || r.Match != MatchExact {
		t.Fatalf("exact key must win: %q via %s", r.Entry, r.Match)
	}
	// Both "claude-opus-4-6" and "vertex_ai/claude-opus-4-6" exist: the exact name comes first.
	r = c.Resolve(Deployment{Provider: "vertex_ai", Model: "claude-opus-4-6"})
	if r.Entry != "claude-opus-4-6" || r.Match != MatchExact {
		t.Fatalf("exact key must win over the provider-prefixed one: %q via %s", r.Entry, r.Match)
	}
	// The catalog keys some models only with the provider in front.
	r = c.Resolve(Deployment{Provider: "azure", Model: "codex-mini"})
	if r.Entry != "azure/codex-mini" || r.Match != MatchProviderPrefixed {
		t.Fatalf("provider-prefixed key: %q via %s", r.Entry, r.Match)
	}
}

func TestResolve_StripsProviderPrefix(t *testing.T) {
	c := builtinCatalog(t)
	r := c.Resolve(Deployment{Provider: "anthropic", Model: "anthropic/claude-sonnet-4-5"})
	if r.Entry != "claude-sonnet-4-5" || r.Match != MatchCanonical {
		t.Fatalf("got %q via %s", r.Entry, r.Match)
	}
	r = c.Resolve(Deployment{Provider: "openai", Model: "openai/gpt-4o"})
	if r.Entry != "gpt-4o" {
		t.Fatalf("got %q via %s", r.Entry, r.Match)
	}
}

func TestResolve_StripsDoubledBedrockPrefix(t *testing.T) {
	c := builtinCatalog(t)
	r := c.Resolve(Deployment{Provider: "bedrock", Model: "bedrock/bedrock/us.anthropic.claude-sonnet-4-6"})
	// The regional entry (10% uplift) is kept: the region is only dropped when nothing matches.
	if r.Entry != "us.anthropic.claude-sonnet-4-6" || r.Match != MatchCanonical {
		t.Fatalf("got %q via %s", r.Entry, r.Match)
	}
	if got := r.Price("input_cost_per_token").Price.String(); got != "0.0000033" {
		t.Fatalf("regional input price: %s", got)
	}
}

func TestResolve_StripsRegionPrefix(t *testing.T) {
	c := builtinCatalog(t)
	// There is no apac. entry for Sonnet 4.6; the global one is next best.
	r := c.Resolve(Deployment{Provider: "bedrock", Model: "bedrock/apac.anthropic.claude-sonnet-4-6"})
	if r.Entry != "anthropic.claude-sonnet-4-6" {
		t.Fatalf("got %q via %s", r.Entry, r.Match)
	}
	// Azure data zones and AWS region segments are regions too.
	r = c.Resolve(Deployment{Provider: "azure", Model: "azure/global/gpt-4o"})
	if r.Entry != "azure/gpt-4o" {
		t.Fatalf("azure data zone: got %q", r.Entry)
	}
	r = c.Resolve(Deployment{Provider: "bedrock", Model: "bedrock/eu-west-3/anthropic.claude-sonnet-4-6"})
	if r.Entry != "anthropic.claude-sonnet-4-6" {
		t.Fatalf("AWS region segment: got %q", r.Entry)
	}
}

func TestResolve_StripsProviderSuffix(t *testing.T) {
	c := builtinCatalog(t)
	cases := map[string]string{
		"vertex_ai/claude-opus-4-6@20990101":                 "vertex_ai/claude-opus-4-6",
		"bedrock/anthropic.claude-sonnet-4-6-v1:0":           "anthropic.claude-sonnet-4-6",
		"bedrock/anthropic.claude-sonnet-4-6:0":              "anthropic.claude-sonnet-4-6",
		"bedrock/converse/eu.anthropic.claude-sonnet-4-6-v2": "eu.anthropic.claude-sonnet-4-6",
	}
	for model, want := range cases {
		provider, _, _ := strings.Cut(model, "/")
		r := c.Resolve(Deployment{Provider: provider, Model: model})
		if r.Entry != want || r.Match != MatchCanonical {
			t.Errorf("%s: got %q via %s, want %q", model, r.Entry, r.Match, want)
		}
	}
}

func TestResolve_BaseModelNamesEntry(t *testing.T) {
	c := builtinCatalog(t)
	r := c.Resolve(Deployment{Provider: "azure", Model: "azure/my-prod-deployment", BaseModel: "azure/gpt-4o"})
	if r.Entry != "azure/gpt-4o" || r.Match != MatchBaseModel {
		t.Fatalf("got %q via %s", r.Entry, r.Match)
	}
	// An explicit base model wins even when the model name would resolve to another entry...
	r = c.Resolve(Deployment{Provider: "openai", Model: "gpt-4o", BaseModel: "gpt-4.1"})
	if r.Entry != "gpt-4.1" {
		t.Fatalf("base_model must name the entry: got %q", r.Entry)
	}
	// ...and a base model that is missing is reported, not silently replaced by the model name.
	r = c.Resolve(Deployment{Provider: "openai", Model: "gpt-4o", BaseModel: "gpt-4o-typo"})
	if r.Entry != "" || r.Match != MatchNone || len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "gpt-4o-typo") {
		t.Fatalf("missing base_model: entry %q match %s notes %v", r.Entry, r.Match, r.Notes)
	}
}

func TestResolve_NeverChangesProvider(t *testing.T) {
	c := builtinCatalog(t)
	r := c.Resolve(Deployment{Provider: "openai", Model: "openai/command-r-plus"})
	if r.Entry != "command-r-plus" {
		t.Fatalf("entry %q", r.Entry)
	}
	if r.Provider != "openai" {
		t.Fatalf("provider became %q; the deployment's provider must be kept", r.Provider)
	}
	if r.EntryProvider != "cohere_chat" {
		t.Fatalf("entry provider (informational) = %q", r.EntryProvider)
	}
	// An empty provider is not filled in from the catalog either.
	if r := c.Resolve(Deployment{Model: "command-r-plus"}); r.Provider != "" {
		t.Fatalf("provider filled from the catalog: %q", r.Provider)
	}
}

func TestResolve_OverridesWinFieldByField(t *testing.T) {
	c := builtinCatalog(t)
	r := c.Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5", Overrides: overrides(t, map[string]string{
		"input_cost_per_token":        "0.000002",
		"cache_read_input_token_cost": "0.0000001",
	})})
	cases := []struct{ field, price, rule string }{
		{"input_cost_per_token", "0.000002", RuleOverride},
		{"cache_read_input_token_cost", "0.0000001", RuleOverride},
		{"output_cost_per_token", "0.000015", "catalog:claude-sonnet-4-5"},
		{"cache_creation_input_token_cost", "0.00000375", "catalog:claude-sonnet-4-5"},
		{"input_cost_per_token_above_200k_tokens", "0.000006", "catalog:claude-sonnet-4-5"},
	}
	for _, c := range cases {
		p := r.Price(c.field)
		if p.Price.String() != c.price || p.Rule != c.rule {
			t.Errorf("%s = %s from %s, want %s from %s", c.field, p.Price, p.Rule, c.price, c.rule)
		}
	}
}

func TestResolve_InheritsCachePricesFromBuiltin(t *testing.T) {
	c := builtinCatalog(t)
	r := c.Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5-20250929", Overrides: overrides(t, map[string]string{
		"input_cost_per_token":  "0.000003",
		"output_cost_per_token": "0.000015",
	})})
	for field, want := range map[string]string{
		"cache_read_input_token_cost":               "0.0000003",
		"cache_creation_input_token_cost":           "0.00000375",
		"cache_creation_input_token_cost_above_1hr": "0.000006",
	} {
		p := r.Price(field)
		if p.Price.String() != want || p.Rule != "catalog:claude-sonnet-4-5-20250929" {
			t.Errorf("%s = %s from %s, want %s inherited from the catalog", field, p.Price, p.Rule, want)
		}
	}
}

func TestResolve_ExplicitZeroIsFree(t *testing.T) {
	c := builtinCatalog(t)
	zeros := map[string]string{
		"input_cost_per_token":            "0",
		"output_cost_per_token":           "0",
		"cache_read_input_token_cost":     "0",
		"output_cost_per_reasoning_token": "0",
	}
	r := c.Resolve(Deployment{Provider: "vertex_ai", Model: "vertex_ai/gemini-2.5-flash", Overrides: overrides(t, zeros)})
	if !r.Price("input_cost_per_token").Price.IsFree() || r.Price("input_cost_per_token").Rule != RuleOverride {
		t.Fatal("explicit 0 must be a known, free price from the override")
	}
	cost := mustCost(t, r, Usage{Input: 1_000_000, CacheRead: 1000, Output: 1_000_000, Reasoning: 5000})
	if cost.Status != StatusPriced || cost.Total != 0 {
		t.Fatalf("explicitly free deployment: %s %d", cost.Status, cost.Total)
	}
	if b, unknown, err := r.UpperBound(1_000_000, 1_000_000); err != nil || b != 0 || len(unknown) != 0 {
		t.Fatalf("upper bound of a free deployment: %d %v %v", b, unknown, err)
	}

	// Zero is per field: a field left out is still inherited. gemini-2.5-flash lists its own
	// reasoning price, so zeroing only output leaves reasoning billed at the catalog's price.
	delete(zeros, "output_cost_per_reasoning_token")
	r = c.Resolve(Deployment{Provider: "vertex_ai", Model: "vertex_ai/gemini-2.5-flash", Overrides: overrides(t, zeros)})
	cost = mustCost(t, r, Usage{Output: 1000, Reasoning: 1000})
	// 1000 reasoning tokens × 0.0000025 = 0.0025 USD.
	if cost.Total != dollars(t, "0.0025") || component(cost, KindReasoning).Rule != "catalog:gemini-2.5-flash" {
		t.Fatalf("reasoning not inherited: %s via %s", cost.Total, component(cost, KindReasoning).Rule)
	}
}

func TestResolve_UnknownStaysUnknown(t *testing.T) {
	c := builtinCatalog(t)
	r := c.Resolve(Deployment{Provider: "hosted_vllm", Model: "hosted_vllm/my-finetune-x9y8z7", Overrides: overrides(t, map[string]string{
		"input_cost_per_token":  "0.000001",
		"output_cost_per_token": "0.000002",
	})})
	if r.Entry != "" || r.Match != MatchNone {
		t.Fatalf("no entry expected, got %q", r.Entry)
	}
	p := r.Price("cache_read_input_token_cost")
	if p.Price.Known() || p.Rule != RuleUnknown {
		t.Fatalf("a field absent everywhere must be unknown: %s from %s", p.Price, p.Rule)
	}
	cost := mustCost(t, r, Usage{Input: 100, CacheRead: 1000, Output: 10})
	if cost.Status != StatusUnpriced || !slices.Equal(cost.Unknown, []string{"cache_read"}) {
		t.Fatalf("cache reads without a price: %s %v", cost.Status, cost.Unknown)
	}
	if cr := component(cost, KindCacheRead); cr.Known || cr.Exact() != "" || cr.UnitPrice != "" || cr.Nanos != 0 {
		t.Fatalf("unknown component must not read as zero-priced: %+v", cr)
	}
	// 100 × 0.000001 + 10 × 0.000002 = 0.00012 USD: the known parts only.
	if cost.Total != dollars(t, "0.00012") {
		t.Fatalf("total of known parts = %s", cost.Total)
	}
}

func TestResolve_RegisteringTwiceChangesNothing(t *testing.T) {
	c := builtinCatalog(t)
	snapshot := func() string {
		var b strings.Builder
		for _, name := range []string{"claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-6", "gemini-2.5-flash"} {
			e, _ := c.Entry(name)
			b.WriteString(name + ":" + strings.Join(e.Prices.Fields(), ",") + "\n")
			for _, f := range e.Prices.Fields() {
				b.WriteString(f + "=" + e.Prices.Price(f).String() + "\n")
			}
		}
		return b.String()
	}
	before, version, size := snapshot(), c.Version(), c.Len()
	deployments := []Deployment{
		{Provider: "bedrock", Model: "bedrock/bedrock/us.anthropic.claude-sonnet-4-6", Overrides: overrides(t, map[string]string{"input_cost_per_token": "0"})},
		{Provider: "anthropic", Model: "claude-sonnet-4-5", Overrides: overrides(t, map[string]string{"cache_read_input_token_cost": "0"})},
		{Provider: "vertex_ai", Model: "gemini-2.5-flash"},
		{Provider: "openai", Model: "fixed-uuid-123"},
	}
	for _, d := range deployments {
		first, second := c.Resolve(d), c.Resolve(d)
		if !reflect.DeepEqual(first, second) {
			t.Fatalf("resolving %s twice differs:\n%+v\n%+v", d.Model, first, second)
		}
		// Re-registering from what the first registration stored changes nothing either.
		d2 := d
		d2.Overrides = overrides(t, d.Overrides.Map())
		if third := c.Resolve(d2); !reflect.DeepEqual(first.Prices(), third.Prices()) {
			t.Fatalf("re-registering %s changed its prices:\n%v\n%v", d.Model, first.Prices(), third.Prices())
		}
	}
	if snapshot() != before || c.Version() != version || c.Len() != size {
		t.Fatal("resolution mutated the catalog")
	}
}

func TestResolve_NilCatalogAndZeroResolution(t *testing.T) {
	var c *Catalog
	r := c.Resolve(Deployment{Provider: "openai", Model: "gpt-4o", Overrides: overrides(t, map[string]string{"input_cost_per_token": "0.000001"})})
	if r.Entry != "" || r.Price("input_cost_per_token").Price.String() != "0.000001" {
		t.Fatalf("nil catalog: %+v", r)
	}
	var zero Resolution
	cost, err := zero.Cost(Usage{Input: 1})
	if err != nil || cost.Status != StatusUnpriced {
		t.Fatalf("zero Resolution must price nothing: %v %v", cost.Status, err)
	}
}

func TestResolve_PricesListsEveryBaseFieldAndKnownTierFields(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "gemini", Model: "gemini/gemini-2.5-pro"})
	var fields []string
	for _, p := range r.Prices() {
		fields = append(fields, p.Field+"="+p.Price.String())
	}
	want := []string{
		"input_cost_per_token=0.00000125",
		"output_cost_per_token=0.00001",
		"cache_read_input_token_cost=0.000000125",
		"cache_creation_input_token_cost=unknown",
		"cache_creation_input_token_cost_above_1hr=unknown",
		"output_cost_per_reasoning_token=unknown",
		"input_cost_per_token_above_200k_tokens=0.0000025",
		"output_cost_per_token_above_200k_tokens=0.000015",
		"cache_read_input_token_cost_above_200k_tokens=0.00000025",
	}
	if !slices.Equal(fields, want) {
		t.Fatalf("Prices():\n%s\nwant:\n%s", strings.Join(fields, "\n"), strings.Join(want, "\n"))
	}
}

func TestCandidates_OrderFromSpecificToGeneral(t *testing.T) {
	var names []string
	for _, c := range candidates("bedrock", "bedrock/us.anthropic.claude-x-v1:0") {
		names = append(names, c.name)
	}
	want := []string{
		"bedrock/us.anthropic.claude-x-v1:0", // exact; already prefixed, so no "bedrock/bedrock/"
		"us.anthropic.claude-x-v1:0",
		"bedrock/us.anthropic.claude-x", "us.anthropic.claude-x",
		"bedrock/anthropic.claude-x-v1:0", "anthropic.claude-x-v1:0",
		"bedrock/anthropic.claude-x", "anthropic.claude-x",
		"bedrock/claude-x-v1:0", "claude-x-v1:0",
		"bedrock/claude-x", "claude-x",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("candidates:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}
