package pricing

import (
	"strconv"
	"strings"
)

// Kind is one class of tokens the gateway meters. Each is priced separately; together they are
// disjoint, so a token is counted under exactly one kind (see Usage).
type Kind int

const (
	KindInput           Kind = iota // uncached prompt tokens
	KindOutput                      // completion tokens, excluding reasoning
	KindCacheRead                   // prompt tokens served from the provider's cache
	KindCacheCreation               // prompt tokens written to a 5-minute cache
	KindCacheCreation1h             // prompt tokens written to a 1-hour cache
	KindReasoning                   // reasoning ("thinking") tokens the provider reports apart
	NumKinds            = 6
)

var kindNames = [NumKinds]string{"input", "output", "cache_read", "cache_creation", "cache_creation_1h", "reasoning"}

// baseFields are the LiteLLM catalog field names of the untiered price of each kind. Keeping
// LiteLLM's names means an operator's existing model_info overrides and price files work as-is.
var baseFields = [NumKinds]string{
	"input_cost_per_token",
	"output_cost_per_token",
	"cache_read_input_token_cost",
	"cache_creation_input_token_cost",
	"cache_creation_input_token_cost_above_1hr",
	"output_cost_per_reasoning_token",
}

// String returns the component name used in costs and events ("cache_read", ...).
func (k Kind) String() string {
	if k < 0 || k >= NumKinds {
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Field returns the LiteLLM field name of the kind's untiered price.
func (k Kind) Field() string { return baseFields[k] }

// TierField returns the LiteLLM field name of the kind's price above a prompt-size threshold,
// labelled as in the catalog ("200k"): e.g. input_cost_per_token_above_200k_tokens.
func (k Kind) TierField(label string) string { return baseFields[k] + "_above_" + label + "_tokens" }

// fieldRef locates one supported price field: a kind, and a tier threshold (0 for the base price).
type fieldRef struct {
	kind  Kind
	above int64  // prompt tokens the tier starts strictly above; 0 = base
	label string // threshold as written in the field name ("200k")
}

func (f fieldRef) name() string {
	if f.above == 0 {
		return f.kind.Field()
	}
	return f.kind.TierField(f.label)
}

var baseFieldKinds = func() map[string]Kind {
	m := make(map[string]Kind, NumKinds)
	for k, f := range baseFields {
		m[f] = Kind(k)
	}
	return m
}()

// kindsByFieldLength lists kinds longest base field first, so the 1-hour cache field
// ("cache_creation_input_token_cost_above_1hr_above_200k_tokens") is matched before the 5-minute
// one, whose name is its prefix.
var kindsByFieldLength = [NumKinds]Kind{KindCacheCreation1h, KindCacheCreation, KindReasoning, KindCacheRead, KindOutput, KindInput}

// parseField recognises the per-token chat price fields this package supports. Others (audio,
// image, per-second, per-character, service tiers like _priority/_flex/_batches) return false.
func parseField(name string) (fieldRef, bool) {
	if k, ok := baseFieldKinds[name]; ok {
		return fieldRef{kind: k}, true
	}
	rest, ok := strings.CutSuffix(name, "_tokens")
	if !ok {
		return fieldRef{}, false
	}
	for _, k := range kindsByFieldLength {
		label, ok := strings.CutPrefix(rest, baseFields[k]+"_above_")
		if !ok {
			continue
		}
		if above, ok := parseThreshold(label); ok {
			return fieldRef{kind: k, above: above, label: label}, true
		}
	}
	return fieldRef{}, false
}

// parseThreshold reads "200k" as 200000 and "128" as 128, as LiteLLM does.
func parseThreshold(label string) (int64, bool) {
	digits, thousands := strings.CutSuffix(label, "k")
	if digits == "" || len(digits) > 15 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || n > maxTokenCount {
		return 0, false
	}
	if thousands {
		n *= 1000
	}
	return n, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
