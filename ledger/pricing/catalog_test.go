package pricing

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
)

func TestBuiltin_ParsesEmbeddedCatalogExactly(t *testing.T) {
	c := builtinCatalog(t)
	if c.Len() < 2900 {
		t.Fatalf("built-in catalog has %d entries, want the ~2,980 of the LiteLLM snapshot", c.Len())
	}
	if _, ok := c.Entry("sample_spec"); ok {
		t.Fatal("sample_spec is documentation and must be skipped")
	}
	if p := c.Problems(); len(p) != 0 {
		t.Fatalf("built-in catalog has problems in supported fields: %v", p)
	}
	e, ok := c.Entry("claude-sonnet-4-5")
	if !ok {
		t.Fatal("claude-sonnet-4-5 missing")
	}
	want := map[string]*big.Rat{
		"input_cost_per_token":                                        big.NewRat(3, 1_000_000),
		"output_cost_per_token":                                       big.NewRat(15, 1_000_000),
		"cache_read_input_token_cost":                                 big.NewRat(3, 10_000_000),
		"cache_creation_input_token_cost":                             big.NewRat(375, 100_000_000),
		"cache_creation_input_token_cost_above_1hr":                   big.NewRat(6, 1_000_000),
		"input_cost_per_token_above_200k_tokens":                      big.NewRat(6, 1_000_000),
		"output_cost_per_token_above_200k_tokens":                     big.NewRat(225, 10_000_000),
		"cache_read_input_token_cost_above_200k_tokens":               big.NewRat(6, 10_000_000),
		"cache_creation_input_token_cost_above_200k_tokens":           big.NewRat(75, 10_000_000),
		"cache_creation_input_token_cost_above_1hr_above_200k_tokens": big.NewRat(12, 1_000_000),
	}
	for field, r := range want {
		if got := e.Prices.Price(field).Rat(); got == nil || got.Cmp(r) != 0 {
			t.Errorf("%s = %v, want exactly %v", field, got, r.RatString())
		}
	}
	if e.Prices.Price("output_cost_per_reasoning_token").Known() {
		t.Error("claude-sonnet-4-5 lists no reasoning price; it must be unknown, not zero")
	}
	if e.Provider != "anthropic" || e.Mode != "chat" || e.MaxOutputTokens != 64000 || e.MaxInputTokens != 200000 {
		t.Errorf("non-price fields: %+v", e)
	}
	if grok, _ := c.Entry("xai/grok-4-1-fast"); grok.MaxOutputTokens != 2_000_000 {
		t.Errorf(`max_output_tokens "2000000.0" read as %d`, grok.MaxOutputTokens)
	}
}

func TestBuiltin_IsParsedOnceAndVersionIsContentHash(t *testing.T) {
	a, b := builtinCatalog(t), builtinCatalog(t)
	if a != b {
		t.Fatal("Builtin must return the one shared catalog")
	}
	sum := sha256.Sum256(builtinJSON)
	if a.Version() != hex.EncodeToString(sum[:]) {
		t.Fatalf("Version %s is not the sha256 of the embedded file", a.Version())
	}
}

func TestParseCatalog_ToleratesOddEntries(t *testing.T) {
	c, err := ParseCatalog([]byte(`{
		"sample_spec": {"input_cost_per_token": 0.0},
		"last_updated": "2026-07-24",
		"weird-entry": 42,
		"m": {
			"litellm_provider": 7,
			"mode": "chat",
			"max_output_tokens": "lots",
			"max_input_tokens": -5,
			"max_tokens": 1.5,
			"input_cost_per_token": "not a number",
			"output_cost_per_token": {"nested": 1},
			"cache_read_input_token_cost": "3e-07",
			"cache_creation_input_token_cost": -1e-06,
			"cache_creation_input_token_cost_above_1hr": null,
			"output_cost_per_reasoning_token": true,
			"input_cost_per_token_priority": "junk we do not read",
			"supports_vision": "yes"
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := c.Entry("m")
	if !ok {
		t.Fatal("entry with bad fields must still be kept")
	}
	for _, f := range []string{"input_cost_per_token", "output_cost_per_token", "cache_creation_input_token_cost", "cache_creation_input_token_cost_above_1hr", "output_cost_per_reasoning_token"} {
		if p := e.Prices.Price(f); p.Known() {
			t.Errorf("%s: a present-but-invalid price must stay unknown, got %s", f, p)
		}
	}
	if got := e.Prices.Price("cache_read_input_token_cost").String(); got != "0.0000003" {
		t.Errorf("numeric-string price: got %s", got)
	}
	if e.Provider != "" || e.MaxOutputTokens != 0 || e.MaxInputTokens != 0 || e.MaxTokens != 0 || e.Mode != "chat" {
		t.Errorf("bad non-price fields must be skipped: %+v", e)
	}
	var got []string
	for _, p := range c.Problems() {
		got = append(got, p.String())
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		"weird-entry: entry is not a JSON object",
		"m.litellm_provider", "m.max_output_tokens", "m.max_input_tokens", "m.max_tokens",
		"m.input_cost_per_token", "m.output_cost_per_token", "m.cache_creation_input_token_cost",
		"m.output_cost_per_reasoning_token",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems do not mention %q:\n%s", want, joined)
		}
	}
	for _, quiet := range []string{"last_updated", "sample_spec", "priority", "supports_vision", "above_1hr"} {
		if strings.Contains(joined, quiet) {
			t.Errorf("problems should not mention %q:\n%s", quiet, joined)
		}
	}
}

func TestParseCatalog_RejectsMalformedDocuments(t *testing.T) {
	for _, doc := range []string{``, `not json`, `[1,2]`, `null`, `{"a": {}} {"b": {}}`, `{"a": `} {
		if _, err := ParseCatalog([]byte(doc)); err == nil {
			t.Errorf("ParseCatalog(%q): want error", doc)
		}
	}
	c, err := ParseCatalog([]byte(`{}`))
	if err != nil || c.Len() != 0 {
		t.Fatalf("empty catalog: %v, %d entries", err, c.Len())
	}
}

func TestParseCatalog_ConflictingThresholdSpellingsAreReported(t *testing.T) {
	c, err := ParseCatalog([]byte(`{"m": {
		"input_cost_per_token_above_200k_tokens": 0.000006,
		"input_cost_per_token_above_200000_tokens": 0.000001
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := c.Entry("m")
	if len(e.Prices.Tiers) != 1 || e.Prices.Tiers[0].AbovePromptTokens != 200_000 {
		t.Fatalf("tiers: %+v", e.Prices.Tiers)
	}
	// Keys are processed in sorted order, so the outcome is the same on every run.
	if got := e.Prices.Tiers[0].Rates[KindInput].String(); got != "0.000001" {
		t.Fatalf("first spelling in sorted order should win, got %s", got)
	}
	if len(c.Problems()) != 1 {
		t.Fatalf("conflict must be reported: %v", c.Problems())
	}
}

func TestCatalogEntry_ReturnsACopy(t *testing.T) {
	c := builtinCatalog(t)
	e, _ := c.Entry("claude-sonnet-4-5")
	e.Prices.Tiers[0].Rates[KindInput] = Price{}
	e.Prices.Base[KindInput] = Price{}
	again, _ := c.Entry("claude-sonnet-4-5")
	if !again.Prices.Tiers[0].Rates[KindInput].Known() || !again.Prices.Base[KindInput].Known() {
		t.Fatal("mutating a returned Entry changed the catalog")
	}
}

func TestCatalogMerge_OverrideReplacesWholeEntries(t *testing.T) {
	base := builtinCatalog(t)
	op, err := ParseCatalog([]byte(`{
		"claude-sonnet-4-5": {"litellm_provider": "anthropic", "input_cost_per_token": "0.000002", "output_cost_per_token": "0.00001"},
		"my-private-model": {"litellm_provider": "hosted_vllm", "input_cost_per_token": 0, "output_cost_per_token": 0}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	m := base.Merge(op)
	if m.Len() != base.Len()+1 {
		t.Fatalf("merged has %d entries, want %d", m.Len(), base.Len()+1)
	}
	e, _ := m.Entry("claude-sonnet-4-5")
	if e.Prices.Price("input_cost_per_token").String() != "0.000002" {
		t.Fatalf("override entry not used: %v", e.Prices.Price("input_cost_per_token"))
	}
	if e.Prices.Price("cache_read_input_token_cost").Known() || len(e.Prices.Tiers) != 0 {
		t.Fatal("an override entry replaces the whole entry; fields it omits are not mixed in from the base")
	}
	if p, _ := m.Entry("my-private-model"); !p.Prices.Base[KindInput].IsFree() {
		t.Fatal("new entry must be added")
	}
	if orig, _ := base.Entry("claude-sonnet-4-5"); orig.Prices.Price("input_cost_per_token").String() != "0.000003" {
		t.Fatal("Merge changed the base catalog")
	}
	if m.Version() == base.Version() || m.Version() == op.Version() || m.Version() != base.Merge(op).Version() {
		t.Fatal("merged version must differ from both inputs and be deterministic")
	}
	if op.Merge(base).Version() == m.Version() {
		t.Fatal("merge order matters and must show in the version")
	}
	if base.Merge(nil) != base {
		t.Fatal("Merge(nil) must return the receiver")
	}
}

func TestCatalogLookup_IsCaseInsensitiveAfterExact(t *testing.T) {
	c, err := ParseCatalog([]byte(`{"Model-X": {"input_cost_per_token": 1}, "model-x": {"input_cost_per_token": 2}, "Only-Upper": {"input_cost_per_token": 3}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e := c.lookup("model-x"); e == nil || e.Name != "model-x" {
		t.Fatal("exact match first")
	}
	if e := c.lookup("MODEL-X"); e == nil || e.Name != "Model-X" {
		t.Fatalf("case-insensitive collision must pick the smallest name deterministically, got %+v", e)
	}
	if e := c.lookup("only-upper"); e == nil || e.Name != "Only-Upper" {
		t.Fatal("case-insensitive fallback")
	}
}
