package thresholds

import (
	"math"
	"slices"
	"testing"

	"github.com/spendledger/spendledger/ledger/money"
)

func TestCrossedIsExact(t *testing.T) {
	const usd = money.PerDollar
	all := []string{"0.5", "0.8", "1"}
	for _, tc := range []struct {
		name         string
		limit, spent money.Nanos
		thresholds   []string
		want         []string
	}{
		{"exactly at 0.8 counts", 10 * usd, 8 * usd, []string{"0.8"}, []string{"0.8"}},
		{"one nano below 0.8 does not", 10 * usd, 8*usd - 1, []string{"0.8"}, nil},
		{"several at once, in order", 10 * usd, 10 * usd, all, all},
		{"only those reached", 10 * usd, 7 * usd, all, []string{"0.5"}},
		{"past the limit reaches 1", 10 * usd, 11 * usd, all, all},
		{"nothing spent, nothing crossed", 10 * usd, 0, all, nil},
		{"a $0 budget crosses at its first nano", 0, 1, all, all},
		{"a $0 budget with nothing spent stays quiet", 0, 0, all, nil},
		// 0.333333333333 of $1 is 333,333,333.333 nanos: 333,333,333 is short of it.
		{"no exact nano value, below", usd, 333_333_333, []string{"0.333333333333"}, nil},
		{"no exact nano value, above", usd, 333_333_334, []string{"0.333333333333"}, []string{"0.333333333333"}},
		{"a thirds threshold is not rounded", 3, 1, []string{"0.3333333334"}, nil},
		// No int64 overflow near the top of the range (a float would round both).
		{"max int64, half, just below", math.MaxInt64, math.MaxInt64 / 2, []string{"0.5"}, nil},
		{"max int64, half, reached", math.MaxInt64, math.MaxInt64/2 + 1, []string{"0.5"}, []string{"0.5"}},
	} {
		got, err := Crossed(tc.limit, tc.spent, tc.thresholds)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: Crossed(%d, %d, %v) = %v; want %v", tc.name, tc.limit, tc.spent, tc.thresholds, got, tc.want)
		}
	}
}

func TestCrossedRejectsWhatIsNotADecimal(t *testing.T) {
	if _, err := Crossed(10, 10, []string{"0.8", "4/5"}); err == nil {
		t.Fatal(`Crossed accepted "4/5"`)
	}
}
