// Package scope names what a budget limits and owns the one function that
// turns (scope, window, index) into a counter key.
//
// A Scope is a kind plus an ID — a virtual key, a team, a tag, a deployment —
// and, for the per-model kinds (key_model, end_user_model), the model group.
// Identity.Scopes lists every scope one request touches; admission checks
// them all and the ledger's projection charges them all.
//
// # Why one key function
//
// LiteLLM's model_max_budget was never enforced for Vertex AI models because
// enforcement built its cache key from the model name the client sent
// ("claude-opus-4-6") while spend tracking built it from the deployment's
// model ("vertex_ai/claude-opus-4-6@default"): the limit read a counter that
// nothing ever wrote. Here the per-model scopes are built from the model
// group only, in Identity.Scopes, and CounterKey is the only code that spells
// a counter key. Admission (budget service) and projection (ledger service)
// both call it, so they cannot disagree about a name.
//
// # Key format
//
//	sl:c:{<kind>:<id>[:<model group>]}:<duration>:<anchor>:<index>
//
// e.g. "sl:c:{key_model:sk-1:claude-opus-4-6}:1d:cal:20522". IDs are
// percent-encoded, so the key is injective and ParseCounterKey can invert it;
// see CounterKey for the details and the Redis Cluster hash tag.
package scope
