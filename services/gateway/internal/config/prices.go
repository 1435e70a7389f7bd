package config

import (
	"fmt"
	"sort"
)

// Map returns the set price fields keyed by LiteLLM field name, values the
// exact decimal text from the file. Unset fields are absent (inherit from the
// catalog), never "0".
func (p Prices) Map() map[string]string {
	m := map[string]string{}
	for _, f := range p.fields() {
		if *f.v != nil {
			m[f.name] = string(**f.v)
		}
	}
	return m
}

type priceField struct {
	name string
	v    **Decimal
}

func (p *Prices) fields() []priceField {
	return []priceField{
		{"input_cost_per_token", &p.InputCostPerToken},
		{"output_cost_per_token", &p.OutputCostPerToken},
		{"cache_read_input_token_cost", &p.CacheReadInputTokenCost},
		{"cache_creation_input_token_cost", &p.CacheCreationInputTokenCost},
		{"cache_creation_input_token_cost_above_1hr", &p.CacheCreationInputTokenCostAbove1hr},
		{"output_cost_per_reasoning_token", &p.OutputCostPerReasoningToken},
		{"input_cost_per_token_above_200k_tokens", &p.InputCostPerTokenAbove200kTokens},
		{"output_cost_per_token_above_200k_tokens", &p.OutputCostPerTokenAbove200kTokens},
		{"cache_read_input_token_cost_above_200k_tokens", &p.CacheReadInputTokenCostAbove200k},
		{"cache_creation_input_token_cost_above_200k_tokens", &p.CacheCreationInputTokenCostAbove200k},
	}
}

// PriceOverrides merges the price fields a deployment sets in litellm_params
// (LiteLLM's custom pricing) and in model_info (its model registration). LiteLLM
// reads them in different code paths, so an operator may have written either;
// both are honoured. The same field set to two different values is an error
// naming both paths, because silently picking one would bill by a price the
// operator may not have meant.
func (d Deployment) PriceOverrides() (map[string]string, error) {
	a, b := d.LiteLLMParams.Prices.Map(), d.ModelInfo.Prices.Map()
	names := make([]string, 0, len(b))
	for k := range b {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if v, ok := a[k]; ok && v != b[k] {
			return nil, fmt.Errorf("litellm_params.%s (%s) and model_info.%s (%s) disagree; set the price once", k, v, k, b[k])
		}
		a[k] = b[k]
	}
	return a, nil
}
