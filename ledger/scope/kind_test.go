package scope

import (
	"encoding/json"
	"testing"
)

func TestKindNamesRoundTrip(t *testing.T) {
	want := []string{"key", "team", "user", "org", "end_user", "tag", "provider", "deployment", "key_model", "end_user_model"}
	kinds := Kinds()
	if len(kinds) != len(want) {
		t.Fatalf("Kinds() has %d kinds, want %d", len(kinds), len(want))
	}
	for i, k := range kinds {
		if k.String() != want[i] {
			t.Errorf("kind %d String() = %q, want %q", k, k.String(), want[i])
		}
		got, err := ParseKind(want[i])
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", want[i], got, err, k)
		}
		if got, want := k.PerModel(), k == KindKeyModel || k == KindEndUserModel; got != want {
			t.Errorf("%v.PerModel() = %v", k, got)
		}
	}
}

func TestParseKindIsExact(t *testing.T) {
	for _, s := range []string{"", "Key", "KEY", " key", "keys", "end-user", "key×model", "Kind(1)"} {
		if k, err := ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q) = %v, want error", s, k)
		}
	}
}

func TestInvalidKinds(t *testing.T) {
	for _, k := range []Kind{0, KindEndUserModel + 1, 255} {
		if k.Valid() {
			t.Errorf("%d reported valid", k)
		}
		if _, err := k.MarshalText(); err == nil {
			t.Errorf("MarshalText(%d) succeeded", k)
		}
	}
	if got := Kind(42).String(); got != "Kind(42)" {
		t.Errorf("String() = %q", got)
	}
}

func TestKindJSON(t *testing.T) {
	var v struct{ K Kind }
	if err := json.Unmarshal([]byte(`{"K":"end_user_model"}`), &v); err != nil || v.K != KindEndUserModel {
		t.Fatalf("unmarshal: %v, %v", v.K, err)
	}
	out, err := json.Marshal(v)
	if err != nil || string(out) != `{"K":"end_user_model"}` {
		t.Fatalf("marshal: %s, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"K":"team "}`), &v); err == nil {
		t.Fatal("unmarshal accepted an unknown kind")
	}
}
