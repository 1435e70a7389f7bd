package pricing

import (
	"errors"
	"math"
	"math/big"

	"github.com/spendledger/spendledger/ledger/money"
)

// Status says whether every billed component of a cost had a price.
type Status string

const (
	StatusPriced   Status = "PRICED"
	StatusUnpriced Status = "UNPRICED" // some component with tokens has no known price
)

// Component is one kind of tokens in a cost.
type Component struct {
	Kind      Kind
	Name      string // Kind.String(): "input", "cache_read", ...
	Tokens    int64
	Known     bool   // the price is known; when false, UnitPrice and Exact() are "" and Nanos is 0
	UnitPrice string // exact USD per token
	// Field is the price field that supplied UnitPrice, or that would have to be set when the
	// price is unknown. It records the fallbacks: a tier price ("..._above_200k_tokens"), or
	// reasoning billed at the output price ("output_cost_per_token").
	Field string
	Rule  string      // RuleOverride, RuleCatalogPrefix+entry, or RuleUnknown
	Nanos money.Nanos // this component's share of Total (see Cost)
	exact exactUSD    // Tokens × UnitPrice
}

// Exact returns the component's exact cost in USD as decimal text (Tokens × UnitPrice, never
// rounded), or "" when the price is unknown. The text is made on demand: the hot path that only
// needs nanos does not pay for formatting.
func (c Component) Exact() string {
	if !c.Known {
		return ""
	}
	return c.exact.String()
}

// Cost is the priced breakdown of one event.
type Cost struct {
	Status Status
	// Total is the exact sum of the known components rounded half-to-even, once, to nanos.
	Total      money.Nanos
	Components [NumKinds]Component
	// Unknown names the components that have tokens but no price. They are excluded from Total
	// and never reported as zero: Status is UNPRICED and the event is flagged, not waved through.
	Unknown   []string
	TierAbove int64 // the threshold of the prompt-size tier applied; 0 when base prices applied
	exact     exactUSD
}

// Exact returns the exact sum of the known components in USD as decimal text, before rounding.
func (c Cost) Exact() string { return c.exact.String() }

// exactUSD is an exact non-negative amount: atto-USD in 128 bits, or a rational when a price is
// finer than an atto-USD.
type exactUSD struct {
	atto u128
	rat  *big.Rat
}

func (e exactUSD) String() string {
	if e.rat != nil {
		s, _ := money.FormatDecimal(e.rat) // terminating: decimal prices times integers
		return s
	}
	return e.atto.decimal()
}

// ErrCostOverflow reports a cost beyond int64 nanos (about 9.2 billion dollars).
var ErrCostOverflow = errors.New("pricing: cost overflows int64 nano-USD")

// Cost prices one event's usage.
//
// The prompt size (Usage.PromptTokens) selects the tier: past a threshold (strictly; from it for
// xAI), every kind is billed at its tier price where the resolution has one, else its base price.
// Each component's exact cost is Tokens × UnitPrice; Total is their exact sum rounded
// half-to-even once. Component Nanos are then allocated by the largest-remainder method: each
// gets the floor of its exact nanos, and the nanos the rounded total still lacks go, one each,
// to the components with the largest remainders (ties to the earlier Kind). So the consistency
// rule holds exactly: sum(Components[i].Nanos) == Total, and no component's Nanos differs from
// its exact cost by a nano or more.
func (r Resolution) Cost(u Usage) (Cost, error) {
	prompt, err := u.PromptTokens()
	if err != nil {
		return Cost{}, err
	}
	g := r.table().regimeFor(prompt)
	c := Cost{TierAbove: g.above}
	fast := true
	for k := range Kind(NumKinds) {
		s := &g.slots[k]
		n := u.Tokens(k)
		comp := &c.Components[k]
		*comp = Component{Kind: k, Name: kindNames[k], Tokens: n, Field: s.field, Rule: s.rule}
		if !s.price.Known() {
			if n > 0 {
				c.Unknown = append(c.Unknown, kindNames[k])
			}
			continue
		}
		comp.Known = true
		comp.UnitPrice = s.price.v.text
		fast = fast && s.price.v.fast
	}
	if fast {
		err = c.priceFast(g)
	} else {
		err = c.priceExact(g)
	}
	if err != nil {
		return Cost{}, err
	}
	c.Status = StatusPriced
	if len(c.Unknown) > 0 {
		c.Status = StatusUnpriced
	}
	return c, nil
}

// priceFast is priceExact in 128-bit integers of atto-USD, for prices that are whole atto-USD.
func (c *Cost) priceFast(g *regime) error {
	var parts [NumKinds]u128
	var sum u128
	for k := range c.Components {
		comp := &c.Components[k]
		if !comp.Known {
			continue
		}
		parts[k] = mul64(uint64(comp.Tokens), g.slots[k].price.v.atto)
		var carry bool
		if sum, carry = sum.add(parts[k]); carry || !sum.fitsNanos() {
			return ErrCostOverflow
		}
	}
	q, rem := sum.divNano()
	total := roundHalfEven(q, rem)
	if total > math.MaxInt64 {
		return ErrCostOverflow
	}
	var rems [NumKinds]uint64
	var floors uint64
	for k := range c.Components {
		comp := &c.Components[k]
		if !comp.Known {
			continue
		}
		q, rems[k] = parts[k].divNano()
		comp.Nanos = money.Nanos(q)
		floors += q
		comp.exact.atto = parts[k]
	}
	for extra := total - floors; extra > 0; extra-- {
		best := -1
		for k, rem := range rems {
			if rem > 0 && (best < 0 || rem > rems[best]) {
				best = k
			}
		}
		c.Components[best].Nanos++
		rems[best] = 0
	}
	c.Total = money.Nanos(total)
	c.exact.atto = sum
	return nil
}

var ratNanosPerUSD = new(big.Rat).SetInt64(int64(money.PerDollar))

// priceExact computes the cost with big.Rat; see Cost for the rules.
func (c *Cost) priceExact(g *regime) error {
	sum := new(big.Rat)
	var rems [NumKinds]*big.Rat
	var floors int64
	for k := range c.Components {
		comp := &c.Components[k]
		if !comp.Known {
			continue
		}
		exact := new(big.Rat).Mul(new(big.Rat).SetInt64(comp.Tokens), g.slots[k].price.v.rat)
		sum.Add(sum, exact)
		comp.exact.rat = exact
		nanos := new(big.Rat).Mul(exact, ratNanosPerUSD)
		q, m := new(big.Int).QuoRem(nanos.Num(), nanos.Denom(), new(big.Int)) // floor: non-negative
		if !q.IsInt64() {
			return ErrCostOverflow
		}
		comp.Nanos = money.Nanos(q.Int64())
		floors += q.Int64()
		rems[k] = new(big.Rat).SetFrac(m, nanos.Denom())
	}
	total, err := money.FromRat(sum)
	if err != nil {
		return ErrCostOverflow
	}
	for extra := int64(total) - floors; extra > 0; extra-- {
		best := -1
		for k, rem := range rems {
			if rem != nil && rem.Sign() > 0 && (best < 0 || rem.Cmp(rems[best]) > 0) {
				best = k
			}
		}
		c.Components[best].Nanos++
		rems[best] = nil
	}
	c.Total = total
	c.exact.rat = sum
	return nil
}
