package redisstore

import (
	"errors"
	"testing"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

func TestSlotMatchesRedisCluster(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]int{
		"foo":                  12182,
		"bar":                  5061,
		"123456789":            12739, // CRC16/XMODEM check value 0x31C3 mod 16384
		"{user1000}.following": slot("user1000"),
		"foo{}{bar}":           slot("foo{}{bar}"), // empty tag: whole key
		"foo{{bar}}zap":        slot("{bar"),
	} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
	if crc16("123456789") != 0x31C3 {
		t.Errorf("crc16 check value %#x, want 0x31c3", crc16("123456789"))
	}
}

func TestCompanionsShareSlotAndAreNotCounters(t *testing.T) {
	k := scope.CounterKey(scope.Scope{Kind: scope.KindTeam, ID: "t:eu"}, window.Spec{Duration: window.MustParse("1d"), Calendar: true}, 20522)
	x, m := companions(k)
	if slot(x) != slot(k) || slot(m) != slot(k) {
		t.Fatalf("companions of %q leave its slot", k)
	}
	if isCompanion(k) || !isCompanion(x) || !isCompanion(m) {
		t.Fatalf("isCompanion wrong for %q %q %q", k, x, m)
	}
	for _, c := range []string{x, m} {
		if _, _, _, err := scope.ParseCounterKey(c); err == nil {
			t.Errorf("companion %q parses as a counter key", c)
		}
		if checkKeys([]string{c}) == nil {
			t.Errorf("checkKeys accepts companion %q", c)
		}
	}
	if err := checkKeys([]string{k, k}); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate keys: %v", err)
	}
	if err := checkKeys([]string{"other"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("foreign key: %v", err)
	}
}

func TestCheckSnapshot(t *testing.T) {
	for _, ok := range []string{"100:105:102", "100:105:", "100:100:", "3:10:3,4,9", "18446744073709551614:18446744073709551615:"} {
		if err := CheckSnapshot(ok); err != nil {
			t.Errorf("CheckSnapshot(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "100:105", "100:105:102:1", "0100:105:", "105:100:", "100:105:99", "100:105:105",
		"100:105:103,102", "100:105:102,102", "100:105:,", "-1:5:", "1:18446744073709551616:", "a:b:"} {
		if err := CheckSnapshot(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckSnapshot(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestApplicationCheck(t *testing.T) {
	k := scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: "sk-1"}, window.Spec{Duration: window.MustParse("1d"), Calendar: true}, 1)
	good := Application{EventID: "e", StreamSeq: 10, TxID: 5, Cost: -3, Keys: []string{k}, PruneFloor: 9}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Application){
		"seq 0":          func(a *Application) { a.StreamSeq = 0 },
		"seq above 2^53": func(a *Application) { a.StreamSeq = MaxExactSeq + 1; a.PruneFloor = 0 },
		"floor = seq":    func(a *Application) { a.PruneFloor = 10 },
		"tx 0":           func(a *Application) { a.TxID = 0 },
		"no event id":    func(a *Application) { a.EventID = "" },
		"no keys":        func(a *Application) { a.Keys = nil },
	} {
		a := good
		mut(&a)
		if err := a.check(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
