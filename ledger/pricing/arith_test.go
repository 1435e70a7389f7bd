package pricing

import (
	"math"
	"testing"
)

func TestFormatAtto(t *testing.T) {
	cases := map[uint64]string{
		0:                          "0",
		1:                          "0.000000000000000001",
		3_000_000_000_000:          "0.000003",
		1_000_000_000_000_000_000:  "1",
		1_500_000_000_000_000_000:  "1.5",
		12_345_678_901_234_567_890: "12.34567890123456789",
		math.MaxUint64:             "18.446744073709551615",
	}
	for v, want := range cases {
		if got := formatAtto(v); got != want {
			t.Errorf("formatAtto(%d) = %q, want %q", v, got, want)
		}
	}
	// Above 64 bits the big.Int path takes over: 2^64 atto-USD.
	if got := (u128{hi: 1}).decimal(); got != "18.446744073709551616" {
		t.Errorf("2^64 atto = %q", got)
	}
}

func TestRoundHalfEven(t *testing.T) {
	cases := []struct{ q, rem, want uint64 }{
		{0, 499_999_999, 0}, {0, 500_000_000, 0}, {1, 500_000_000, 2}, {2, 500_000_000, 2}, {2, 500_000_001, 3},
	}
	for _, c := range cases {
		if got := roundHalfEven(c.q, c.rem); got != c.want {
			t.Errorf("roundHalfEven(%d, %d) = %d, want %d", c.q, c.rem, got, c.want)
		}
	}
}
