package money

import (
	"errors"
	"math"
	"math/big"
	"strconv"
)

// Nanos is an amount of US dollars counted in nano-USD (1e-9 USD).
type Nanos int64

// PerDollar is the number of Nanos in one US dollar.
const PerDollar Nanos = 1_000_000_000

// MaxNanos is the largest representable amount, about 9.2 billion dollars.
const MaxNanos Nanos = math.MaxInt64

// ErrOverflow reports an amount that does not fit in an int64 count of nanos.
var ErrOverflow = errors.New("money: amount overflows int64 nano-USD")

// Add returns n+m, or ErrOverflow instead of wrapping around: a wrapped sum would turn a budget
// that is far over its limit into one that looks far under it.
func (n Nanos) Add(m Nanos) (Nanos, error) {
	s := n + m
	// Signed overflow happened iff both operands share a sign the result does not have.
	if (n >= 0) == (m >= 0) && (s >= 0) != (n >= 0) {
		return 0, ErrOverflow
	}
	return s, nil
}

// Sum adds amounts with the same overflow check as Add.
func Sum(amounts ...Nanos) (Nanos, error) {
	var total Nanos
	for _, a := range amounts {
		var err error
		if total, err = total.Add(a); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// String formats n as dollars in the shortest exact form: "1.5", "50", "0.000000001", "-0.25".
// Trailing fractional zeros are trimmed so the text reads like the decimal strings operators
// write in configuration; ParseDollars(n.String()) == n for every n.
func (n Nanos) String() string {
	neg := n < 0
	// Work on the magnitude as uint64 so math.MinInt64 does not overflow when negated.
	mag := uint64(n)
	if neg {
		mag = -mag
	}
	whole := strconv.FormatUint(mag/uint64(PerDollar), 10)
	frac := mag % uint64(PerDollar)
	var buf []byte
	if neg {
		buf = append(buf, '-')
	}
	buf = append(buf, whole...)
	if frac != 0 {
		digits := strconv.FormatUint(frac+uint64(PerDollar), 10)[1:] // zero-padded to 9 digits
		for digits[len(digits)-1] == '0' {
			digits = digits[:len(digits)-1]
		}
		buf = append(buf, '.')
		buf = append(buf, digits...)
	}
	return string(buf)
}

// Rat returns n as an exact number of dollars.
func (n Nanos) Rat() *big.Rat {
	return new(big.Rat).SetFrac(big.NewInt(int64(n)), big.NewInt(int64(PerDollar)))
}
