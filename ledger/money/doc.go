// Package money is the ledger's one representation of an amount of US dollars: an integer count
// of nano-USD (1e-9 USD) in an int64, the type [Nanos].
//
// Why integers: a float64 cannot hold 0.1 exactly, so any sum of float prices drifts, and a
// budget compared against a drifting sum fails silently. An int64 of nanos holds about ±9.2
// billion dollars to the nano, which is more range than any single ledger entry or budget needs
// and more precision than any provider bills.
//
// Why a nano: catalog prices are quoted per token down to about 1e-9 USD, but the cost of one
// event is computed exactly (see package pricing) and only then rounded, once, to nanos. Rounding
// per token or per component would let errors accumulate across millions of events.
//
// The package also holds the exact-decimal helpers every price path shares: [ParseDecimal] turns
// text such as "3e-06" or "1.00" into an exact *big.Rat (never via float64), and [FormatDecimal]
// turns a terminating rational back into plain decimal text. Conversions from rationals to nanos
// are explicit about rounding: [FromRat] rounds half-to-even, [CeilRat] rounds up (for upper
// bounds), and [ParseDollars] refuses to round at all.
package money
