package pgstore

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The hand-written encoders must say what encoding/json and Postgres's
// array parser would read back as the same values.
func TestComponentsJSONReadsBackAsEncodingJSONWould(t *testing.T) {
	for _, cs := range [][]Component{
		nil,
		{{Name: "input", Tokens: 12, UnitPrice: "0.000001", Source: SourceCatalog, ExactCost: "0.000012", CostNanos: 12000}},
		{{Name: "in\"put\\", Tokens: 0, CostNanos: -5}, {Name: "tab\there\nnew\x01line é ✓ \u2028 <&>", SourceDetail: "x\x1fy", CostNanos: 9223372036854775807}},
	} {
		b := appendComponentsJSON(nil, cs)
		var got []Component
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		want := cs
		if want == nil {
			want = []Component{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back %+v from %s; want %+v", got, b, want)
		}
		std, _ := json.Marshal(want)
		var viaStd []Component
		_ = json.Unmarshal(std, &viaStd)
		if !reflect.DeepEqual(got, viaStd) {
			t.Fatalf("differs from encoding/json: %s vs %s", b, std)
		}
	}
}

func TestParseUUIDRoundTripsAndRejects(t *testing.T) {
	const id = "01937c5e-8f3a-7b2c-9d4e-0123456789ab"
	u, err := parseUUID(id)
	if err != nil || formatUUID(u) != id {
		t.Fatalf("parse %s: %x %v", id, u, err)
	}
	if u2, err := parseUUID("01937C5E-8F3A-7B2C-9D4E-0123456789AB"); err != nil || u2 != u {
		t.Fatalf("upper case: %x %v", u2, err)
	}
	for _, bad := range []string{"", "01937c5e-8f3a-7b2c-9d4e-0123456789a", "01937c5e-8f3a-7b2c-9d4e-0123456789ag", "01937c5e8f3a-7b2c-9d4e-0123456789abc", "g1937c5e-8f3a-7b2c-9d4e-0123456789ab"} {
		if _, err := parseUUID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTextColumnSlicesOneBuffer(t *testing.T) {
	c := newTextColumn(3, 1)
	for _, vs := range [][]string{nil, {`a"b`, `c\d`}, {""}} {
		c.buf = appendArrayLiteral(c.buf, vs)
		c.end()
	}
	want := inPlace[textElem]{`{}`, `{"a\"b","c\\d"}`, `{""}`}
	if got := c.values(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
