package pricing

import (
	"errors"
	"math/big"
	"testing"
)

func TestPrice_UnknownIsNotZero(t *testing.T) {
	var unknown Price
	zero, err := ParsePrice("0")
	if err != nil {
		t.Fatal(err)
	}
	if unknown.Known() || unknown.IsFree() || unknown.Rat() != nil || unknown.String() != "unknown" {
		t.Fatalf("zero Price must be unknown: %+v", unknown)
	}
	if !zero.Known() || !zero.IsFree() || zero.String() != "0" {
		t.Fatalf(`ParsePrice("0") must be known and free: %v`, zero)
	}
	if unknown.Equal(zero) || zero.Equal(unknown) {
		t.Fatal("unknown must not equal explicit zero")
	}
	if !unknown.Equal(Unknown()) {
		t.Fatal("unknown must equal unknown")
	}
}

func TestPrice_ParsesExactly(t *testing.T) {
	p, err := ParsePrice("3e-06")
	if err != nil {
		t.Fatal(err)
	}
	if p.Rat().Cmp(big.NewRat(3, 1_000_000)) != 0 || p.String() != "0.000003" {
		t.Fatalf("3e-06 parsed as %v (%s)", p.Rat(), p)
	}
	if !p.v.fast || p.v.atto != 3_000_000_000_000 {
		t.Fatalf("3e-06 should be 3e12 atto-USD on the fast path, got %d fast=%v", p.v.atto, p.v.fast)
	}
	noisy, err := ParsePrice("2.9999900000000002e-06")
	if err != nil {
		t.Fatal(err)
	}
	if noisy.v.fast || noisy.String() != "0.0000029999900000000002" {
		t.Fatalf("22-digit price must stay exact and leave the fast path: %s fast=%v", noisy, noisy.v.fast)
	}
}

func TestPrice_RejectsNegativeAndJunk(t *testing.T) {
	if _, err := ParsePrice("-0.000001"); !errors.Is(err, ErrNegativePrice) {
		t.Fatalf("negative price: err = %v", err)
	}
	for _, s := range []string{"", "abc", "1/3", "NaN"} {
		if p, err := ParsePrice(s); err == nil {
			t.Errorf("ParsePrice(%q) = %v, want error", s, p)
		}
	}
	if _, err := PriceFromRat(big.NewRat(1, 3)); err == nil {
		t.Error("1/3 is not a decimal price")
	}
}

func TestPrice_IsImmutable(t *testing.T) {
	r := big.NewRat(1, 1000)
	p, err := PriceFromRat(r)
	if err != nil {
		t.Fatal(err)
	}
	r.SetInt64(5)
	p.Rat().SetInt64(7)
	if p.String() != "0.001" {
		t.Fatalf("Price changed through an alias: %s", p)
	}
}

func TestParseField(t *testing.T) {
	cases := []struct {
		name  string
		ok    bool
		kind  Kind
		above int64
	}{
		{"input_cost_per_token", true, KindInput, 0},
		{"cache_creation_input_token_cost_above_1hr", true, KindCacheCreation1h, 0},
		{"output_cost_per_reasoning_token", true, KindReasoning, 0},
		{"input_cost_per_token_above_200k_tokens", true, KindInput, 200_000},
		{"cache_creation_input_token_cost_above_200k_tokens", true, KindCacheCreation, 200_000},
		{"cache_creation_input_token_cost_above_1hr_above_200k_tokens", true, KindCacheCreation1h, 200_000},
		{"cache_read_input_token_cost_above_272k_tokens", true, KindCacheRead, 272_000},
		{"input_cost_per_token_above_128_tokens", true, KindInput, 128},
		{"input_cost_per_token_above_200k_tokens_priority", false, 0, 0},
		{"input_cost_per_token_batches", false, 0, 0},
		{"input_cost_per_audio_token", false, 0, 0},
		{"input_cost_per_token_above_0k_tokens", false, 0, 0},
		{"input_cost_per_token_above_k_tokens", false, 0, 0},
		{"input_cost_per_token_above_1x_tokens", false, 0, 0},
	}
	for _, c := range cases {
		f, ok := parseField(c.name)
		if ok != c.ok || (ok && (f.kind != c.kind || f.above != c.above)) {
			t.Errorf("parseField(%q) = %+v, %v; want kind %v above %d ok %v", c.name, f, ok, c.kind, c.above, c.ok)
		}
		if ok && f.name() != c.name {
			t.Errorf("field %q round-trips to %q", c.name, f.name())
		}
	}
}
