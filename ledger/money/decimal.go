package money

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Limits on decimal text. Exact parsing materialises 10^exponent, so an unbounded exponent such
// as "1e999999999" would be a denial of service; no price or amount comes near these.
const (
	maxDecimalDigits   = 100 // significant digits, leading zeros not counted
	maxDecimalExponent = 100
	maxDecimalLength   = 1000
)

// ErrSyntax reports text that is not a plain decimal number.
var ErrSyntax = errors.New("not a decimal number")

// ParseDecimal parses decimal text exactly: an optional sign, digits with an optional fraction,
// and an optional exponent, as in JSON numbers ("3e-06", "0.000003", "1.00", "-2", ".5", "1E+3").
// It never goes through float64, so "3e-06" is exactly 3/1000000.
//
// It rejects what math/big.Rat.SetString would otherwise accept but a price must not be:
// fractions ("1/3"), base prefixes ("0x10"), underscores, "Inf" and "NaN", and surrounding
// spaces. More than 100 significant digits, exponents beyond ±100 and text longer than 1000
// characters are rejected too: exact parsing materialises the number, so it must stay small.
func ParseDecimal(s string) (*big.Rat, error) {
	mant, exp, neg, err := scanDecimal(s)
	if err != nil {
		return nil, fmt.Errorf("money: %q: %w", s, err)
	}
	num, ok := new(big.Int).SetString(mant, 10)
	if !ok {
		return nil, fmt.Errorf("money: %q: %w", s, ErrSyntax)
	}
	if neg {
		num.Neg(num)
	}
	r := new(big.Rat).SetInt(num)
	if exp != 0 {
		p := pow10(abs(exp))
		if exp > 0 {
			r.Mul(r, new(big.Rat).SetInt(p))
		} else {
			r.Quo(r, new(big.Rat).SetInt(p))
		}
	}
	return r, nil
}

// scanDecimal validates s and returns its digits without the point, the power of ten they are
// scaled by, and the sign.
func scanDecimal(s string) (mant string, exp int, neg bool, err error) {
	if len(s) > maxDecimalLength {
		return "", 0, false, fmt.Errorf("longer than %d characters", maxDecimalLength)
	}
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var digits strings.Builder
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	digits.WriteString(s[intStart:i])
	fracDigits := 0
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracDigits = i - fracStart
		digits.WriteString(s[fracStart:i])
	}
	if digits.Len() == 0 {
		return "", 0, false, ErrSyntax
	}
	mant = strings.TrimLeft(digits.String(), "0")
	if len(mant) > maxDecimalDigits {
		return "", 0, false, fmt.Errorf("more than %d significant digits", maxDecimalDigits)
	}
	if mant == "" {
		mant = "0"
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		expStart := i
		for i < len(s) && isDigit(s[i]) {
			// Stop accumulating early: the bound check below only needs to know it is large.
			if exp <= maxDecimalExponent*10 {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == expStart {
			return "", 0, false, ErrSyntax
		}
		if exp > maxDecimalExponent {
			return "", 0, false, fmt.Errorf("exponent beyond ±%d", maxDecimalExponent)
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return "", 0, false, ErrSyntax
	}
	return mant, exp - fracDigits, neg, nil
}

// FormatDecimal writes r as plain decimal text with no exponent and no trailing fractional
// zeros ("0.000003", "15", "-0.5"). Every catalog price is a terminating decimal; a rational
// that is not (its reduced denominator has a prime factor other than 2 and 5) is an error rather
// than a rounded string.
func FormatDecimal(r *big.Rat) (string, error) {
	if r == nil {
		return "", errors.New("money: nil rational")
	}
	places, ok := decimalPlaces(r.Denom())
	if !ok {
		return "", fmt.Errorf("money: %s is not a terminating decimal", r.RatString())
	}
	scaled := new(big.Int).Mul(r.Num(), pow10(places))
	scaled.Quo(scaled, r.Denom()) // exact: the denominator divides 10^places
	return insertPoint(scaled, places), nil
}

// decimalPlaces returns the fewest digits after the point that represent 1/den exactly: den must
// be 2^a·5^b, and the answer is max(a, b).
func decimalPlaces(den *big.Int) (int, bool) {
	d := new(big.Int).Set(den)
	twos := int(d.TrailingZeroBits())
	d.Rsh(d, uint(twos))
	fives := 0
	five := big.NewInt(5)
	q, m := new(big.Int), new(big.Int)
	for d.Cmp(bigOne) != 0 {
		q.QuoRem(d, five, m)
		if m.Sign() != 0 {
			return 0, false
		}
		d.Set(q)
		fives++
	}
	return max(twos, fives), true
}

// insertPoint renders the integer v scaled down by 10^places.
func insertPoint(v *big.Int, places int) string {
	neg := v.Sign() < 0
	digits := new(big.Int).Abs(v).String()
	if places > 0 {
		if len(digits) <= places {
			digits = strings.Repeat("0", places-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-places] + "." + digits[len(digits)-places:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

var (
	bigOne     = big.NewInt(1)
	bigTen     = big.NewInt(10)
	pow10Cache = func() [maxDecimalExponent + maxDecimalDigits + 1]*big.Int {
		var t [maxDecimalExponent + maxDecimalDigits + 1]*big.Int
		t[0] = big.NewInt(1)
		for i := 1; i < len(t); i++ {
			t[i] = new(big.Int).Mul(t[i-1], bigTen)
		}
		return t
	}()
)

// pow10 returns 10^n. The cached values are shared and must not be modified.
func pow10(n int) *big.Int {
	if n < len(pow10Cache) {
		return pow10Cache[n]
	}
	return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
