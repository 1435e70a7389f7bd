package window

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseAcceptsLiteLLMForms(t *testing.T) {
	for _, tc := range []struct {
		in     string
		fixed  time.Duration
		months int64
		canon  string
	}{
		{"30s", 30 * time.Second, 0, "30s"},
		{"1m", time.Minute, 0, "1m"}, // minutes, as in LiteLLM, never months
		{"30m", 30 * time.Minute, 0, "30m"},
		{"90m", 90 * time.Minute, 0, "90m"},
		{"1h", time.Hour, 0, "1h"},
		{"24h", 24 * time.Hour, 0, "1d"},
		{"1d", 24 * time.Hour, 0, "1d"},
		{"7d", 7 * 24 * time.Hour, 0, "7d"},
		{"1w", 7 * 24 * time.Hour, 0, "7d"},
		{"30d", 30 * 24 * time.Hour, 0, "30d"},
		{"3600s", time.Hour, 0, "1h"},
		{"007d", 7 * 24 * time.Hour, 0, "7d"},
		{"1mo", 0, 1, "1mo"},
		{"3mo", 0, 3, "3mo"},
		{"36500d", 36500 * 24 * time.Hour, 0, "36500d"},
		{"1200mo", 0, 1200, "1200mo"},
	} {
		d, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if d.Fixed() != tc.fixed || d.Months() != tc.months {
			t.Errorf("Parse(%q) = fixed %v months %d, want %v, %d", tc.in, d.Fixed(), d.Months(), tc.fixed, tc.months)
		}
		if got := d.String(); got != tc.canon {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.canon)
		}
		if again := MustParse(d.String()); again != d {
			t.Errorf("canonical %q does not parse back to the same duration", d.String())
		}
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, in := range []string{
		"", "d", "mo", "1", "30", "-1d", "+1d", "1.5h", "1 d", " 1d", "1d ",
		"1D", "1Mo", "1y", "1dd", "1mos", "1d1h", "0s", "0mo", "00d",
		"36501d", "1201mo", "99999999999999999999s", "9223372036854775807s",
		"1\x00d", "١d", // Arabic-Indic digit one
	} {
		d, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error", in, d)
			continue
		}
		if !errors.Is(err, ErrInvalidDuration) {
			t.Errorf("Parse(%q) error %v does not wrap ErrInvalidDuration", in, err)
		}
		if !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("Parse(%q) error %q does not quote the input", in, err)
		}
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParse(\"bogus\") did not panic")
		}
	}()
	MustParse("bogus")
}

func TestDurationTextRoundTrip(t *testing.T) {
	type cfg struct {
		Every Duration `json:"every"`
	}
	var c cfg
	if err := json.Unmarshal([]byte(`{"every":"24h"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Every != MustParse("1d") {
		t.Fatalf("unmarshalled %v, want 1d", c.Every)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"every":"1d"}` {
		t.Fatalf("marshalled %s", out)
	}
	if err := json.Unmarshal([]byte(`{"every":"1 day"}`), &c); !errors.Is(err, ErrInvalidDuration) {
		t.Fatalf("bad config text: err = %v, want ErrInvalidDuration", err)
	}
}

func TestZeroDuration(t *testing.T) {
	var d Duration
	if !d.IsZero() || d.String() != "0s" {
		t.Fatalf("zero Duration: IsZero %v String %q", d.IsZero(), d.String())
	}
	if MustParse("1s").IsZero() {
		t.Fatal("1s reported as zero")
	}
}
