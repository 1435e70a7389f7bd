package pricing

import (
	"cmp"
	"slices"
)

// table is a Resolution's precomputed pricing, built once so that Cost and UpperBound only pick a
// regime and multiply.
type table struct {
	prices    []ResolvedPrice
	regimes   []regime // base first, then each active tier, ascending by threshold
	inclusive bool     // a tier applies from its threshold itself (xAI), not strictly above
}

// regime is the effective price of every kind when one tier (or none) applies, after fallbacks.
type regime struct {
	above int64 // 0 for base prices
	slots [NumKinds]slot
	// The largest prompt-side and completion-side prices, for UpperBound.
	in, out           Price
	inKnown, outKnown bool
}

// slot is one effective price and its provenance.
type slot struct {
	price Price
	field string // the field that supplied price, or that would have to be set when unknown
	rule  string
}

var emptyTable = newTable(PriceSheet{}, nil, false)

// newTable merges overrides over the entry field by field and derives the pricing regimes.
//
// Tier semantics follow LiteLLM's catalog: a tier exists when its input price is known; when the
// prompt is past the threshold, every kind uses its tier price where one is set and its base price
// where not. The 1-hour cache write never falls back to the 5-minute price (that would bill
// 1.25x input for what costs 2x); without its own price it is unknown. Reasoning without its own
// price is billed at the output price, which is what providers that do not list it charge.
func newTable(ov PriceSheet, e *Entry, inclusive bool) *table {
	var cat PriceSheet
	catRule := ""
	if e != nil {
		cat, catRule = e.Prices, RuleCatalogPrefix+e.Name
	}
	pick := func(f fieldRef) slot {
		if p, label := ov.get(f); p.Known() {
			f.label = label
			return slot{p, f.name(), RuleOverride}
		}
		if p, label := cat.get(f); p.Known() {
			f.label = label
			return slot{p, f.name(), catRule}
		}
		return slot{Price{}, f.name(), RuleUnknown}
	}

	tiers := mergedTiers(ov, cat)
	t := &table{
		inclusive: inclusive,
		prices:    make([]ResolvedPrice, 0, NumKinds*(1+len(tiers))),
		regimes:   make([]regime, 0, 1+len(tiers)),
	}
	var base [NumKinds]slot
	for k := range Kind(NumKinds) {
		base[k] = pick(fieldRef{kind: k})
		t.prices = append(t.prices, ResolvedPrice{Field: base[k].field, Kind: k, Price: base[k].price, Rule: base[k].rule})
	}
	t.regimes = append(t.regimes, newRegime(0, base, base))

	for _, tier := range tiers {
		var raw [NumKinds]slot
		for k := range Kind(NumKinds) {
			raw[k] = pick(fieldRef{kind: k, above: tier.AbovePromptTokens, label: tier.Label})
			if raw[k].price.Known() {
				t.prices = append(t.prices, ResolvedPrice{Field: raw[k].field, Kind: k, Above: tier.AbovePromptTokens, Price: raw[k].price, Rule: raw[k].rule})
			}
		}
		if raw[KindInput].price.Known() {
			t.regimes = append(t.regimes, newRegime(tier.AbovePromptTokens, raw, base))
		}
	}
	return t
}

func newRegime(above int64, tier, base [NumKinds]slot) regime {
	g := regime{above: above}
	for k := range Kind(NumKinds) {
		g.slots[k] = tier[k]
		if !g.slots[k].price.Known() {
			g.slots[k] = base[k]
		}
	}
	if !g.slots[KindReasoning].price.Known() {
		g.slots[KindReasoning] = g.slots[KindOutput]
	}
	g.inKnown = g.slots[KindInput].price.Known()
	g.outKnown = g.slots[KindOutput].price.Known()
	g.in = maxKnown(g.slots[KindInput].price, g.slots[KindCacheRead].price, g.slots[KindCacheCreation].price, g.slots[KindCacheCreation1h].price)
	g.out = maxKnown(g.slots[KindOutput].price, g.slots[KindReasoning].price)
	return g
}

func maxKnown(ps ...Price) Price {
	var m Price
	for _, p := range ps {
		if p.Known() && (!m.Known() || p.cmp(m) > 0) {
			m = p
		}
	}
	return m
}

// mergedTiers lists the thresholds either sheet prices, ascending, labelled as the overrides
// spell them when both do.
func mergedTiers(a, b PriceSheet) []Tier {
	out := slices.Clone(a.Tiers)
	for _, t := range b.Tiers {
		if a.tier(t.AbovePromptTokens) == nil {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(x, y Tier) int { return cmp.Compare(x.AbovePromptTokens, y.AbovePromptTokens) })
	return out
}

// regimeFor picks the prices for a prompt of the given size: the highest tier it exceeds.
func (t *table) regimeFor(promptTokens int64) *regime {
	for i := len(t.regimes) - 1; i > 0; i-- {
		above := t.regimes[i].above
		if promptTokens > above || (t.inclusive && promptTokens == above) {
			return &t.regimes[i]
		}
	}
	return &t.regimes[0]
}
