package thresholds

import (
	"fmt"
	"math/big"

	"github.com/spendledger/spendledger/ledger/money"
)

// Crossed returns the thresholds that spent has reached on a budget of
// limit: every t with spent ≥ t × limit, compared exactly (t is a decimal
// fraction, never a float), in the order given. Reaching a threshold
// exactly counts: $8 of $10 has crossed "0.8".
//
// Nothing is crossed while nothing is spent, so a $0 budget (which admits
// nothing) does not report every threshold before its first cent. A
// threshold that is not a decimal is an error: the store holds canonical
// text validated by the API, so one that does not parse is a bug to report,
// not a value to guess.
func Crossed(limit, spent money.Nanos, thresholds []string) ([]string, error) {
	if spent <= 0 {
		return nil, nil
	}
	var out []string
	for _, t := range thresholds {
		ok, err := reached(limit, spent, t)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// reached reports spent ≥ t × limit as spent × den ≥ num × limit in
// integers, where t = num/den: exact for every int64 amount.
func reached(limit, spent money.Nanos, t string) (bool, error) {
	r, err := money.ParseDecimal(t)
	if err != nil {
		return false, fmt.Errorf("soft threshold: %w", err)
	}
	lhs := new(big.Int).Mul(big.NewInt(int64(spent)), r.Denom())
	rhs := new(big.Int).Mul(big.NewInt(int64(limit)), r.Num())
	return lhs.Cmp(rhs) >= 0, nil
}
