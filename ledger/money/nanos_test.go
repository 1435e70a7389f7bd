package money

import (
	"errors"
	"math"
	"testing"
)

func TestNanosString(t *testing.T) {
	cases := []struct {
		n    Nanos
		want string
	}{
		{0, "0"},
		{1, "0.000000001"},
		{PerDollar, "1"},
		{1_500_000_000, "1.5"},
		{50 * PerDollar, "50"},
		{-250_000_000, "-0.25"},
		{123_456_789_012, "123.456789012"},
		{math.MaxInt64, "9223372036.854775807"},
		{math.MinInt64, "-9223372036.854775808"},
	}
	for _, c := range cases {
		if got := c.n.String(); got != c.want {
			t.Errorf("Nanos(%d).String() = %q, want %q", int64(c.n), got, c.want)
		}
	}
}

func TestNanosAddDetectsOverflow(t *testing.T) {
	if s, err := Nanos(2).Add(3); err != nil || s != 5 {
		t.Fatalf("2+3 = %d, %v", s, err)
	}
	if s, err := Nanos(-2).Add(-3); err != nil || s != -5 {
		t.Fatalf("-2+-3 = %d, %v", s, err)
	}
	if _, err := MaxNanos.Add(1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("MaxNanos+1: err = %v, want ErrOverflow", err)
	}
	if _, err := Nanos(math.MinInt64).Add(-1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("MinInt64-1: err = %v, want ErrOverflow", err)
	}
	if s, err := MaxNanos.Add(math.MinInt64); err != nil || s != -1 {
		t.Fatalf("Max+Min = %d, %v; mixed signs never overflow", s, err)
	}
}

func TestSum(t *testing.T) {
	if s, err := Sum(1, 2, 3); err != nil || s != 6 {
		t.Fatalf("Sum(1,2,3) = %d, %v", s, err)
	}
	if _, err := Sum(MaxNanos, 1, -5); !errors.Is(err, ErrOverflow) {
		t.Fatalf("Sum overflowing mid-way: err = %v, want ErrOverflow", err)
	}
}

func TestNanosRat(t *testing.T) {
	if got := Nanos(1_500_000_000).Rat().RatString(); got != "3/2" {
		t.Fatalf("Rat() = %s, want 3/2", got)
	}
}
