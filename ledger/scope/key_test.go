package scope

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/spendledger/spendledger/ledger/window"
)

var (
	calDay   = window.Spec{Duration: window.MustParse("1d"), Calendar: true}
	rollMo   = window.Spec{Duration: window.MustParse("1mo"), Anchor: time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)}
	roll24h  = window.Spec{Duration: window.MustParse("24h"), Anchor: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)}
	calMonth = window.Spec{Duration: window.MustParse("1mo"), Calendar: true}
)

// The format is persistent: live Redis counters are named by it. A change
// here must be a deliberate migration, not a refactor.
func TestCounterKeyGolden(t *testing.T) {
	for _, tc := range []struct {
		s    Scope
		w    window.Spec
		k    int64
		want string
	}{
		{Scope{Kind: KindKeyModel, ID: "sk-1", ModelGroup: "claude-opus-4-6"}, calDay, 20522, "sl:c:{key_model:sk-1:claude-opus-4-6}:1d:cal:20522"},
		{Scope{Kind: KindTeam, ID: "t:eu"}, rollMo, 3, "sl:c:{team:t%3Aeu}:1mo:1769853600:3"},
		{Scope{Kind: KindUser, ID: "ana@example.com"}, roll24h, -1, "sl:c:{user:ana@example.com}:1d:-86400:-1"},
		{Scope{Kind: KindTag, ID: "a{b}c*?[x]\\%"}, calMonth, 0, `sl:c:{tag:a%7Bb%7Dc%2A%3F%5Bx%5D%5C%25}:1mo:cal:0`},
		{Scope{Kind: KindEndUser, ID: "客 1\n"}, calDay, 1, "sl:c:{end_user:%E5%AE%A2%201%0A}:1d:cal:1"},
		{Scope{Kind: KindDeployment, ID: "dep-1"}, window.Spec{Duration: window.MustParse("30s"), Calendar: true}, 59105168, "sl:c:{deployment:dep-1}:30s:cal:59105168"},
	} {
		if got := CounterKey(tc.s, tc.w, tc.k); got != tc.want {
			t.Errorf("CounterKey(%v, %v, %d) =\n %s\nwant\n %s", tc.s, tc.w, tc.k, got, tc.want)
		}
	}
}

// redisHashTag is the part of a key Redis Cluster hashes: the bytes between
// the first '{' and the first '}' after it, if non-empty; else the whole key.
func redisHashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

func TestHashTagIsTheScope(t *testing.T) {
	scopes := []Scope{
		{Kind: KindKey, ID: "sk-1"},
		{Kind: KindKey, ID: "}{"},
		{Kind: KindTag, ID: "{sk-1}"},
		{Kind: KindKeyModel, ID: "sk-1", ModelGroup: "gpt-4o"},
		{Kind: KindKeyModel, ID: "sk-1", ModelGroup: "gpt}4o"},
	}
	specs := []window.Spec{calDay, rollMo, roll24h, calMonth}
	seen := map[string]Scope{}
	for _, s := range scopes {
		tag := redisHashTag(CounterKey(s, calDay, 0))
		if !strings.HasPrefix(tag, s.Kind.String()+":") {
			t.Errorf("%v: hash tag %q is not the scope", s, tag)
		}
		if prev, dup := seen[tag]; dup {
			t.Errorf("%v and %v share hash tag %q", prev, s, tag)
		}
		seen[tag] = s
		for _, w := range specs {
			for _, k := range []int64{-5, 0, 1 << 40} {
				if got := redisHashTag(CounterKey(s, w, k)); got != tag {
					t.Errorf("%v %v %d: hash tag %q, want %q: windows of one scope would span slots", s, w, k, got, tag)
				}
			}
		}
	}
}

func TestCounterKeyDistinguishesWindows(t *testing.T) {
	s := Scope{Kind: KindKey, ID: "sk-1"}
	anchor := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	keys := map[string]string{}
	for name, w := range map[string]window.Spec{
		"1d rolling":      {Duration: window.MustParse("1d"), Anchor: anchor},
		"1d rolling +1s":  {Duration: window.MustParse("1d"), Anchor: anchor.Add(time.Second)},
		"1d calendar":     {Duration: window.MustParse("1d"), Calendar: true},
		"7d calendar":     {Duration: window.MustParse("7d"), Calendar: true},
		"1mo calendar":    {Duration: window.MustParse("1mo"), Calendar: true},
		"30d calendar":    {Duration: window.MustParse("30d"), Calendar: true},
		"1mo rolling":     {Duration: window.MustParse("1mo"), Anchor: anchor},
		"86399s calendar": {Duration: window.MustParse("86399s"), Calendar: true},
	} {
		k := CounterKey(s, w, 7)
		if prev, dup := keys[k]; dup {
			t.Errorf("%s and %s share counter %q", prev, name, k)
		}
		keys[k] = name
	}
	// Identical windows written differently are one counter.
	a := CounterKey(s, window.Spec{Duration: window.MustParse("24h"), Anchor: anchor.Add(400 * time.Millisecond)}, 7)
	b := CounterKey(s, window.Spec{Duration: window.MustParse("1d"), Anchor: anchor}, 7)
	if a != b {
		t.Errorf("equal windows got different counters %q and %q", a, b)
	}
	c := CounterKey(s, window.Spec{Duration: window.MustParse("1d"), Calendar: true, Anchor: anchor}, 7)
	d := CounterKey(s, window.Spec{Duration: window.MustParse("1d"), Calendar: true}, 7)
	if c != d {
		t.Errorf("calendar counter depends on the ignored anchor: %q vs %q", c, d)
	}
}

// Pairs a naive "kind:id:model:window" join would collide on.
func TestCounterKeyResistsCraftedCollisions(t *testing.T) {
	pairs := [][2]Scope{
		{{Kind: KindKey, ID: "a:b"}, {Kind: KindKeyModel, ID: "a", ModelGroup: "b"}},
		{{Kind: KindKeyModel, ID: "a:b", ModelGroup: "c"}, {Kind: KindKeyModel, ID: "a", ModelGroup: "b:c"}},
		{{Kind: KindTag, ID: "x}:1d:cal:5"}, {Kind: KindTag, ID: "x"}},
		{{Kind: KindTag, ID: "%3A"}, {Kind: KindTag, ID: ":"}},
		{{Kind: KindKey, ID: "sk-1"}, {Kind: KindKey, ID: "sk-1", ModelGroup: ""}},
		{{Kind: KindKey, ID: "sk-1"}, {Kind: KindKey, ID: "sk-1", ModelGroup: "m"}}, // invalid, still distinct
		{{Kind: KindKeyModel, ID: "sk-1"}, {Kind: KindKey, ID: "sk-1"}},
	}
	for _, p := range pairs {
		if p[0] == p[1] {
			continue
		}
		if a, b := CounterKey(p[0], calDay, 5), CounterKey(p[1], calDay, 5); a == b {
			t.Errorf("%#v and %#v collide on %q", p[0], p[1], a)
		}
	}
}

type counterInput struct {
	s   Scope
	w   window.Spec
	idx int64
}

func (c counterInput) same(o counterInput) bool {
	return c.s == o.s && c.w.Equal(o.w) && c.idx == o.idx
}

var fuzzSpecs = []window.Spec{
	{}, // invalid, but CounterKey must still be injective on it
	{Duration: window.MustParse("1d"), Calendar: true},
	{Duration: window.MustParse("7d"), Calendar: true},
	{Duration: window.MustParse("1mo"), Calendar: true},
	{Duration: window.MustParse("1h")},
	{Duration: window.MustParse("30s")},
	{Duration: window.MustParse("1mo")},
	{Duration: window.MustParse("3mo")},
}

func fuzzInput(kind uint8, id, mg string, spec uint8, anchor int64, idx int64) counterInput {
	w := fuzzSpecs[int(spec)%len(fuzzSpecs)]
	if !w.Calendar {
		w.Anchor = time.Unix(anchor%(1<<37), 0) // ±4000 years around 1970
	}
	return counterInput{Scope{Kind: Kind(kind % 12), ID: id, ModelGroup: mg}, w, idx}
}

// TestCounterKeyInjectiveDense draws many inputs from a tiny alphabet full of
// separators and escape look-alikes, where collisions would be most likely,
// and demands that equal keys only ever come from equal inputs.
func TestCounterKeyInjectiveDense(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{":", "{", "}", "%", "3", "A", "a", "%3A", "}:", "\x00", "é"}
	word := func() string {
		var b strings.Builder
		for range r.IntN(4) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	seen := map[string]counterInput{}
	for range 300000 {
		in := fuzzInput(uint8(r.IntN(12)), word(), word(), uint8(r.IntN(len(fuzzSpecs))), int64(r.IntN(3))*86400, int64(r.IntN(3))-1)
		key := CounterKey(in.s, in.w, in.idx)
		if prev, ok := seen[key]; ok && !prev.same(in) {
			t.Fatalf("collision on %q:\n%#v\n%#v", key, prev, in)
		}
		seen[key] = in
	}
	if len(seen) < 10000 {
		t.Fatalf("only %d distinct inputs generated; the test is not probing", len(seen))
	}
}

func FuzzCounterKeyInjective(f *testing.F) {
	f.Add(uint8(1), "a:b", "", uint8(1), int64(0), int64(0), uint8(9), "a", "b", uint8(1), int64(0), int64(0))
	f.Add(uint8(6), "x}:1d:cal:5", "", uint8(1), int64(0), int64(0), uint8(6), "x", "", uint8(1), int64(0), int64(5))
	f.Add(uint8(6), "%3A", "", uint8(4), int64(86400), int64(-1), uint8(6), ":", "", uint8(4), int64(86400), int64(-1))
	f.Fuzz(func(t *testing.T, k1 uint8, id1, mg1 string, sp1 uint8, a1, i1 int64, k2 uint8, id2, mg2 string, sp2 uint8, a2, i2 int64) {
		x, y := fuzzInput(k1, id1, mg1, sp1, a1, i1), fuzzInput(k2, id2, mg2, sp2, a2, i2)
		kx, ky := CounterKey(x.s, x.w, x.idx), CounterKey(y.s, y.w, y.idx)
		if (kx == ky) != x.same(y) {
			t.Fatalf("keys %q / %q for inputs %#v / %#v (same=%v)", kx, ky, x, y, x.same(y))
		}
		if kx != CounterKey(x.s, x.w, x.idx) {
			t.Fatal("CounterKey is not deterministic")
		}
	})
}

func TestParseCounterKeyRoundTrip(t *testing.T) {
	for _, in := range []counterInput{
		{Scope{Kind: KindKeyModel, ID: "sk-1", ModelGroup: "claude-opus-4-6"}, calDay, 20522},
		{Scope{Kind: KindTeam, ID: "t:eu"}, rollMo, 3},
		{Scope{Kind: KindUser, ID: "ana@example.com"}, roll24h, -1},
		{Scope{Kind: KindTag, ID: "a{b}c*?[x]\\%"}, calMonth, 0},
		{Scope{Kind: KindEndUserModel, ID: "客 1", ModelGroup: "gpt 4o"}, calDay, 1<<63 - 1},
	} {
		checkRoundTrip(t, in)
	}
}

func checkRoundTrip(t *testing.T, in counterInput) {
	t.Helper()
	key := CounterKey(in.s, in.w, in.idx)
	s, w, idx, err := ParseCounterKey(key)
	if err != nil {
		t.Fatalf("ParseCounterKey(%q): %v", key, err)
	}
	if got := (counterInput{s, w, idx}); !got.same(in) {
		t.Fatalf("ParseCounterKey(%q) = %#v, want %#v", key, got, in)
	}
	if !w.Calendar && w.Anchor.Location() != time.UTC {
		t.Fatalf("anchor not in UTC: %v", w.Anchor)
	}
}

func FuzzParseCounterKeyRoundTrip(f *testing.F) {
	f.Add(uint8(8), "sk-1", "claude-opus-4-6", uint8(1), int64(0), int64(20522))
	f.Add(uint8(1), "t:eu", "", uint8(6), int64(1769853600), int64(3))
	f.Add(uint8(5), "a{b}c*?[x]\\%", "", uint8(3), int64(0), int64(-7))
	f.Fuzz(func(t *testing.T, kind uint8, id, mg string, spec uint8, anchor, idx int64) {
		in := fuzzInput(kind, id, mg, spec, anchor, idx)
		if in.s.Validate() != nil || in.w.Validate() != nil {
			return
		}
		checkRoundTrip(t, in)
	})
}

func TestParseCounterKeyRejects(t *testing.T) {
	for _, key := range []string{
		"",
		"sl:c:",
		"sl:x:{key:a}:1d:cal:0",
		"sl:c:key:a:1d:cal:0",         // no hash tag
		"sl:c:{key:a:1d:cal:0",        // unterminated
		"sl:c:{key:a}:1d:cal",         // missing index
		"sl:c:{key:a}:1d:cal:0:9",     // extra field
		"sl:c:{bogus:a}:1d:cal:0",     // unknown kind
		"sl:c:{key:}:1d:cal:0",        // empty id
		"sl:c:{key_model:a}:1d:cal:0", // per-model kind without model group
		"sl:c:{key:a:m}:1d:cal:0",     // model group on a plain kind
		"sl:c:{key:a:b:c}:1d:cal:0",   // too many scope parts
		"sl:c:{key:a%3}:1d:cal:0",     // truncated escape
		"sl:c:{key:a%ZZ}:1d:cal:0",    // bad escape
		"sl:c:{key:a%3a}:1d:cal:0",    // lowercase escape: not canonical
		"sl:c:{key:%61}:1d:cal:0",     // needless escape: not canonical
		"sl:c:{key:a b}:1d:cal:0",     // raw space: not canonical
		"sl:c:{key:a%0A}:1d:cal:0",    // decodes to a control character
		"sl:c:{key:a}:24h:cal:0",      // non-canonical duration
		"sl:c:{key:a}:1x:cal:0",       // bad duration
		"sl:c:{key:a}:1d:calendar:0",  // bad anchor
		"sl:c:{key:a}:1d:+5:0",        // non-canonical anchor
		"sl:c:{key:a}:1d:cal:007",     // non-canonical index
		"sl:c:{key:a}:1d:cal:99999999999999999999",
	} {
		_, _, _, err := ParseCounterKey(key)
		if err == nil {
			t.Errorf("ParseCounterKey(%q) succeeded, want error", key)
		} else if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseCounterKey(%q) error %v does not wrap ErrInvalidKey", key, err)
		}
	}
}

// Anything ParseCounterKey accepts must be exactly what CounterKey writes, so
// verify never treats two Redis keys as one counter.
func FuzzParseCounterKey(f *testing.F) {
	f.Add("sl:c:{key_model:sk-1:claude-opus-4-6}:1d:cal:20522")
	f.Add("sl:c:{team:t%3Aeu}:1mo:1769853600:3")
	f.Add("sl:c:{key:a%3a}:24h:+5:007")
	f.Fuzz(func(t *testing.T, key string) {
		s, w, idx, err := ParseCounterKey(key)
		if err != nil {
			return
		}
		if again := CounterKey(s, w, idx); again != key {
			t.Fatalf("ParseCounterKey(%q) accepted a key CounterKey writes as %q", key, again)
		}
		if s.Validate() != nil || w.Validate() != nil {
			t.Fatalf("ParseCounterKey(%q) returned an invalid scope or spec", key)
		}
	})
}

func TestCounterKeyAllocatesOnce(t *testing.T) {
	for _, s := range []Scope{
		{Kind: KindKeyModel, ID: "sk-1234567890abcdef", ModelGroup: "claude-opus-4-6"},
		{Kind: KindTag, ID: "needs:escaping{}%"},
	} {
		for _, w := range []window.Spec{calDay, rollMo} {
			if n := testing.AllocsPerRun(100, func() { _ = CounterKey(s, w, -1<<63) }); n != 1 {
				t.Errorf("CounterKey(%v, %v) makes %v allocations, want 1", s, w, n)
			}
		}
	}
}

func BenchmarkCounterKey(b *testing.B) {
	s := Scope{Kind: KindKeyModel, ID: "sk-1234567890abcdef", ModelGroup: "claude-opus-4-6"}
	for _, bc := range []struct {
		name string
		w    window.Spec
	}{{"calendar", calDay}, {"rolling", rollMo}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = CounterKey(s, bc.w, 20522)
			}
		})
	}
}

// BenchmarkAdmissionKeys is the per-request cost: every scope of a full
// identity, keyed for one window.
func BenchmarkAdmissionKeys(b *testing.B) {
	id := fullIdentity()
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range id.Scopes() {
			_ = CounterKey(s, calDay, calDay.Index(time.Unix(1773155069, 0)))
		}
	}
}
