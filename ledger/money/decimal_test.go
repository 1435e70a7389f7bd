package money

import (
	"math/big"
	"testing"
)

func TestParseDecimalIsExact(t *testing.T) {
	cases := map[string]string{
		"3e-06":                  "3/1000000",
		"3E-06":                  "3/1000000",
		"0.000003":               "3/1000000",
		"1.00":                   "1",
		"50":                     "50",
		"-2.5":                   "-5/2",
		"+7":                     "7",
		".5":                     "1/2",
		"5.":                     "5",
		"1e+3":                   "1000",
		"2.4414e-07":             "12207/50000000000",
		"2.9999900000000002e-06": "14999950000000001/5000000000000000000000",
	}
	for in, want := range cases {
		r, err := ParseDecimal(in)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", in, err)
			continue
		}
		if r.RatString() != want {
			t.Errorf("ParseDecimal(%q) = %s, want %s", in, r.RatString(), want)
		}
	}
}

func TestParseDecimalRejectsNonDecimals(t *testing.T) {
	for _, in := range []string{
		"", "-", ".", "e5", "1e", "1e+", "1/3", "0x10", "1_000", "Inf", "NaN", " 1", "1 ",
		"1.2.3", "--1", "1e1000", "1e-101",
		"1" + string(make([]byte, 0)) + "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
	} {
		if r, err := ParseDecimal(in); err == nil {
			t.Errorf("ParseDecimal(%q) = %s, want error", in, r.RatString())
		}
	}
}

func TestFormatDecimal(t *testing.T) {
	cases := map[string]string{
		"3/1000000":  "0.000003",
		"15":         "15",
		"-1/2":       "-0.5",
		"0":          "0",
		"1/1024":     "0.0009765625",
		"123456/100": "1234.56",
	}
	for in, want := range cases {
		r, _ := new(big.Rat).SetString(in)
		got, err := FormatDecimal(r)
		if err != nil || got != want {
			t.Errorf("FormatDecimal(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if s, err := FormatDecimal(big.NewRat(1, 3)); err == nil {
		t.Errorf("FormatDecimal(1/3) = %q, want error (not terminating)", s)
	}
	if _, err := FormatDecimal(nil); err == nil {
		t.Error("FormatDecimal(nil): want error")
	}
}

func TestFormatParseDecimalRoundTrip(t *testing.T) {
	for _, in := range []string{"3e-06", "2.9999900000000002e-06", "1.25e-05", "0.0002833333333333333", "1e-100"} {
		r, err := ParseDecimal(in)
		if err != nil {
			t.Fatal(err)
		}
		s, err := FormatDecimal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseDecimal(s)
		if err != nil || back.Cmp(r) != 0 {
			t.Errorf("%q -> %q -> %v (%v): not the same number", in, s, back, err)
		}
	}
}
