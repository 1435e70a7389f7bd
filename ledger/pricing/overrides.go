package pricing

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Overrides are the price fields a deployment sets itself (LiteLLM's model_info prices). A field
// absent from the map is not set and will be inherited from the catalog; "0" is set, to free.
//
// Overrides travel in every UsageRecorded event as the map they were parsed from, so pricing an
// event again later gives the same answer even if the deployment's configuration has changed.
type Overrides struct {
	sheet PriceSheet
}

// ParseOverrides reads a deployment's price fields, keyed by LiteLLM field name, values exact
// decimal text ("0.000003", "3e-06", "0"). An invalid, empty or negative value is an error naming
// the field: a price that cannot be read must stop the configuration, not become zero. Names
// that are not supported per-token price fields (model_info also carries ids, modes, image
// prices...) are returned in ignored, sorted, for the caller to log.
func ParseOverrides(fields map[string]string) (o Overrides, ignored []string, err error) {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		ref, ok := parseField(name)
		if !ok {
			ignored = append(ignored, name)
			continue
		}
		text := strings.TrimSpace(fields[name])
		if text == "" {
			return Overrides{}, nil, fmt.Errorf("pricing: override %s: empty value (omit the field to inherit the catalog price, or write 0 for free)", name)
		}
		p, err := ParsePrice(text)
		if err != nil {
			return Overrides{}, nil, fmt.Errorf("pricing: override %s: %w", name, err)
		}
		if !o.sheet.set(ref, p) {
			return Overrides{}, nil, fmt.Errorf("pricing: override %s: the same price is already set under another spelling of its threshold", name)
		}
	}
	return o, ignored, nil
}

// Len returns the number of fields set.
func (o Overrides) Len() int { return len(o.sheet.Fields()) }

// Price returns the override stored under a LiteLLM field name, or Unknown when not set.
func (o Overrides) Price(field string) Price { return o.sheet.Price(field) }

// Sheet returns a copy of the overrides as a PriceSheet.
func (o Overrides) Sheet() PriceSheet { return o.sheet.clone() }

// Map returns the set fields as exact decimal text, the form events carry. Unset fields are
// absent, never "0": ParseOverrides(o.Map()) gives back the same overrides.
func (o Overrides) Map() map[string]string {
	m := make(map[string]string)
	for _, f := range o.sheet.Fields() {
		m[f] = o.sheet.Price(f).String()
	}
	return m
}
