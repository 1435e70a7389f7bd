package pricing

import (
	"math/rand"
	"slices"
	"testing"
)

func TestUpperBound_UsesLargestApplicablePrices(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	// Base: the dearest prompt-side price is the 1h cache write, 6e-06; output 1.5e-05.
	// 10000 × 0.000006 + 1000 × 0.000015 = 0.06 + 0.015 = 0.075
	b, unknown, err := r.UpperBound(10_000, 1000)
	if err != nil || b != 75_000_000 || len(unknown) != 0 {
		t.Fatalf("base bound: %d %v %v", b, unknown, err)
	}
	// Past 200k: the 1h write above 200k, 1.2e-05; output above 200k 2.25e-05.
	// 250000 × 0.000012 + 1000 × 0.0000225 = 3 + 0.0225 = 3.0225
	b, _, err = r.UpperBound(250_000, 1000)
	if err != nil || b != 3_022_500_000 {
		t.Fatalf("tier bound: %d %v", b, err)
	}
}

func TestUpperBound_UsesReasoningPriceWhenDearer(t *testing.T) {
	// dashscope/qwen-turbo: output 2e-07, reasoning 5e-07, input 5e-08 → 1000 × 0.0000005 = 0.0005
	r := builtinCatalog(t).Resolve(Deployment{Provider: "dashscope", Model: "dashscope/qwen-turbo"})
	b, _, err := r.UpperBound(0, 1000)
	if err != nil || b != 500_000 {
		t.Fatalf("bound %d %v", b, err)
	}
}

func TestUpperBound_RoundsUp(t *testing.T) {
	r := subNano(t, "0.0000000001", "0.0000000001", "0")
	b, _, err := r.UpperBound(1, 0) // 0.1 nano
	if err != nil || b != 1 {
		t.Fatalf("0.1 nano must round up to 1: %d %v", b, err)
	}
}

func TestUpperBound_ReportsUnknownPrices(t *testing.T) {
	r := (*Catalog)(nil).Resolve(Deployment{Model: "unpriced"})
	_, unknown, err := r.UpperBound(100, 100)
	if err != nil || !slices.Equal(unknown, []string{"input", "output"}) {
		t.Fatalf("unknown = %v, %v", unknown, err)
	}
	r = (*Catalog)(nil).Resolve(Deployment{Model: "half", Overrides: overrides(t, map[string]string{"input_cost_per_token": "0.000001"})})
	b, unknown, _ := r.UpperBound(100, 100)
	if !slices.Equal(unknown, []string{"output"}) || b != 100_000 {
		t.Fatalf("half priced: %d %v", b, unknown)
	}
	if _, _, err := r.UpperBound(-1, 0); err == nil {
		t.Fatal("negative prompt must be an error")
	}
}

func TestUpperBound_SlowPathAgrees(t *testing.T) {
	// databricks prices are finer than atto-USD: 1e6 × 0.0000029999900000000002 + 0 = 2.9999900000000002
	r := builtinCatalog(t).Resolve(Deployment{Provider: "databricks", Model: "databricks/databricks-claude-3-7-sonnet"})
	b, _, err := r.UpperBound(1_000_000, 0)
	if err != nil || b != 2_999_990_001 {
		t.Fatalf("ceil of 2,999,990,000.0000002 nanos = %d, %v", b, err)
	}
}

func TestUpperBound_DoesNotAllocateWhenPriced(t *testing.T) {
	r := builtinCatalog(t).Resolve(Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	if n := testing.AllocsPerRun(100, func() { _, _, _ = r.UpperBound(5000, 4096) }); n != 0 {
		t.Fatalf("UpperBound allocates %v times per call", n)
	}
}

// The bound holds for every way the prompt can split into uncached, cached and cache-written
// tokens, and every split of the output cap between output and reasoning.
func TestUpperBound_BoundsEveryCostWithThatPromptSize(t *testing.T) {
	c := builtinCatalog(t)
	rng := rand.New(rand.NewSource(7))
	for _, d := range propertyDeployments {
		r := c.Resolve(d)
		for range 300 {
			prompt := rng.Int63n(400_000)
			maxOut := rng.Int63n(100_000)
			bound, unknown, err := r.UpperBound(prompt, maxOut)
			if err != nil || len(unknown) > 0 {
				t.Fatalf("%s: %v %v", d.Model, unknown, err)
			}
			u := randomSplit(rng, prompt, maxOut)
			cost := mustCost(t, r, u)
			// Kinds this deployment cannot price are moved to plain input, which it can.
			for _, name := range cost.Unknown {
				for k := range Kind(NumKinds) {
					if k.String() == name {
						u.Input += u.Tokens(k)
						u = withTokens(u, k, 0)
					}
				}
			}
			if cost = mustCost(t, r, u); cost.Status != StatusPriced {
				t.Fatalf("%s: still unpriced: %v", d.Model, cost.Unknown)
			}
			if cost.Total > bound {
				t.Fatalf("%s: cost %d exceeds bound %d for %+v", d.Model, cost.Total, bound, u)
			}
		}
	}
}

func randomSplit(rng *rand.Rand, prompt, maxOut int64) Usage {
	var u Usage
	cuts := []int64{rng.Int63n(prompt + 1), rng.Int63n(prompt + 1), rng.Int63n(prompt + 1)}
	slices.Sort(cuts)
	u.Input, u.CacheRead, u.CacheCreation, u.CacheCreation1h = cuts[0], cuts[1]-cuts[0], cuts[2]-cuts[1], prompt-cuts[2]
	out := rng.Int63n(maxOut + 1)
	u.Reasoning = rng.Int63n(out + 1)
	u.Output = out - u.Reasoning
	return u
}
