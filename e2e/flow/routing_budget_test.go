package flow_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/spendledger/spendledger/e2e/harness"
)

// routingConfig is reference 004 in LiteLLM's own config keys: a provider
// budget and a tag budget too small for any request's estimate, so they
// filter deterministically.
const routingConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      mock_response: "from openai"
    model_info:
      id: oai-1
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o
      mock_response: "from azure"
    model_info:
      id: az-1
  - model_name: openai-only
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: "from openai"
    model_info:
      id: oai-mini
router_settings:
  routing_strategy: simple-shuffle
  provider_budget_config:
    openai:
      budget_limit: 0.000001
      time_period: 1d
litellm_settings:
  tag_budget_config:
    "product:chat-bot":
      max_budget: 0.000001
      budget_duration: 1d
general_settings:
  master_key: sk-flow-master
`

// post sends a chat completion with extra top-level JSON fields.
func (f *flow) post(key, model, extra string) (int, http.Header, string) {
	f.t.Helper()
	return f.send(key, fmt.Sprintf(`{"model":%q,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]%s}`, model, extra))
}

func errorMessage(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Message, Type string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an OpenAI error: %q", body)
	}
	return e.Error.Message
}

// TestProviderAndTagBudgetsFromConfigFilterRouting is reference 004 end to
// end: the config's provider budget removes the openai deployment from a
// group's candidates (every request lands on azure; without the filter a
// shuffle over two equal deployments would pick openai about half the time),
// a group with only openai deployments is refused naming the provider budget,
// and a request tagged with an exhausted tag is refused naming the tag while
// untagged requests still pass.
func TestProviderAndTagBudgetsFromConfigFilterRouting(t *testing.T) {
	t.Parallel()
	f := start(t, harness.WithGatewayConfigYAML(routingConfig))
	_, key := f.key()

	for i := range 12 {
		code, h, body := f.post(key, "gpt-4o", "")
		if code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
		if got := h.Get("X-Litellm-Model-Id"); got != "az-1" {
			t.Fatalf("request %d routed to %q; the openai provider budget should leave only az-1", i, got)
		}
	}

	code, _, body := f.post(key, "openai-only", "")
	if code != http.StatusTooManyRequests {
		t.Fatalf("openai-only group: %d %s; want 429", code, body)
	}
	if msg := errorMessage(t, body); !strings.Contains(msg, "openai") {
		t.Fatalf("openai-only denial %q does not name the provider", msg)
	}

	for _, extra := range []string{`,"tags":["product:chat-bot"]`, `,"metadata":{"tags":["product:chat-bot"]}`} {
		code, _, body = f.post(key, "gpt-4o", extra)
		if code != http.StatusTooManyRequests {
			t.Fatalf("tagged request %s: %d %s; want 429", extra, code, body)
		}
		if msg := errorMessage(t, body); !strings.Contains(msg, "product:chat-bot") {
			t.Fatalf("tag denial %q does not name the tag", msg)
		}
	}
	if code, _, body = f.post(key, "gpt-4o", `,"tags":["product:other"]`); code != http.StatusOK {
		t.Fatalf("a tag without a budget: %d %s", code, body)
	}
}
