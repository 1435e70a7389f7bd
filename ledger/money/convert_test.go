package money

import (
	"errors"
	"math/big"
	"testing"
)

func TestParseDollars(t *testing.T) {
	cases := map[string]Nanos{
		"1.00":                 PerDollar,
		"50":                   50 * PerDollar,
		"0.000000001":          1,
		"1e-3":                 1_000_000,
		"-2.5":                 -2_500_000_000,
		"0":                    0,
		"9223372036.854775807": MaxNanos,
	}
	for in, want := range cases {
		got, err := ParseDollars(in)
		if err != nil || got != want {
			t.Errorf("ParseDollars(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestParseDollarsNeverRounds(t *testing.T) {
	for _, in := range []string{"0.0000000001", "1.0000000005", "1e-10"} {
		if n, err := ParseDollars(in); !errors.Is(err, ErrSubNano) {
			t.Errorf("ParseDollars(%q) = %d, %v; want ErrSubNano", in, n, err)
		}
	}
}

func TestParseDollarsOverflow(t *testing.T) {
	for _, in := range []string{"9223372036.854775808", "1e20", "-9223372036.854775809"} {
		if n, err := ParseDollars(in); !errors.Is(err, ErrOverflow) {
			t.Errorf("ParseDollars(%q) = %d, %v; want ErrOverflow", in, n, err)
		}
	}
	if n, err := ParseDollars("-9223372036.854775808"); err != nil || n != -MaxNanos-1 {
		t.Errorf("ParseDollars(min) = %d, %v", n, err)
	}
}

func TestParseDollarsRejectsSyntax(t *testing.T) {
	for _, in := range []string{"", "$1", "1,000", "1/3", "one"} {
		if n, err := ParseDollars(in); err == nil {
			t.Errorf("ParseDollars(%q) = %d, want error", in, n)
		}
	}
}

func TestParseLimitRejectsNegative(t *testing.T) {
	if n, err := ParseLimit("-0.01"); !errors.Is(err, ErrNegative) {
		t.Fatalf("ParseLimit(-0.01) = %d, %v; want ErrNegative", n, err)
	}
	if n, err := ParseLimit("10"); err != nil || n != 10*PerDollar {
		t.Fatalf("ParseLimit(10) = %d, %v", n, err)
	}
	if n, err := ParseLimit("0"); err != nil || n != 0 {
		t.Fatalf("ParseLimit(0) = %d, %v; a zero limit is valid (deny all spend)", n, err)
	}
}

func TestFromRatRoundsHalfToEven(t *testing.T) {
	cases := []struct {
		num, den int64 // dollars = num/den
		want     Nanos
	}{
		{5, 10_000_000_000, 0},    // 0.5 nano -> 0 (even)
		{15, 10_000_000_000, 2},   // 1.5 nano -> 2 (even)
		{25, 10_000_000_000, 2},   // 2.5 nano -> 2 (even)
		{26, 10_000_000_000, 3},   // 2.6 nano -> 3
		{24, 10_000_000_000, 2},   // 2.4 nano -> 2
		{-15, 10_000_000_000, -2}, // -1.5 nano -> -2 (even)
		{-25, 10_000_000_000, -2}, // -2.5 nano -> -2 (even)
		{-26, 10_000_000_000, -3}, // -2.6 nano -> -3
		{1, 3, 333_333_333},       // 0.333... -> floor
		{2, 3, 666_666_667},       // 0.666... -> up
		{3, 2, 1_500_000_000},     // exact
	}
	for _, c := range cases {
		got, err := FromRat(big.NewRat(c.num, c.den))
		if err != nil || got != c.want {
			t.Errorf("FromRat(%d/%d) = %d, %v; want %d", c.num, c.den, got, err, c.want)
		}
	}
}

func TestCeilRat(t *testing.T) {
	cases := []struct {
		num, den int64
		want     Nanos
	}{
		{1, 10_000_000_000, 1},    // 0.1 nano -> 1
		{-15, 10_000_000_000, -1}, // -1.5 nano -> -1
		{3, 2, 1_500_000_000},
	}
	for _, c := range cases {
		got, err := CeilRat(big.NewRat(c.num, c.den))
		if err != nil || got != c.want {
			t.Errorf("CeilRat(%d/%d) = %d, %v; want %d", c.num, c.den, got, err, c.want)
		}
	}
}

func TestFromRatOverflowAndNil(t *testing.T) {
	if _, err := FromRat(big.NewRat(1e10, 1)); !errors.Is(err, ErrOverflow) {
		t.Errorf("FromRat($1e10): err = %v, want ErrOverflow", err)
	}
	if _, err := FromRat(nil); err == nil {
		t.Error("FromRat(nil): want error")
	}
}
