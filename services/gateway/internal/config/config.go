// Package config reads the gateway's configuration: LiteLLM's proxy
// config.yaml, unchanged, so a team moving from LiteLLM brings its file as is.
//
// Four sections are read: model_list, router_settings, litellm_settings and
// general_settings. Keys this gateway does not know are reported as warnings
// (with their path), never silently dropped; a known key with a bad value fails
// loading with the path of the field. Prices are kept as the exact decimal text
// the operator wrote (a YAML float is never parsed into a float64), and values of
// the form "os.environ/NAME" are read from the environment.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is a whole config.yaml.
type Config struct {
	ModelList       []Deployment    `yaml:"model_list"`
	RouterSettings  RouterSettings  `yaml:"router_settings"`
	LiteLLMSettings LiteLLMSettings `yaml:"litellm_settings"`
	GeneralSettings GeneralSettings `yaml:"general_settings"`
	// EnvironmentVariables are set in the process environment before any
	// os.environ/ reference is resolved, as LiteLLM does.
	EnvironmentVariables map[string]string `yaml:"environment_variables"`

	// Warnings lists keys that were present but are not understood.
	Warnings []string `yaml:"-"`
}

// Deployment is one entry of model_list: a model group name and one backend.
type Deployment struct {
	ModelName     string        `yaml:"model_name"`
	LiteLLMParams LiteLLMParams `yaml:"litellm_params"`
	ModelInfo     ModelInfo     `yaml:"model_info"`

	// Source is the entry as written (os.environ/ references unresolved). The
	// admin API compares entries by it (registering the same entry twice is a
	// no-op) and merges /model/update patches into it, so a field the operator
	// never set stays unset instead of coming back as a synthesized value.
	Source *yaml.Node `yaml:"-"`
}

// UnmarshalYAML decodes the entry and keeps its node as Source.
func (d *Deployment) UnmarshalYAML(n *yaml.Node) error {
	type plain Deployment // without this method, so Decode does not recurse
	if err := n.Decode((*plain)(d)); err != nil {
		return err
	}
	d.Source = n
	return nil
}

// LiteLLMParams says how to call the backend.
type LiteLLMParams struct {
	Model          string   `yaml:"model"`
	APIBase        string   `yaml:"api_base"`
	APIKey         string   `yaml:"api_key"`
	APIVersion     string   `yaml:"api_version"`
	Weight         *int     `yaml:"weight"`
	RPM            *int     `yaml:"rpm"`
	TPM            *int     `yaml:"tpm"`
	MaxBudget      *Decimal `yaml:"max_budget"`
	BudgetDuration string   `yaml:"budget_duration"`
	Timeout        *Decimal `yaml:"timeout"`
	// MockResponse is a canned completion (a string) or a failure ({"error": ...}).
	MockResponse yaml.Node `yaml:"mock_response"`
	Prices       `yaml:",inline"`
}

// ModelInfo is the deployment's metadata.
type ModelInfo struct {
	ID        string `yaml:"id"`
	BaseModel string `yaml:"base_model"`
	Mode      string `yaml:"mode"`
	// Unpriced set to "allow" lets the deployment serve usage no catalog prices;
	// the usage is still recorded and flagged UNPRICED.
	Unpriced string `yaml:"unpriced"`
	Prices   `yaml:",inline"`
}

// Prices are per-token price overrides, in LiteLLM's field names. Nil means
// "not set": the field is inherited from the catalog.
type Prices struct {
	InputCostPerToken                    *Decimal `yaml:"input_cost_per_token"`
	OutputCostPerToken                   *Decimal `yaml:"output_cost_per_token"`
	CacheReadInputTokenCost              *Decimal `yaml:"cache_read_input_token_cost"`
	CacheCreationInputTokenCost          *Decimal `yaml:"cache_creation_input_token_cost"`
	CacheCreationInputTokenCostAbove1hr  *Decimal `yaml:"cache_creation_input_token_cost_above_1hr"`
	OutputCostPerReasoningToken          *Decimal `yaml:"output_cost_per_reasoning_token"`
	InputCostPerTokenAbove200kTokens     *Decimal `yaml:"input_cost_per_token_above_200k_tokens"`
	OutputCostPerTokenAbove200kTokens    *Decimal `yaml:"output_cost_per_token_above_200k_tokens"`
	CacheReadInputTokenCostAbove200k     *Decimal `yaml:"cache_read_input_token_cost_above_200k_tokens"`
	CacheCreationInputTokenCostAbove200k *Decimal `yaml:"cache_creation_input_token_cost_above_200k_tokens"`
}

// RouterSettings configures routing between the deployments of a group.
type RouterSettings struct {
	RoutingStrategy        string                `yaml:"routing_strategy"`
	NumRetries             *int                  `yaml:"num_retries"`
	Fallbacks              []map[string][]string `yaml:"fallbacks"`
	ContextWindowFallbacks []map[string][]string `yaml:"context_window_fallbacks"`
	AllowedFails           *int                  `yaml:"allowed_fails"`
	CooldownTime           *Decimal              `yaml:"cooldown_time"`
	Timeout                *Decimal              `yaml:"timeout"`
	// EnableWeightedFailover is on unless explicitly false: a failed deployment
	// is retried on the group's other deployments before cross-group fallbacks.
	// LiteLLM defaults it off; this gateway defaults it on because failing a
	// request while a healthy sibling deployment exists is never what an
	// operator wants. Writing false restores LiteLLM's old behaviour.
	EnableWeightedFailover *bool                   `yaml:"enable_weighted_failover"`
	DisableCooldowns       bool                    `yaml:"disable_cooldowns"`
	ProviderBudgetConfig   map[string]BudgetConfig `yaml:"provider_budget_config"`
	RedisHost              string                  `yaml:"redis_host"`
	RedisPort              *int                    `yaml:"redis_port"`
	RedisPassword          string                  `yaml:"redis_password"`
	ModelGroupAlias        map[string]string       `yaml:"model_group_alias"`
}

// BudgetConfig is a limit over a window, as LiteLLM writes it.
type BudgetConfig struct {
	BudgetLimit    *Decimal `yaml:"budget_limit"`
	MaxBudget      *Decimal `yaml:"max_budget"`
	TimePeriod     string   `yaml:"time_period"`
	BudgetDuration string   `yaml:"budget_duration"`
}

// LiteLLMSettings holds LiteLLM's module-level settings.
type LiteLLMSettings struct {
	TagBudgetConfig             map[string]BudgetConfig `yaml:"tag_budget_config"`
	MaxBudget                   *Decimal                `yaml:"max_budget"`
	BudgetDuration              string                  `yaml:"budget_duration"`
	MaxEndUserBudget            *Decimal                `yaml:"max_end_user_budget"`
	DropParams                  bool                    `yaml:"drop_params"`
	NumRetries                  *int                    `yaml:"num_retries"`
	RequestTimeout              *Decimal                `yaml:"request_timeout"`
	DefaultKeyGenerateParams    map[string]any          `yaml:"default_key_generate_params"`
	UpperboundKeyGenerateParams map[string]any          `yaml:"upperbound_key_generate_params"`
	DefaultInternalUserParams   map[string]any          `yaml:"default_internal_user_params"`
	Callbacks                   []string                `yaml:"callbacks"`
	SuccessCallback             []string                `yaml:"success_callback"`
	FailureCallback             []string                `yaml:"failure_callback"`
}

// GeneralSettings holds the proxy's own settings.
type GeneralSettings struct {
	MasterKey   string `yaml:"master_key"`
	DatabaseURL string `yaml:"database_url"`
}

// Decimal is a number exactly as written in the file ("0.000003", "50").
type Decimal string

// UnmarshalYAML keeps the scalar's text, so 3e-06 stays exactly 3e-06.
func (d *Decimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a number, got a %s", n.Line, kindName(n.Kind))
	}
	*d = Decimal(strings.TrimSpace(n.Value))
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "value"
	}
}

// Load reads and validates a config file.
func Load(path string, getenv func(string) string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b, getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates config text.
func Parse(b []byte, getenv func(string) string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	return parseNode(&root, getenv)
}

// ParseDeployment reads one model_list entry (YAML or JSON, as LiteLLM's
// /model/new takes it) with the rules of a whole file: unknown keys are
// returned as warnings with their path, prices keep their exact text, and
// os.environ/ references are resolved. Errors name the field as
// "model_list[0]....".
func ParseDeployment(b []byte, getenv func(string) string) (Deployment, []string, error) {
	var entry yaml.Node
	if err := yaml.Unmarshal(b, &entry); err != nil {
		return Deployment{}, nil, err
	}
	if len(entry.Content) == 0 || entry.Content[0].Kind != yaml.MappingNode {
		return Deployment{}, nil, errors.New("a model_list entry must be an object")
	}
	return DeploymentFromNode(entry.Content[0], getenv)
}

// DeploymentFromNode is ParseDeployment of an entry already parsed.
func DeploymentFromNode(n *yaml.Node, getenv func(string) string) (Deployment, []string, error) {
	// Wrap the entry as a one-deployment config, so it goes through exactly
	// the decoding and validation of a config file.
	root := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{
		Kind: yaml.MappingNode, Tag: "!!map",
		Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: "model_list"},
			{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{n}},
		},
	}}}
	c, err := parseNode(root, getenv)
	if err != nil {
		return Deployment{}, nil, err
	}
	return c.ModelList[0], c.Warnings, nil
}

func parseNode(root *yaml.Node, getenv func(string) string) (*Config, error) {
	c := &Config{}
	if len(root.Content) == 0 {
		return nil, errors.New("empty config")
	}
	if err := root.Decode(c); err != nil {
		return nil, err
	}
	c.Warnings = unknownKeys(root.Content[0], c)
	lookup := func(name string) string {
		if v, ok := c.EnvironmentVariables[name]; ok {
			return v
		}
		return getenv(name)
	}
	if err := c.resolveEnv(lookup); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

const envPrefix = "os.environ/"

// resolveEnv replaces os.environ/NAME references in the fields that take them.
func (c *Config) resolveEnv(getenv func(string) string) error {
	resolve := func(path string, v *string) error {
		if !strings.HasPrefix(*v, envPrefix) {
			return nil
		}
		name := strings.TrimPrefix(*v, envPrefix)
		val := getenv(name)
		if val == "" {
			return fmt.Errorf("%s: environment variable %s is not set", path, name)
		}
		*v = val
		return nil
	}
	if err := resolve("general_settings.master_key", &c.GeneralSettings.MasterKey); err != nil {
		return err
	}
	for i := range c.ModelList {
		p := &c.ModelList[i].LiteLLMParams
		base := fmt.Sprintf("model_list[%d].litellm_params", i)
		if err := resolve(base+".api_key", &p.APIKey); err != nil {
			return err
		}
		if err := resolve(base+".api_base", &p.APIBase); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validate() error {
	if len(c.ModelList) == 0 {
		return errors.New("model_list: at least one deployment is required")
	}
	for i, d := range c.ModelList {
		path := fmt.Sprintf("model_list[%d]", i)
		if d.ModelName == "" {
			return fmt.Errorf("%s.model_name: required", path)
		}
		if d.LiteLLMParams.Model == "" {
			return fmt.Errorf("%s.litellm_params.model: required (provider/model, e.g. openai/gpt-4o)", path)
		}
		if w := d.LiteLLMParams.Weight; w != nil && *w < 0 {
			return fmt.Errorf("%s.litellm_params.weight: must not be negative", path)
		}
		if u := d.ModelInfo.Unpriced; u != "" && u != "allow" && u != "deny" {
			return fmt.Errorf("%s.model_info.unpriced: want allow or deny, got %q", path, u)
		}
	}
	return nil
}
