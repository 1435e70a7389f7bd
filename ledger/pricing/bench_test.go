package pricing

import (
	"testing"
)

var sinkCost Cost

// BenchmarkCost prices one typical event: a cached Anthropic request with partial overrides.
// The target is at least 1M events/s on one core (< 1µs/op).
func BenchmarkCost(b *testing.B) {
	r := builtinCatalog(b).Resolve(Deployment{
		Provider:  "bedrock",
		Model:     "bedrock/bedrock/us.anthropic.claude-sonnet-4-6",
		Overrides: overrides(b, map[string]string{"input_cost_per_token": "0.000003", "output_cost_per_token": "0.000015"}),
	})
	u := Usage{Input: 1200, CacheRead: 45_000, CacheCreation: 3000, Output: 850}
	b.ReportAllocs()
	for b.Loop() {
		c, err := r.Cost(u)
		if err != nil {
			b.Fatal(err)
		}
		sinkCost = c
	}
}

// BenchmarkCost_Tier prices a request past 200k with every kind present.
func BenchmarkCost_Tier(b *testing.B) {
	r := builtinCatalog(b).Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	u := Usage{Input: 150_000, CacheRead: 50_000, CacheCreation: 1000, CacheCreation1h: 500, Output: 2000, Reasoning: 100}
	b.ReportAllocs()
	for b.Loop() {
		sinkCost, _ = r.Cost(u)
	}
}

// BenchmarkCost_ExactPath prices with big.Rat (prices finer than atto-USD).
func BenchmarkCost_ExactPath(b *testing.B) {
	r := builtinCatalog(b).Resolve(Deployment{Provider: "databricks", Model: "databricks/databricks-claude-3-7-sonnet"})
	u := Usage{Input: 1200, Output: 850}
	b.ReportAllocs()
	for b.Loop() {
		sinkCost, _ = r.Cost(u)
	}
}

func BenchmarkUpperBound(b *testing.B) {
	r := builtinCatalog(b).Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.UpperBound(12_000, 4096); err != nil {
			b.Fatal(err)
		}
	}
}

var sinkResolution Resolution

// BenchmarkResolve resolves a deployment whose name needs canonical forms, with overrides.
func BenchmarkResolve(b *testing.B) {
	c := builtinCatalog(b)
	d := Deployment{
		Provider:  "bedrock",
		Model:     "bedrock/bedrock/us.anthropic.claude-sonnet-4-6",
		Overrides: overrides(b, map[string]string{"input_cost_per_token": "0.000003", "output_cost_per_token": "0.000015"}),
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkResolution = c.Resolve(d)
	}
}

// BenchmarkResolve_Miss walks every canonical form before giving up.
func BenchmarkResolve_Miss(b *testing.B) {
	c := builtinCatalog(b)
	d := Deployment{Provider: "bedrock", Model: "bedrock/converse/us.anthropic.claude-none-9-v1:0"}
	b.ReportAllocs()
	for b.Loop() {
		sinkResolution = c.Resolve(d)
	}
}

func BenchmarkBuiltinParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCatalog(builtinJSON); err != nil {
			b.Fatal(err)
		}
	}
}

var sinkText string

// BenchmarkCost_WithExactText adds what building a CostComputed event costs on top: the exact
// decimal text of every priced component and of the total.
func BenchmarkCost_WithExactText(b *testing.B) {
	r := builtinCatalog(b).Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	u := Usage{Input: 1200, CacheRead: 45_000, CacheCreation: 3000, Output: 850}
	b.ReportAllocs()
	for b.Loop() {
		c, _ := r.Cost(u)
		for _, comp := range c.Components {
			sinkText = comp.Exact()
		}
		sinkText = c.Exact()
	}
}
