package pricing

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParseOverrides_AbsentIsUnsetZeroIsFree(t *testing.T) {
	o := overrides(t, map[string]string{"input_cost_per_token": "3e-06", "cache_read_input_token_cost": "0"})
	if o.Len() != 2 {
		t.Fatalf("Len = %d", o.Len())
	}
	if got := o.Price("input_cost_per_token").String(); got != "0.000003" {
		t.Fatalf("input = %s", got)
	}
	if !o.Price("cache_read_input_token_cost").IsFree() {
		t.Fatal(`"0" must be explicitly free`)
	}
	if o.Price("output_cost_per_token").Known() {
		t.Fatal("an absent field must be unset, not zero")
	}
}

func TestParseOverrides_ReturnsIgnoredNames(t *testing.T) {
	o, ignored, err := ParseOverrides(map[string]string{
		"input_cost_per_token":         "0.000001",
		"id":                           "deployment-a",
		"output_cost_per_image":        "0.04",
		"input_cost_per_token_batches": "0.0000005",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ignored, []string{"id", "input_cost_per_token_batches", "output_cost_per_image"}) {
		t.Fatalf("ignored = %v", ignored)
	}
	if o.Len() != 1 {
		t.Fatalf("Len = %d", o.Len())
	}
}

func TestParseOverrides_RejectsInvalidValuesNamingTheField(t *testing.T) {
	for value, why := range map[string]string{
		"-0.000001": "negative",
		"abc":       "not a number",
		"":          "empty",
		"1/3":       "fraction",
		"0x10":      "hex",
	} {
		_, _, err := ParseOverrides(map[string]string{"output_cost_per_token": "0.1", "cache_read_input_token_cost": value})
		if err == nil || !strings.Contains(err.Error(), "cache_read_input_token_cost") {
			t.Errorf("%s value %q: err = %v, want an error naming the field", why, value, err)
		}
	}
}

func TestOverrides_MapRoundTrips(t *testing.T) {
	in := map[string]string{
		"input_cost_per_token":                   "3e-06",
		"cache_read_input_token_cost":            "0",
		"input_cost_per_token_above_200k_tokens": "0.000006",
	}
	o := overrides(t, in)
	m := o.Map()
	want := map[string]string{
		"input_cost_per_token":                   "0.000003",
		"cache_read_input_token_cost":            "0",
		"input_cost_per_token_above_200k_tokens": "0.000006",
	}
	if !maps.Equal(m, want) {
		t.Fatalf("Map() = %v", m)
	}
	if again := overrides(t, m); !maps.Equal(again.Map(), m) {
		t.Fatalf("round trip changed the overrides: %v", again.Map())
	}
}
