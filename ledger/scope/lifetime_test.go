package scope

import (
	"testing"

	"github.com/spendledger/spendledger/ledger/window"
)

func TestLifetimeCounterKeyRoundTrips(t *testing.T) {
	s := Scope{Kind: KindKey, ID: "k1"}
	key := CounterKey(s, window.LifetimeSpec(), 0)
	if key != "sl:c:{key:k1}:lifetime:cal:0" {
		t.Fatalf("key %q", key)
	}
	gs, gw, idx, err := ParseCounterKey(key)
	if err != nil || gs != s || !gw.Equal(window.LifetimeSpec()) || idx != 0 {
		t.Fatalf("ParseCounterKey = %v %v %d %v", gs, gw, idx, err)
	}
}
