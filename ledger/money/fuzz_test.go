package money

import (
	"math"
	"testing"
)

// FuzzStringRoundTrip checks the promise on Nanos.String: the text parses back to the same
// amount, for every int64.
func FuzzStringRoundTrip(f *testing.F) {
	for _, n := range []int64{0, 1, -1, 1_500_000_000, math.MaxInt64, math.MinInt64, 999_999_999} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		s := Nanos(n).String()
		back, err := ParseDollars(s)
		if err != nil {
			t.Fatalf("ParseDollars(%q) from Nanos(%d): %v", s, n, err)
		}
		if back != Nanos(n) {
			t.Fatalf("round trip %d -> %q -> %d", n, s, back)
		}
	})
}

// FuzzParseDollars feeds arbitrary text: parsing never panics, and whatever parses is stable
// under String and parse again.
func FuzzParseDollars(f *testing.F) {
	for _, s := range []string{"1.00", "50", "0.000000001", "1e-3", "-0", "1e-10", "1/3", "9e99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseDollars(s)
		if err != nil {
			return
		}
		again, err := ParseDollars(n.String())
		if err != nil || again != n {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, n, n.String(), again, err)
		}
	})
}
