package pricing

import (
	"testing"

	"github.com/spendledger/spendledger/ledger/money"
)

func builtinCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	return c
}

func overrides(t testing.TB, fields map[string]string) Overrides {
	t.Helper()
	o, _, err := ParseOverrides(fields)
	if err != nil {
		t.Fatalf("ParseOverrides(%v): %v", fields, err)
	}
	return o
}

func mustCost(t testing.TB, r Resolution, u Usage) Cost {
	t.Helper()
	c, err := r.Cost(u)
	if err != nil {
		t.Fatalf("Cost(%+v): %v", u, err)
	}
	return c
}

func dollars(t testing.TB, s string) money.Nanos {
	t.Helper()
	n, err := money.ParseDollars(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkConsistent asserts the consistency rule: component nanos add up to the total exactly.
func checkConsistent(t testing.TB, c Cost) {
	t.Helper()
	var sum money.Nanos
	for _, comp := range c.Components {
		if comp.Nanos < 0 {
			t.Fatalf("component %s has negative nanos %d", comp.Name, comp.Nanos)
		}
		sum += comp.Nanos
	}
	if sum != c.Total {
		t.Fatalf("sum of component nanos %d != total %d (%+v)", sum, c.Total, c)
	}
}

func component(c Cost, k Kind) Component { return c.Components[k] }
