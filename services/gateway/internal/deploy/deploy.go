// Package deploy turns the config's model_list into the deployments the
// gateway serves: stable ids, provider and backend model, the transport that
// calls each, its price overrides and resolved catalog prices, and the
// admission candidate sent to the budget service. Everything here is computed
// once at start-up and shared read-only by every request.
package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"time"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/router"
	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

// Deployment is one model_list entry, ready to serve.
type Deployment struct {
	R router.Deployment
	// Provider is the prefix of litellm_params.model ("openai", "anthropic",
	// "vertex_ai"); BackendModel is litellm_params.model as configured.
	Provider, BackendModel, BaseModel string
	// APIBase is where the transport calls, for logs ("mock" for mocks).
	APIBase   string
	Transport upstream.Transport
	// Timeout bounds one call to this deployment; 0 means none.
	Timeout time.Duration
	// PriceOverrides are the configured price fields; never mutated.
	PriceOverrides  map[string]string
	UnpricedAllowed bool
	// Pricing is the deployment's prices resolved against the gateway's
	// catalog, for the x-litellm-response-cost header. The ledger's cost, from
	// the pricing service, is authoritative.
	Pricing *pricing.Resolution
	// Candidate is this deployment as admission sees it.
	Candidate *budgetv1.Candidate
	// Entry is the model_list entry it was built from (api_key resolved).
	Entry config.Deployment
}

// ID is the deployment's id.
func (d *Deployment) ID() string { return d.R.ID }

// Group is the model group it serves.
func (d *Deployment) Group() string { return d.R.Group }

// Set is every deployment, by index and by group.
type Set struct {
	Deployments []*Deployment
	Groups      map[string][]*Deployment
	// GroupNames are the model groups, sorted, then the aliases.
	GroupNames []string
	// Aliases map router_settings.model_group_alias names to groups.
	Aliases map[string]string
}

// Lookup resolves a client's model name (a group or an alias) to a group.
func (s *Set) Lookup(model string) (string, bool) {
	if _, ok := s.Groups[model]; ok {
		return model, true
	}
	if g, ok := s.Aliases[model]; ok {
		_, ok := s.Groups[g]
		return g, ok
	}
	return "", false
}

// RouterDeployments are the deployments as the router sees them.
func (s *Set) RouterDeployments() []*router.Deployment {
	out := make([]*router.Deployment, len(s.Deployments))
	for i, d := range s.Deployments {
		out[i] = &d.R
	}
	return out
}

// SplitModel returns the provider and the provider's model name of a
// litellm_params.model. Without a prefix, LiteLLM infers the provider from the
// name; the common cases are Claude models (anthropic) and the rest (openai).
func SplitModel(model string) (provider, name string) {
	if p, rest, ok := strings.Cut(model, "/"); ok {
		return p, rest
	}
	if strings.HasPrefix(model, "claude") {
		return "anthropic", model
	}
	return "openai", model
}

// Builder builds deployments from model_list entries: at start-up from the
// config, and at runtime for LiteLLM's /model/new and /model/update, with the
// same catalog, HTTP client, environment and config-wide defaults (timeouts).
type Builder struct {
	cfg    *config.Config
	cat    *pricing.Catalog
	client *http.Client
	getenv func(string) string
}

// NewBuilder returns a Builder; see Build for the arguments.
func NewBuilder(cfg *config.Config, cat *pricing.Catalog, client *http.Client, getenv func(string) string) *Builder {
	return &Builder{cfg: cfg, cat: cat, client: client, getenv: getenv}
}

// Build builds the deployments of cfg. cat may be nil (no cost header).
// getenv supplies provider keys a deployment does not set (OPENAI_API_KEY,
// ANTHROPIC_API_KEY, AZURE_API_KEY), as LiteLLM reads them.
func Build(cfg *config.Config, cat *pricing.Catalog, client *http.Client, getenv func(string) string) (*Set, []string, error) {
	b := NewBuilder(cfg, cat, client, getenv)
	s := &Set{Groups: map[string][]*Deployment{}, Aliases: map[string]string{}}
	var warnings []string
	explicit := map[string]string{}
	for i, cd := range cfg.ModelList {
		if id := cd.ModelInfo.ID; id != "" {
			if prev, dup := explicit[id]; dup {
				return nil, nil, fmt.Errorf("model_list[%d].model_info.id: %q is already the id of %s", i, id, prev)
			}
			explicit[id] = fmt.Sprintf("model_list[%d]", i)
		}
	}
	used := map[string]bool{}
	for i, cd := range cfg.ModelList {
		path := fmt.Sprintf("model_list[%d]", i)
		id := cd.ModelInfo.ID
		if id == "" {
			id = generatedID(cd, func(id string) bool { return used[id] || explicit[id] != "" })
		}
		used[id] = true
		d, warn, err := b.Deployment(path, i, id, cd)
		if err != nil {
			return nil, nil, err
		}
		if warn != "" {
			warnings = append(warnings, warn)
		}
		s.Deployments = append(s.Deployments, d)
		s.Groups[cd.ModelName] = append(s.Groups[cd.ModelName], d)
	}
	s.sortGroups()
	aliases := make([]string, 0, len(cfg.RouterSettings.ModelGroupAlias))
	for alias, g := range cfg.RouterSettings.ModelGroupAlias {
		if _, ok := s.Groups[g]; !ok {
			warnings = append(warnings, fmt.Sprintf("router_settings.model_group_alias.%s: model group %q has no deployments; alias ignored", alias, g))
			continue
		}
		if _, ok := s.Groups[alias]; ok {
			continue // a real group wins over an alias of the same name
		}
		s.Aliases[alias] = g
		aliases = append(aliases, alias)
	}
	sort.Strings(aliases)
	s.GroupNames = append(s.GroupNames, aliases...)
	return s, warnings, nil
}

// sortGroups sets GroupNames to the sorted groups (aliases are appended by
// the caller).
func (s *Set) sortGroups() {
	s.GroupNames = s.GroupNames[:0:0]
	for g := range s.Groups {
		s.GroupNames = append(s.GroupNames, g)
	}
	sort.Strings(s.GroupNames)
}

// Deployment builds one entry as the deployment with id at index (its index
// in Set.Deployments). path names the entry in errors and in the warning
// returned (a transport that cannot call the backend).
func (b *Builder) Deployment(path string, index int, id string, cd config.Deployment) (*Deployment, string, error) {
	p := cd.LiteLLMParams
	provider, name := SplitModel(p.Model)
	d := &Deployment{
		Provider: provider, BackendModel: p.Model, BaseModel: cd.ModelInfo.BaseModel,
		UnpricedAllowed: cd.ModelInfo.Unpriced == "allow",
		Entry:           cd,
	}
	d.R = router.Deployment{Index: index, ID: id, Group: cd.ModelName, Weight: p.Weight, RPM: p.RPM, TPM: p.TPM}

	overrides, err := cd.PriceOverrides()
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	parsed, _, err := pricing.ParseOverrides(overrides)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	d.PriceOverrides = overrides
	if b.cat != nil {
		r := b.cat.Resolve(pricing.Deployment{Provider: provider, Model: p.Model, BaseModel: d.BaseModel, Overrides: parsed})
		d.Pricing = &r
	}

	d.Timeout, err = timeout(b.cfg, p)
	if err != nil {
		return nil, "", fmt.Errorf("%s.litellm_params.timeout: %w", path, err)
	}
	t, base, warn, err := transport(p, provider, name, b.client, b.getenv)
	if err != nil {
		return nil, "", fmt.Errorf("%s.litellm_params.mock_response: %w", path, err)
	}
	d.Transport, d.APIBase = t, base
	if warn != "" {
		warn = fmt.Sprintf("%s (%s): %s", path, id, warn)
	}
	d.Candidate = &budgetv1.Candidate{
		DeploymentId: id, Provider: provider, BackendModel: p.Model, BaseModel: d.BaseModel,
		PriceOverrides: overrides, UnpricedAllowed: d.UnpricedAllowed,
	}
	return d, warn, nil
}

// generatedID is a stable id for a deployment without model_info.id: a hash
// of what identifies the backend (group, model, api_base, api_version). Not the
// key (rotating a key must not change the id deployment budgets are keyed by),
// nor weights or prices. Identical entries get -2, -3... in config order.
func generatedID(cd config.Deployment, taken func(string) bool) string {
	for id := range candidateIDs(cd) {
		if !taken(id) {
			return id
		}
	}
	panic("unreachable: candidateIDs is infinite")
}

// candidateIDs yields the generated ids of cd in order: the hash, then the
// hash with -2, -3...
func candidateIDs(cd config.Deployment) func(yield func(string) bool) {
	h := sha256.Sum256([]byte(strings.Join([]string{cd.ModelName, cd.LiteLLMParams.Model, cd.LiteLLMParams.APIBase, cd.LiteLLMParams.APIVersion}, "\x00")))
	base := "dep-" + hex.EncodeToString(h[:8])
	return func(yield func(string) bool) {
		if !yield(base) {
			return
		}
		for n := 2; ; n++ {
			if !yield(fmt.Sprintf("%s-%d", base, n)) {
				return
			}
		}
	}
}

func timeout(cfg *config.Config, p config.LiteLLMParams) (time.Duration, error) {
	for _, d := range []*config.Decimal{p.Timeout, cfg.RouterSettings.Timeout, cfg.LiteLLMSettings.RequestTimeout} {
		if d != nil {
			return Seconds(string(*d))
		}
	}
	return 0, nil
}

// Seconds converts decimal seconds ("30", "0.5") to a Duration exactly.
func Seconds(s string) (time.Duration, error) {
	r, err := money.ParseDecimal(s)
	if err != nil {
		return 0, err
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("%s: must not be negative", s)
	}
	ns := new(big.Rat).Mul(r, big.NewRat(int64(time.Second), 1))
	q := new(big.Int).Quo(ns.Num(), ns.Denom())
	if !q.IsInt64() {
		return 0, fmt.Errorf("%s: too large", s)
	}
	return time.Duration(q.Int64()), nil
}

func transport(p config.LiteLLMParams, provider, name string, client *http.Client, getenv func(string) string) (t upstream.Transport, base, warn string, err error) {
	if p.MockResponse.Kind != 0 {
		m, err := ParseMock(&p.MockResponse)
		if err != nil {
			return nil, "", "", err
		}
		m.Model = name
		return m, "mock", "", nil
	}
	key := func(env string) string {
		if p.APIKey != "" {
			return p.APIKey
		}
		return getenv(env)
	}
	switch {
	case provider == "anthropic":
		a := upstream.NewAnthropic(client, p.APIBase, key("ANTHROPIC_API_KEY"), name)
		return a, a.URL(), "", nil
	case provider == "azure":
		if p.APIBase == "" {
			return &upstream.Unsupported{Reason: "azure deployment has no api_base"}, "", "azure deployment has no api_base; every call to it fails", nil
		}
		o := upstream.NewAzure(client, p.APIBase, key("AZURE_API_KEY"), p.APIVersion, name)
		return o, o.URL(), "", nil
	case p.APIBase != "":
		o := upstream.NewOpenAI(client, p.APIBase, p.APIKey, name)
		return o, o.URL(), "", nil
	case provider == "openai":
		o := upstream.NewOpenAI(client, upstream.DefaultOpenAIBase, key("OPENAI_API_KEY"), name)
		return o, o.URL(), "", nil
	}
	reason := fmt.Sprintf("provider %q has no native transport in this gateway; set litellm_params.api_base to an OpenAI-compatible endpoint for it", provider)
	return &upstream.Unsupported{Reason: reason}, "", reason + "; every call to it fails over", nil
}
