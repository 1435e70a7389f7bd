package pricing

import "testing"

func TestFingerprintIsUnambiguous(t *testing.T) {
	a := fingerprint("ab", "c", "", nil)
	b := fingerprint("a", "bc", "", nil)
	c := fingerprint("a", "b", "", map[string]string{"c": ""})
	if a == b || b == c || a == c {
		t.Fatalf("fingerprints collide: %q %q %q", a, b, c)
	}
}

func TestResolverCachesPerDeploymentInputs(t *testing.T) {
	cat, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	r := NewResolver(cat)
	plain, err := r.Resolve("openai", "gpt-4o", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	free, err := r.Resolve("openai", "gpt-4o", "", map[string]string{"input_cost_per_token": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Price("input_cost_per_token").Price.IsFree() || !free.Price("input_cost_per_token").Price.IsFree() {
		t.Fatal("an override on one deployment leaked into another of the same model (bug 002)")
	}
	again, _ := r.Resolve("openai", "gpt-4o", "", nil)
	if again.Price("input_cost_per_token").Price.IsFree() {
		t.Fatal("resolving again changed the price")
	}
	if _, err := r.Resolve("openai", "gpt-4o", "", map[string]string{"input_cost_per_token": "cheap"}); err == nil {
		t.Fatal("want an error for an unreadable override")
	}
}
