package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
	"github.com/spendledger/spendledger/services/gateway/internal/server"
)

// modelJSON is a deployment as /model/new and /model/update answer, in
// LiteLLM's model_list entry shape plus what the change did.
type modelJSON struct {
	ModelID string `json:"model_id"`
	entryJSON
	// Created: a new deployment; Changed: false when the same entry was
	// already registered and nothing changed (registering twice is a no-op).
	Created  bool     `json:"created"`
	Changed  bool     `json:"changed"`
	Warnings []string `json:"warnings"`
}

func (h *Handler) modelsEnabled() *openai.Error {
	if h.Models == nil {
		return &openai.Error{Status: http.StatusNotImplemented, Type: openai.TypeInvalidRequest, Message: "runtime model registration is not enabled on this gateway"}
	}
	return nil
}

// modelNew is POST /model/new: a LiteLLM model_list entry {model_name,
// litellm_params, model_info}, read by the same rules as the config file.
// The deployment serves at once, on this gateway instance only (see
// server.Live); litellm_params.max_budget / budget_duration become its
// deployment budget before it serves.
func (h *Handler) modelNew(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	if oerr := h.modelsEnabled(); oerr != nil {
		return nil, oerr
	}
	b, oerr := h.readBody(r)
	if oerr != nil {
		return nil, oerr
	}
	cd, warnings, err := config.ParseDeployment(b, h.Getenv)
	if err != nil {
		return nil, badRequest("", "model entry: "+err.Error())
	}
	change, err := h.Models.AddModel(cd, h.deploymentBudget(ctx))
	if err != nil {
		return nil, modelError(err)
	}
	return h.modelOut(change, warnings), nil
}

// modelUpdate is POST /model/update: {model_info: {id}, model_name?,
// litellm_params?, model_info?}. Fields given replace the deployment's, key
// by key inside litellm_params and model_info; null and absent fields keep
// their value (as in LiteLLM). The merge is on the entry as written, so a
// price the operator never set stays unset: it is never written back as a
// synthesized zero (LiteLLM's bug 002). The same entry again is a no-op.
func (h *Handler) modelUpdate(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	if oerr := h.modelsEnabled(); oerr != nil {
		return nil, oerr
	}
	b, oerr := h.readBody(r)
	if oerr != nil {
		return nil, oerr
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, badRequest("", "request body: "+err.Error())
	}
	patch := deref(&doc)
	if patch == nil || patch.Kind != yaml.MappingNode {
		return nil, badRequest("", "request body must be a JSON object")
	}
	id := takeID(patch)
	if id == "" {
		return nil, badRequest("model_info.id", "model_info.id is required: the id of the deployment to update")
	}
	existing, ok := h.Models.Entry(id)
	if !ok {
		return nil, notFound("no deployment has id " + id)
	}
	if existing.Source == nil {
		return nil, &openai.Error{Status: http.StatusInternalServerError, Type: openai.TypeAPI, Message: "deployment " + id + " has no source entry to update"}
	}
	merged := mergeEntry(existing.Source, patch)
	cd, warnings, err := config.DeploymentFromNode(merged, h.Getenv)
	if err != nil {
		return nil, badRequest("", "model entry: "+err.Error())
	}
	change, err := h.Models.UpdateModel(id, cd, h.deploymentBudget(ctx))
	if err != nil {
		return nil, modelError(err)
	}
	return h.modelOut(change, warnings), nil
}

func modelError(err error) *openai.Error {
	var oe *openai.Error
	var ce *deploy.ConflictError
	switch {
	case errors.As(err, &oe):
		return oe
	case errors.As(err, &ce):
		return &openai.Error{Status: http.StatusConflict, Type: openai.TypeInvalidRequest, Code: codeAlreadyExists, Param: "model_info.id", Message: ce.Error()}
	case errors.Is(err, server.ErrUnknownDeployment):
		return notFound(err.Error())
	}
	return badRequest("", "model entry: "+err.Error())
}

// deploymentBudget returns the hook that sets a runtime deployment's budget
// (litellm_params.max_budget, budget_duration) before it serves: a
// deployment configured with a budget never serves without it.
func (h *Handler) deploymentBudget(ctx context.Context) func(*deploy.Deployment) error {
	return func(d *deploy.Deployment) error {
		p := d.Entry.LiteLLMParams
		if p.MaxBudget == nil {
			return nil
		}
		limit, err := money.ParseLimit(string(*p.MaxBudget))
		if err != nil {
			return badRequest("litellm_params.max_budget", "litellm_params.max_budget: "+err.Error())
		}
		if p.BudgetDuration != "" {
			if _, err := window.Parse(p.BudgetDuration); err != nil {
				return badRequest("litellm_params.budget_duration", "litellm_params.budget_duration: "+err.Error())
			}
		}
		if _, oerr := h.setBudget(ctx, scopeOf(kindDeployment, d.ID(), ""), limit, p.BudgetDuration); oerr != nil {
			return oerr
		}
		h.Log.Info("deployment budget set", "deployment_id", d.ID(), "max_budget", limit.String(), "budget_duration", p.BudgetDuration)
		return nil
	}
}

func (h *Handler) modelOut(c server.ModelChange, warnings []string) *modelJSON {
	d := c.Deployment
	out := &modelJSON{ModelID: d.ID(), entryJSON: entryOf(d), Created: c.Created, Changed: c.Changed, Warnings: append([]string{}, warnings...)}
	if c.Warning != "" {
		out.Warnings = append(out.Warnings, c.Warning)
	}
	return out
}

// entryJSON is a deployment in LiteLLM's model_list entry shape, as written
// (a literal api_key redacted), with model_info.id the id admission uses.
type entryJSON struct {
	ModelName     string         `json:"model_name"`
	LiteLLMParams map[string]any `json:"litellm_params"`
	ModelInfo     map[string]any `json:"model_info"`
}

func entryOf(d *deploy.Deployment) entryJSON {
	out := entryJSON{ModelName: d.Group(), LiteLLMParams: map[string]any{}, ModelInfo: map[string]any{}}
	if src := deref(d.Entry.Source); src != nil {
		if m, ok := nodeJSON(lookup(src, "litellm_params")).(map[string]any); ok {
			out.LiteLLMParams = m
		}
		if m, ok := nodeJSON(lookup(src, "model_info")).(map[string]any); ok {
			out.ModelInfo = m
		}
	}
	if k, ok := out.LiteLLMParams["api_key"].(string); ok && !strings.HasPrefix(k, "os.environ/") {
		out.LiteLLMParams["api_key"] = "<redacted>"
	}
	out.ModelInfo["id"] = d.ID()
	return out
}

// modelInfo is GET /model/info (also /v1/model/info), optionally
// ?litellm_model_id=: every deployment served, as its entry was written plus
// what pricing resolved for it — the catalog entry (model_info.key) and each
// base price that is known, as exact decimals. A price neither the entry nor
// the catalog gives is absent, never a synthesized 0 (LiteLLM's bug 002).
func (h *Handler) modelInfo(_ context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	if oerr := h.modelsEnabled(); oerr != nil {
		return nil, oerr
	}
	want := r.URL.Query().Get("litellm_model_id")
	data := []entryJSON{}
	for _, d := range h.Models.Deployments() {
		if want != "" && d.ID() != want {
			continue
		}
		e := entryOf(d)
		if p := d.Pricing; p != nil {
			if p.Entry != "" {
				e.ModelInfo["key"] = p.Entry
			}
			for _, rp := range p.Prices() {
				if _, set := e.ModelInfo[rp.Field]; !set && rp.Above == 0 && rp.Price.Known() {
					e.ModelInfo[rp.Field] = json.Number(rp.Price.String())
				}
			}
		}
		data = append(data, e)
	}
	if want != "" && len(data) == 0 {
		return nil, notFound("no deployment has model_info.id " + want)
	}
	return map[string]any{"data": data}, nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	return n
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// takeID removes the deployment's id from an update (model_info.id, or
// LiteLLM's top-level model_id) and returns it: it addresses the deployment,
// it is not a change to it.
func takeID(patch *yaml.Node) string {
	id := ""
	if v := lookup(patch, "model_id"); v != nil && v.Kind == yaml.ScalarNode {
		id = v.Value
	}
	removeKey(patch, "model_id")
	if mi := deref(lookup(patch, "model_info")); mi != nil && mi.Kind == yaml.MappingNode {
		if v := lookup(mi, "id"); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
			id = v.Value
		}
		removeKey(mi, "id")
	}
	return id
}

func removeKey(n *yaml.Node, key string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = append(n.Content[:i:i], n.Content[i+2:]...)
			return
		}
	}
}

// mergeEntry returns a copy of base with patch applied: top-level values
// replace, litellm_params and model_info merge key by key, null keeps the
// base value. base is not modified (a live deployment holds it).
func mergeEntry(base, patch *yaml.Node) *yaml.Node {
	out := copyNode(deref(base))
	for i := 0; i+1 < len(patch.Content); i += 2 {
		k, v := patch.Content[i].Value, deref(patch.Content[i+1])
		if v == nil || v.Tag == "!!null" {
			continue
		}
		cur := deref(lookup(out, k))
		if (k == "litellm_params" || k == "model_info") && cur != nil && cur.Kind == yaml.MappingNode && v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				sub := deref(v.Content[j+1])
				if sub == nil || sub.Tag == "!!null" {
					continue
				}
				setKey(cur, v.Content[j].Value, copyNode(sub))
			}
			continue
		}
		setKey(out, k, copyNode(v))
	}
	return out
}

func setKey(n *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content[i+1] = v
			return
		}
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

func copyNode(n *yaml.Node) *yaml.Node {
	n = deref(n)
	if n == nil {
		return nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, x := range n.Content {
		c.Content[i] = copyNode(x)
	}
	return &c
}

// nodeJSON converts a YAML (or JSON) value for a JSON answer. Numbers keep
// their text as json.Number (a price is never a float64 here); text that is
// not a valid JSON number (YAML's .5, 0x10) stays a string.
func nodeJSON(n *yaml.Node) any {
	n = deref(n)
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = nodeJSON(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			l = append(l, nodeJSON(c))
		}
		return l
	}
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool":
		return strings.EqualFold(n.Value, "true")
	case "!!int", "!!float":
		if isJSONNumber(n.Value) {
			return json.Number(n.Value)
		}
	}
	return n.Value
}

func isJSONNumber(s string) bool {
	if s == "" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return false
	}
	_, ok := v.(json.Number)
	return ok
}
