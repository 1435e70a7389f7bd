package pricing

import (
	"math/big"
	"math/bits"
	"strconv"

	"github.com/spendledger/spendledger/ledger/money"
)

// Fast-path arithmetic. A catalog price such as 3e-06 USD is an exact integer count of atto-USD
// (1e-18 USD): 3_000_000_000_000. Tokens × atto-price fits in 128 bits, so the exact cost of an
// event is a sum of 128-bit integers, and rounding to nanos is one division by 1e9. This is the
// same exact value big.Rat would compute, at a fraction of the cost; prices that are not whole
// atto-USD (a few catalog entries carry float noise such as 2.9999900000000002e-06) take the
// big.Rat path instead.

const (
	attoPerNano = 1_000_000_000
	attoPerUSD  = 1_000_000_000_000_000_000
)

type u128 struct{ hi, lo uint64 }

func mul64(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

// add returns x+y and whether it carried out of 128 bits.
func (x u128) add(y u128) (u128, bool) {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, c := bits.Add64(x.hi, y.hi, c)
	return u128{hi, lo}, c != 0
}

// fitsNanos reports whether x/1e9 fits in 64 bits, the precondition of divNano. Keeping every
// partial sum below this bound also rules out 128-bit carries.
func (x u128) fitsNanos() bool { return x.hi < attoPerNano }

// divNano splits x atto-USD into whole nanos and the atto remainder.
func (x u128) divNano() (q, rem uint64) { return bits.Div64(x.hi, x.lo, attoPerNano) }

// decimal formats x atto-USD as exact dollar text.
func (x u128) decimal() string {
	if x.hi == 0 {
		return formatAtto(x.lo)
	}
	n := new(big.Int).Lsh(new(big.Int).SetUint64(x.hi), 64)
	n.Or(n, new(big.Int).SetUint64(x.lo))
	s, _ := money.FormatDecimal(new(big.Rat).SetFrac(n, new(big.Int).SetUint64(attoPerUSD)))
	return s
}

func formatAtto(v uint64) string {
	if v == 0 {
		return "0"
	}
	var buf [40]byte
	b := strconv.AppendUint(buf[:0], v/attoPerUSD, 10)
	if frac := v % attoPerUSD; frac != 0 {
		// frac+1e18 prints as "1" and then frac zero-padded to 18 digits; the "1" becomes the
		// decimal point. (frac+1e18 < 2e18 fits in a uint64.)
		point := len(b)
		b = strconv.AppendUint(b, frac+attoPerUSD, 10)
		b[point] = '.'
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
	}
	return string(b)
}

// roundHalfEven rounds q + rem/1e9 to an integer.
func roundHalfEven(q, rem uint64) uint64 {
	const half = attoPerNano / 2
	if rem > half || (rem == half && q&1 == 1) {
		return q + 1
	}
	return q
}
