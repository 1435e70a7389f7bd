package money

import (
	"errors"
	"fmt"
	"math/big"
)

var bigPerDollar = big.NewInt(int64(PerDollar))

// ErrSubNano reports an amount that is not a whole number of nanos and that the caller asked not
// to round.
var ErrSubNano = errors.New("money: amount has sub-nano precision")

// ErrNegative reports a negative amount where only zero or more makes sense (a budget limit).
var ErrNegative = errors.New("money: amount is negative")

// ParseDollars converts decimal dollar text ("1.00", "50", "0.000000001", "-2.5", or a
// json.Number's text such as "1e-3") to Nanos exactly. It never rounds: text with precision
// finer than a nano is ErrSubNano, and amounts beyond int64 are ErrOverflow.
func ParseDollars(s string) (Nanos, error) {
	r, err := ParseDecimal(s)
	if err != nil {
		return 0, err
	}
	nanos := new(big.Rat).Mul(r, new(big.Rat).SetInt(bigPerDollar))
	if !nanos.IsInt() {
		return 0, fmt.Errorf("money: parse dollars %q: %w", s, ErrSubNano)
	}
	if !nanos.Num().IsInt64() {
		return 0, fmt.Errorf("money: parse dollars %q: %w", s, ErrOverflow)
	}
	return Nanos(nanos.Num().Int64()), nil
}

// ParseLimit is ParseDollars for budget limits, which may not be negative: a negative limit
// would deny everything while looking like a configuration that merely "has a budget".
func ParseLimit(s string) (Nanos, error) {
	n, err := ParseDollars(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("money: limit %q: %w", s, ErrNegative)
	}
	return n, nil
}

// FromRat converts an exact dollar amount to Nanos, rounding half-to-even. This is the one
// rounding an event's cost goes through: callers sum exact component costs first and round the
// sum here, once. Half-to-even (banker's rounding) has no upward bias, so rounding across
// millions of events does not drift in the provider's or the customer's favour.
func FromRat(dollars *big.Rat) (Nanos, error) {
	return fromRat(dollars, roundHalfEven)
}

// CeilRat converts an exact dollar amount to Nanos rounding toward +∞. Admission uses it for
// upper-bound estimates, where rounding down could admit a request the budget cannot cover.
func CeilRat(dollars *big.Rat) (Nanos, error) {
	return fromRat(dollars, roundCeil)
}

type roundingMode int

const (
	roundHalfEven roundingMode = iota
	roundCeil
)

func fromRat(dollars *big.Rat, mode roundingMode) (Nanos, error) {
	if dollars == nil {
		return 0, errors.New("money: nil rational")
	}
	num := new(big.Int).Mul(dollars.Num(), bigPerDollar)
	den := dollars.Denom()
	// Euclidean division: q = floor(num/den) since den > 0, and 0 <= rem < den.
	q, rem := new(big.Int).DivMod(num, den, new(big.Int))
	if rem.Sign() != 0 {
		switch mode {
		case roundCeil:
			q.Add(q, bigOne)
		case roundHalfEven:
			// Compare the remainder with half the denominator without dividing: 2·rem vs den.
			switch new(big.Int).Lsh(rem, 1).Cmp(den) {
			case 1:
				q.Add(q, bigOne)
			case 0:
				if q.Bit(0) == 1 {
					q.Add(q, bigOne)
				}
			}
		}
	}
	if !q.IsInt64() {
		return 0, ErrOverflow
	}
	return Nanos(q.Int64()), nil
}
