package pricing

import (
	"fmt"
	"strings"
)

// Deployment is what resolution needs to know about one configured deployment.
type Deployment struct {
	Provider  string    // the provider the operator configured (LiteLLM custom_llm_provider); always kept
	Model     string    // backend model, litellm_params.model, e.g. "vertex_ai/claude-opus-4-6@default"
	BaseModel string    // model_info.base_model: when set, names the catalog entry explicitly
	Overrides Overrides // the deployment's own price fields
}

// Match says how a Resolution found its catalog entry.
type Match string

const (
	MatchExact            Match = "exact"             // the model name is a catalog key
	MatchProviderPrefixed Match = "provider_prefixed" // "<provider>/<model>" is a catalog key
	MatchCanonical        Match = "canonical"         // a canonical form of the name is (see candidates)
	MatchBaseModel        Match = "base_model"        // Deployment.BaseModel named it
	MatchNone             Match = "none"              // no entry: prices come from overrides only
)

// Rule strings record where a price came from, in resolutions, costs and events.
const (
	RuleOverride      = "deployment_override"
	RuleUnknown       = "unknown"
	RuleCatalogPrefix = "catalog:" // followed by the entry name
)

// Resolution is a deployment's prices, resolved against one catalog: every price field with the
// rule that supplied it. It is a value computed by a pure function: resolving the same
// deployment against the same catalog always gives the same Resolution, and never changes the
// catalog (LiteLLM's re-registration wrote synthesized zeros back into its shared map; issue
// 30198). Resolutions are immutable and safe to share between goroutines.
type Resolution struct {
	Provider  string // Deployment.Provider, verbatim: resolution never changes the provider
	Model     string
	BaseModel string

	Entry         string // matched catalog entry, "" when none
	EntryProvider string // the entry's litellm_provider; informational only
	Match         Match

	// MaxOutputTokens is the entry's max_output_tokens (else its legacy max_tokens), for budget
	// estimates of requests without max_tokens; 0 when unknown.
	MaxOutputTokens int64
	MaxInputTokens  int64

	CatalogVersion string
	Notes          []string // why an entry or a price was not found, for operators

	t *table
}

// ResolvedPrice is one price field of a Resolution and the rule that supplied it.
type ResolvedPrice struct {
	Field string // LiteLLM field name
	Kind  Kind
	Above int64 // tier threshold in prompt tokens; 0 for the base price
	Price Price
	Rule  string // RuleOverride, RuleCatalogPrefix+entry, or RuleUnknown
}

// Resolve resolves a deployment's prices:
//
//  1. Find the catalog entry: Deployment.BaseModel if given (its name and canonical forms, and
//     nothing else: an explicit base model that is missing is reported, not guessed around),
//     else the model's exact name, then with the provider prefixed, then canonical forms.
//  2. Take each price field from the deployment's overrides if set there (an explicit "0" is
//     free), else from the entry. A field set in neither stays Unknown.
//
// The entry's litellm_provider never replaces the deployment's provider: an
// "openai/command-r-plus" deployment may borrow the Cohere entry's prices but stays "openai".
func (c *Catalog) Resolve(d Deployment) Resolution {
	r := Resolution{
		Provider:       d.Provider,
		Model:          d.Model,
		BaseModel:      d.BaseModel,
		Match:          MatchNone,
		CatalogVersion: c.Version(),
	}
	var e *Entry
	if d.BaseModel != "" {
		if e, _ = c.find(d.Provider, d.BaseModel); e != nil {
			r.Match = MatchBaseModel
		} else {
			r.Notes = append(r.Notes, fmt.Sprintf("base_model %q is not in the catalog; model %q is not used in its place", d.BaseModel, d.Model))
		}
	} else {
		e, r.Match = c.find(d.Provider, d.Model)
		if e == nil {
			r.Notes = append(r.Notes, fmt.Sprintf("model %q is not in the catalog under any canonical name", d.Model))
		}
	}
	if e != nil {
		r.Entry, r.EntryProvider = e.Name, e.Provider
		r.MaxInputTokens = e.MaxInputTokens
		r.MaxOutputTokens = e.MaxOutputTokens
		if r.MaxOutputTokens == 0 {
			r.MaxOutputTokens = e.MaxTokens
		}
	}
	// xAI bills its higher tier from the threshold itself (LiteLLM does the same); everyone else
	// from the first token past it.
	inclusive := strings.EqualFold(d.Provider, "xai") || (e != nil && e.Provider == "xai")
	r.t = newTable(d.Overrides.sheet, e, inclusive)
	for _, p := range r.t.prices {
		if p.Above == 0 && !p.Price.Known() && (p.Kind == KindInput || p.Kind == KindOutput) {
			r.Notes = append(r.Notes, fmt.Sprintf("%s is unknown: set it on the deployment or in a catalog file", p.Field))
		}
	}
	return r
}

func (c *Catalog) find(provider, model string) (*Entry, Match) {
	if c == nil || model == "" {
		return nil, MatchNone
	}
	for _, cand := range candidates(provider, model) {
		if e := c.lookup(cand.name); e != nil {
			return e, cand.match
		}
	}
	return nil, MatchNone
}

// Prices returns every price field of the resolution: all base fields (Unknown ones included,
// so a report shows what is missing) and every tier field set anywhere.
func (r Resolution) Prices() []ResolvedPrice {
	return append([]ResolvedPrice(nil), r.table().prices...)
}

// Price returns one field of the resolution; an unsupported or unset field is Unknown.
func (r Resolution) Price(field string) ResolvedPrice {
	for _, p := range r.table().prices {
		if p.Field == field {
			return p
		}
	}
	ref, _ := parseField(field)
	return ResolvedPrice{Field: field, Kind: ref.kind, Above: ref.above, Rule: RuleUnknown}
}

func (r Resolution) table() *table {
	if r.t == nil {
		return emptyTable
	}
	return r.t
}
