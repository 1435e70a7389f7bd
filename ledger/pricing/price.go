package pricing

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/spendledger/spendledger/ledger/money"
)

// Price is an exact USD price per token, or unknown. The zero value is unknown, so a field that
// nobody set can never read as free: LiteLLM's issue 30198 was exactly that confusion, a missing
// price synthesized as 0 and then trusted as "explicitly free".
//
// A Price is immutable and cheap to copy; everything it points to is shared read-only.
type Price struct {
	v *priceValue
}

type priceValue struct {
	rat  *big.Rat // exact USD per token; never mutated after construction
	text string   // exact decimal text of rat, for events and display
	// atto is the price in 1e-18 USD when that is an exact integer below 2^64 (all but a handful
	// of catalog prices). It lets Cost multiply in 128-bit integers instead of big.Rat.
	atto uint64
	fast bool
}

// ErrNegativePrice reports a price below zero. Costs are never negative.
var ErrNegativePrice = errors.New("pricing: negative price")

// Unknown returns the unknown price (the zero Price).
func Unknown() Price { return Price{} }

// ParsePrice parses exact decimal text such as "0.000003", "3e-06" or "0" (free).
func ParsePrice(s string) (Price, error) {
	r, err := money.ParseDecimal(s)
	if err != nil {
		return Price{}, err
	}
	return newPrice(r)
}

// PriceFromRat returns a Price holding a copy of r, which must be a non-negative terminating
// decimal (every price written as decimal text is one).
func PriceFromRat(r *big.Rat) (Price, error) {
	if r == nil {
		return Price{}, errors.New("pricing: nil price")
	}
	return newPrice(new(big.Rat).Set(r))
}

// newPrice takes ownership of r.
func newPrice(r *big.Rat) (Price, error) {
	if r.Sign() < 0 {
		return Price{}, fmt.Errorf("%w: %s", ErrNegativePrice, r.RatString())
	}
	text, err := money.FormatDecimal(r)
	if err != nil {
		return Price{}, fmt.Errorf("pricing: price: %w", err)
	}
	v := &priceValue{rat: r, text: text}
	v.atto, v.fast = toAtto(r)
	return Price{v: v}, nil
}

var bigAttoPerUSD = new(big.Int).SetUint64(attoPerUSD)

func toAtto(r *big.Rat) (uint64, bool) {
	q, rem := new(big.Int).QuoRem(new(big.Int).Mul(r.Num(), bigAttoPerUSD), r.Denom(), new(big.Int))
	if rem.Sign() != 0 || !q.IsUint64() {
		return 0, false
	}
	return q.Uint64(), true
}

// Known reports whether the price is set (possibly to zero).
func (p Price) Known() bool { return p.v != nil }

// IsFree reports whether the price is known and exactly zero: only an explicit "0" is free.
func (p Price) IsFree() bool { return p.v != nil && p.v.rat.Sign() == 0 }

// Rat returns a copy of the exact price, or nil when unknown.
func (p Price) Rat() *big.Rat {
	if p.v == nil {
		return nil
	}
	return new(big.Rat).Set(p.v.rat)
}

// String returns the exact decimal text ("0.000003"), or "unknown".
func (p Price) String() string {
	if p.v == nil {
		return "unknown"
	}
	return p.v.text
}

// Equal reports whether both prices are unknown or both are known and numerically equal.
func (p Price) Equal(q Price) bool {
	if p.v == nil || q.v == nil {
		return p.v == q.v
	}
	return p.v.rat.Cmp(q.v.rat) == 0
}

// cmp orders known prices; callers check Known first.
func (p Price) cmp(q Price) int {
	if p.v.fast && q.v.fast { // exact integers: no big.Rat cross-multiplication needed
		return cmp.Compare(p.v.atto, q.v.atto)
	}
	return p.v.rat.Cmp(q.v.rat)
}

// maxTokenCount guards against absurd thresholds in field names ("above_99999999999999999k").
const maxTokenCount = math.MaxInt64 / 1000
