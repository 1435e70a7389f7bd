package pricing

import (
	"errors"
	"testing"
)

// FuzzResolve throws arbitrary deployment names, override values and token counts at resolution
// and costing: nothing panics, resolution is deterministic, the provider is never replaced, a cost
// is never negative and always adds up.
func FuzzResolve(f *testing.F) {
	f.Add("bedrock", "bedrock/bedrock/us.anthropic.claude-sonnet-4-6", "", "0.000003", int64(1000), int64(500), int64(200), int64(10))
	f.Add("vertex_ai", "vertex_ai/claude-opus-4-6@default", "", "", int64(250_000), int64(0), int64(0), int64(1))
	f.Add("openai", "openai/command-r-plus", "gpt-4o", "0", int64(1), int64(1), int64(1), int64(1))
	f.Add("", "@", "/", "1e-9", int64(-1), int64(0), int64(0), int64(0))
	f.Add("azure", "azure/us/../eu.-v1:0@", "", "abc", int64(1<<62), int64(1<<62), int64(0), int64(0))
	c, err := Builtin()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, provider, model, baseModel, inputPrice string, input, cacheRead, output, reasoning int64) {
		var o Overrides
		if inputPrice != "" {
			o, _, _ = ParseOverrides(map[string]string{"input_cost_per_token": inputPrice})
		}
		d := Deployment{Provider: provider, Model: model, BaseModel: baseModel, Overrides: o}
		r := c.Resolve(d)
		if r.Provider != provider {
			t.Fatalf("provider %q became %q", provider, r.Provider)
		}
		if again := c.Resolve(d); again.Entry != r.Entry || again.Match != r.Match {
			t.Fatalf("non-deterministic: %q/%s vs %q/%s", r.Entry, r.Match, again.Entry, again.Match)
		}
		u := Usage{Input: input, CacheRead: cacheRead, Output: output, Reasoning: reasoning}
		cost, err := r.Cost(u)
		if err != nil {
			if u.Validate() == nil && !errors.Is(err, ErrCostOverflow) {
				if _, perr := u.PromptTokens(); perr == nil {
					t.Fatalf("valid usage %+v: %v", u, err)
				}
			}
			return
		}
		if cost.Total < 0 {
			t.Fatalf("negative cost %d", cost.Total)
		}
		checkConsistent(t, cost)
		if b, unknown, err := r.UpperBound(input+cacheRead, output+reasoning); err == nil && len(unknown) == 0 && cost.Status == StatusPriced && b < cost.Total {
			t.Fatalf("bound %d below cost %d", b, cost.Total)
		}
	})
}
