package pricing

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
)

// resolverMax bounds a Resolver's cache. Deployments are few; a flood of
// distinct ones only costs re-resolving.
const resolverMax = 4096

// Resolver resolves deployments as they travel on the wire (overrides as the
// LiteLLM field map) against one catalog, and caches each Resolution by
// everything resolution depends on. Pricing an event and estimating an
// admission both go through it, so both price a deployment identically.
// It is safe for concurrent use.
type Resolver struct {
	catalog *Catalog
	mu      sync.RWMutex
	cache   map[string]Resolution
}

// NewResolver returns a Resolver for catalog.
func NewResolver(catalog *Catalog) *Resolver {
	return &Resolver{catalog: catalog, cache: map[string]Resolution{}}
}

// Catalog is the catalog the Resolver resolves against.
func (r *Resolver) Catalog() *Catalog { return r.catalog }

// Resolve resolves one deployment. An invalid override is an error naming it.
func (r *Resolver) Resolve(provider, model, baseModel string, overrides map[string]string) (Resolution, error) {
	key := fingerprint(provider, model, baseModel, overrides)
	r.mu.RLock()
	res, ok := r.cache[key]
	r.mu.RUnlock()
	if ok {
		return res, nil
	}
	ov, _, err := ParseOverrides(overrides)
	if err != nil {
		return Resolution{}, fmt.Errorf("price_overrides: %w", err)
	}
	res = r.catalog.Resolve(Deployment{Provider: provider, Model: model, BaseModel: baseModel, Overrides: ov})
	r.mu.Lock()
	if len(r.cache) >= resolverMax {
		clear(r.cache)
	}
	r.cache[key] = res
	r.mu.Unlock()
	return res, nil
}

// fingerprint is an unambiguous string of a deployment's pricing inputs: every
// part is length-prefixed, so no two different inputs share a fingerprint.
func fingerprint(provider, model, baseModel string, overrides map[string]string) string {
	b := make([]byte, 0, 128)
	part := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	part(provider)
	part(model)
	part(baseModel)
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		part(k)
		part(overrides[k])
	}
	return string(b)
}
