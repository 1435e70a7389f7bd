package config

import (
	"strings"
	"testing"
)

const litellmConfig = `
model_list:
  - model_name: claude-opus-4-6
    litellm_params:
      model: vertex_ai/claude-opus-4-6@default
      api_key: os.environ/VERTEX_KEY
      weight: 3
      mystery_param: 1
    model_info:
      id: opus-vertex
      input_cost_per_token: 3e-06
      cache_read_input_token_cost: 0
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 2
  fallbacks: [{"claude-opus-4-6": ["gpt-4o"]}]
  provider_budget_config:
    openai: {budget_limit: 100, time_period: 1d}
litellm_settings:
  tag_budget_config:
    prod: {max_budget: "0.5", budget_duration: 1d}
general_settings:
  master_key: os.environ/MASTER
  alerting: ["slack"]
`

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseLiteLLMConfigUnchanged(t *testing.T) {
	c, err := Parse([]byte(litellmConfig), env(map[string]string{"VERTEX_KEY": "vk", "MASTER": "sk-m"}))
	if err != nil {
		t.Fatal(err)
	}
	d := c.ModelList[0]
	if d.LiteLLMParams.APIKey != "vk" || c.GeneralSettings.MasterKey != "sk-m" {
		t.Fatalf("os.environ/ not resolved: api_key=%q master_key=%q", d.LiteLLMParams.APIKey, c.GeneralSettings.MasterKey)
	}
	if got := *d.ModelInfo.InputCostPerToken; got != "3e-06" {
		t.Fatalf("input price %q; want the exact text 3e-06", got)
	}
	if got := d.ModelInfo.CacheReadInputTokenCost; got == nil || *got != "0" {
		t.Fatalf("explicit zero cache price lost: %v", got)
	}
	if d.ModelInfo.OutputCostPerToken != nil {
		t.Fatal("an unset price must stay unset, not zero")
	}
	if got := *c.RouterSettings.ProviderBudgetConfig["openai"].BudgetLimit; got != "100" {
		t.Fatalf("provider budget %q", got)
	}
	if c.RouterSettings.Fallbacks[0]["claude-opus-4-6"][0] != "gpt-4o" {
		t.Fatalf("fallbacks %v", c.RouterSettings.Fallbacks)
	}
}

func TestUnknownKeysAreWarnedWithTheirPath(t *testing.T) {
	c, err := Parse([]byte(litellmConfig), env(map[string]string{"VERTEX_KEY": "vk", "MASTER": "sk-m"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"general_settings.alerting", "model_list[0].litellm_params.mystery_param"}
	if strings.Join(c.Warnings, ",") != strings.Join(want, ",") {
		t.Fatalf("warnings %q; want %q", c.Warnings, want)
	}
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"missing model":    {"model_list: [{model_name: a, litellm_params: {}}]", "model_list[0].litellm_params.model"},
		"unset env":        {"model_list: [{model_name: a, litellm_params: {model: openai/x, api_key: os.environ/NOPE}}]", "model_list[0].litellm_params.api_key"},
		"price not number": {"model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: {input_cost_per_token: [1]}}]", "want a number"},
		"bad unpriced":     {"model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: {unpriced: maybe}}]", "model_info.unpriced"},
		"empty model list": {"general_settings: {master_key: x}", "model_list"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want it to mention %q", err, tc.want)
			}
		})
	}
}
