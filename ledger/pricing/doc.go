// Package pricing turns token usage into exact cost. It owns the price catalog and the rules that
// resolve a deployment to its prices; it does no I/O beyond reading the catalog embedded in the
// binary.
//
// # Catalog
//
// A [Catalog] is LiteLLM's model_prices_and_context_window.json, parsed exactly: every price is
// read from the JSON number's text into a big.Rat, so "3e-06" is exactly 3/1000000 and no float64
// ever holds a price. [Builtin] is the copy embedded in the binary; operators extend or replace
// entries with [ParseCatalog] and [Catalog.Merge]. A catalog is immutable and identified by
// [Catalog.Version], a content hash that every CostComputed event records.
//
// # Prices: unknown is not free
//
// A [Price] is either unknown (the zero value) or an exact non-negative decimal. "0" is an
// explicit price: free. Nothing in this package ever turns an unknown price into zero, because
// that is how LiteLLM's budgets failed silently (reference 002: a re-registration wrote
// synthesized zeros back, and every budget check then skipped the model as free).
//
// # Resolution
//
// [Catalog.Resolve] maps a [Deployment] (provider, backend model, optional base model, price
// overrides) to a [Resolution]: every per-token price field and the rule that supplied it
// ("deployment_override", "catalog:<entry>", or "unknown"). The catalog entry is found by exact
// name first, then under canonical forms (provider routes, regions and version suffixes
// stripped), and never changes the deployment's provider. Overrides win field by field; fields
// they leave out, cache prices above all, are inherited from the entry (reference 000: partial
// overrides silently billed cache tokens at zero). Resolving is a pure function.
//
// # Cost
//
// [Usage] holds disjoint token counts per [Kind]. [Resolution.Cost] prices them exactly: the
// prompt size picks the tier (e.g. above 200k tokens every kind uses its tier price), each
// component costs tokens × unit price exactly, and the total is rounded half-to-even once to
// nano-USD. Component nanos are allocated by largest remainder so they add up to the total. A
// component with tokens and no price makes the cost UNPRICED; it is never counted as zero.
// [Resolution.UpperBound] bounds a request's cost before it runs, for admission.
//
// The hot path multiplies in 128-bit integers of atto-USD (1e-18 USD); a price finer than that
// falls back to big.Rat. Both give the same exact result.
package pricing
