package pricing

import (
	"cmp"
	"slices"
)

// Rates holds one price per Kind, indexed by Kind.
type Rates [NumKinds]Price

// Tier holds the prices that apply when a request's prompt is larger than a threshold.
type Tier struct {
	// AbovePromptTokens is the threshold: the tier applies when the prompt (all prompt-side
	// tokens, cached or not) is strictly larger (see Resolution.Cost for the one exception).
	AbovePromptTokens int64
	// Label is the threshold as the field names spell it ("200k").
	Label string
	Rates Rates
}

// PriceSheet is a set of per-token prices: the base rates and any prompt-size tiers. A price not
// set is Unknown. A catalog entry, a deployment's overrides and a resolution each carry one.
type PriceSheet struct {
	Base  Rates
	Tiers []Tier // ascending by AbovePromptTokens, one per threshold
}

// Price returns the price stored under a LiteLLM field name, or Unknown when the field is not
// set or not a supported per-token price field.
func (s PriceSheet) Price(field string) Price {
	f, ok := parseField(field)
	if !ok {
		return Price{}
	}
	p, _ := s.get(f)
	return p
}

// Fields returns the LiteLLM field names of every known price, base first then tiers ascending.
func (s PriceSheet) Fields() []string {
	var out []string
	for k := range Kind(NumKinds) {
		if s.Base[k].Known() {
			out = append(out, k.Field())
		}
	}
	for _, t := range s.Tiers {
		for k := range Kind(NumKinds) {
			if t.Rates[k].Known() {
				out = append(out, k.TierField(t.Label))
			}
		}
	}
	return out
}

// get returns the price at f and the label of the tier that stored it (thresholds can be
// spelled two ways, "200k" and "200000", but are one tier).
func (s *PriceSheet) get(f fieldRef) (Price, string) {
	if f.above == 0 {
		return s.Base[f.kind], ""
	}
	if t := s.tier(f.above); t != nil {
		return t.Rates[f.kind], t.Label
	}
	return Price{}, ""
}

func (s *PriceSheet) tier(above int64) *Tier {
	i, found := slices.BinarySearchFunc(s.Tiers, above, func(t Tier, above int64) int {
		return cmp.Compare(t.AbovePromptTokens, above)
	})
	if !found {
		return nil
	}
	return &s.Tiers[i]
}

// set stores p at f, creating the tier if needed. It reports false, storing nothing, when f is
// already set: a duplicate is a conflict for the caller to report, not something to overwrite
// silently.
func (s *PriceSheet) set(f fieldRef, p Price) bool {
	if f.above == 0 {
		if s.Base[f.kind].Known() {
			return false
		}
		s.Base[f.kind] = p
		return true
	}
	i, found := slices.BinarySearchFunc(s.Tiers, f.above, func(t Tier, above int64) int {
		return cmp.Compare(t.AbovePromptTokens, above)
	})
	if !found {
		s.Tiers = slices.Insert(s.Tiers, i, Tier{AbovePromptTokens: f.above, Label: f.label})
	}
	if s.Tiers[i].Rates[f.kind].Known() {
		return false
	}
	s.Tiers[i].Rates[f.kind] = p
	return true
}

// clone copies the tier slice so a caller holding the copy cannot reach shared state.
func (s PriceSheet) clone() PriceSheet {
	s.Tiers = slices.Clone(s.Tiers)
	return s
}

func (s PriceSheet) empty() bool {
	for _, p := range s.Base {
		if p.Known() {
			return false
		}
	}
	return len(s.Tiers) == 0
}
