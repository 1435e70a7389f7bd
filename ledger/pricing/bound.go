package pricing

import (
	"math"
	"math/big"

	"github.com/spendledger/spendledger/ledger/money"
)

// UpperBound bounds the cost of a request before it runs, for admission: promptTokens of
// prompt and at most maxOutputTokens of completion.
//
// However the prompt splits into uncached, cached and cache-written tokens, each prompt token
// costs at most the largest prompt-side price that applies at that prompt size (input, cache
// read, cache writes, tier prices past a threshold), and each completion token at most
// max(output, reasoning). The bound is that, rounded up to whole nanos. It holds when the
// actual prompt has promptTokens tokens (a larger actual prompt can cross into a dearer tier).
//
// unknown names "input" and/or "output" when that price is unknown; the amount then covers only
// the known parts and is not a bound, and admission must treat the request as unpriced. Cache
// prices that are unknown are not listed: the request may not use them, and if it does the
// settled Cost says UNPRICED.
func (r Resolution) UpperBound(promptTokens, maxOutputTokens int64) (bound money.Nanos, unknown []string, err error) {
	if promptTokens < 0 || maxOutputTokens < 0 {
		return 0, nil, ErrNegativeTokens
	}
	g := r.table().regimeFor(promptTokens)
	if !g.inKnown {
		unknown = append(unknown, kindNames[KindInput])
	}
	if !g.outKnown {
		unknown = append(unknown, kindNames[KindOutput])
	}
	if fastOrUnknown(g.in) && fastOrUnknown(g.out) {
		var sum u128
		if g.in.Known() {
			sum = mul64(uint64(promptTokens), g.in.v.atto)
		}
		if g.out.Known() {
			var carry bool
			if sum, carry = sum.add(mul64(uint64(maxOutputTokens), g.out.v.atto)); carry {
				return 0, nil, ErrCostOverflow
			}
		}
		if !sum.fitsNanos() {
			return 0, nil, ErrCostOverflow
		}
		q, rem := sum.divNano()
		if rem != 0 {
			q++
		}
		if q > math.MaxInt64 {
			return 0, nil, ErrCostOverflow
		}
		return money.Nanos(q), unknown, nil
	}
	total := new(big.Rat)
	if g.in.Known() {
		total.Add(total, new(big.Rat).Mul(new(big.Rat).SetInt64(promptTokens), g.in.v.rat))
	}
	if g.out.Known() {
		total.Add(total, new(big.Rat).Mul(new(big.Rat).SetInt64(maxOutputTokens), g.out.v.rat))
	}
	if bound, err = money.CeilRat(total); err != nil {
		return 0, nil, ErrCostOverflow
	}
	return bound, unknown, nil
}

func fastOrUnknown(p Price) bool { return !p.Known() || p.v.fast }
