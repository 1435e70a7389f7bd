package pricing

import (
	"math/big"
	"math/rand"
	"testing"

	"github.com/spendledger/spendledger/ledger/money"
)

// propertyDeployments cover every pricing shape: 200k/272k/128k tiers (one inclusive), 1h cache
// writes, regional uplift, prices finer than atto-USD (exact path), fractional nanos, and
// overrides mixed with an entry.
var propertyDeployments = []Deployment{
	{Provider: "anthropic", Model: "claude-sonnet-4-5"},
	{Provider: "bedrock", Model: "bedrock/bedrock/us.anthropic.claude-sonnet-4-6"},
	{Provider: "openai", Model: "gpt-5.4"},
	{Provider: "openai", Model: "gpt-4o"},
	{Provider: "vertex_ai", Model: "gemini-2.5-pro"},
	{Provider: "xai", Model: "xai/grok-4-1-fast"},
	{Provider: "databricks", Model: "databricks/databricks-claude-3-7-sonnet"},
	{Provider: "bedrock", Model: "amazon.nova-2-pro-preview-20251202-v1:0"},
	{Provider: "dashscope", Model: "dashscope/qwen-turbo"},
}

func randomUsage(rng *rand.Rand) Usage {
	n := func() int64 {
		switch rng.Intn(4) {
		case 0:
			return 0
		case 1:
			return rng.Int63n(1000)
		default:
			return rng.Int63n(150_000)
		}
	}
	return Usage{Input: n(), CacheRead: n(), CacheCreation: n(), CacheCreation1h: n(), Output: n(), Reasoning: n()}
}

func withTokens(u Usage, k Kind, n int64) Usage {
	switch k {
	case KindInput:
		u.Input = n
	case KindOutput:
		u.Output = n
	case KindCacheRead:
		u.CacheRead = n
	case KindCacheCreation:
		u.CacheCreation = n
	case KindCacheCreation1h:
		u.CacheCreation1h = n
	case KindReasoning:
		u.Reasoning = n
	}
	return u
}

// Cost never decreases when any token count grows, including across a tier threshold (every
// tier in the catalog prices each kind at least at its base price).
func TestCost_NeverDecreasesWhenTokensGrow(t *testing.T) {
	c := builtinCatalog(t)
	rng := rand.New(rand.NewSource(1))
	for _, d := range propertyDeployments {
		r := c.Resolve(d)
		for range 2000 {
			u := randomUsage(rng)
			before := mustCost(t, r, u)
			k := Kind(rng.Intn(NumKinds))
			grown := withTokens(u, k, u.Tokens(k)+1+rng.Int63n(100_000))
			after := mustCost(t, r, grown)
			if after.Total < before.Total {
				t.Fatalf("%s: growing %s %+v -> %+v lowered cost %d -> %d", d.Model, k, u, grown, before.Total, after.Total)
			}
		}
	}
}

// Every cost, on either arithmetic path, equals the big.Rat computation from its own unit prices,
// rounded once; components add up to the total; no component is a nano or more off its exact
// share; nothing is negative.
func TestCost_MatchesExactRationalArithmetic(t *testing.T) {
	c := builtinCatalog(t)
	rng := rand.New(rand.NewSource(2))
	deployments := append(propertyDeployments, Deployment{Model: "sub-nano", Overrides: overrides(t, map[string]string{
		"input_cost_per_token": "0.0000000003", "output_cost_per_token": "0.0000000007",
		"cache_read_input_token_cost": "0.00000000011", "cache_creation_input_token_cost": "0.0000000005",
	})})
	for _, d := range deployments {
		r := c.Resolve(d)
		for range 1000 {
			u := randomUsage(rng)
			cost := mustCost(t, r, u)
			checkConsistent(t, cost)
			sum := new(big.Rat)
			for _, comp := range cost.Components {
				if !comp.Known {
					continue
				}
				unit, err := money.ParseDecimal(comp.UnitPrice)
				if err != nil {
					t.Fatal(err)
				}
				exact := new(big.Rat).Mul(unit, new(big.Rat).SetInt64(comp.Tokens))
				if got, _ := money.ParseDecimal(comp.Exact()); got.Cmp(exact) != 0 {
					t.Fatalf("%s %s: exact %s, want %s", d.Model, comp.Name, comp.Exact(), exact.FloatString(24))
				}
				off := new(big.Rat).Sub(new(big.Rat).Mul(exact, big.NewRat(int64(money.PerDollar), 1)), big.NewRat(int64(comp.Nanos), 1))
				if off.Abs(off).Cmp(big.NewRat(1, 1)) >= 0 {
					t.Fatalf("%s %s: nanos %d is a nano or more off %s", d.Model, comp.Name, comp.Nanos, exact.FloatString(12))
				}
				sum.Add(sum, exact)
			}
			want, err := money.FromRat(sum)
			if err != nil || cost.Total != want || cost.Total < 0 {
				t.Fatalf("%s %+v: total %d, want %d", d.Model, u, cost.Total, want)
			}
		}
	}
}
