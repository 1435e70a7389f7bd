package deploy

import (
	"fmt"

	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/router"
)

// RouterSettings resolves router_settings (and litellm_settings.num_retries)
// to the router's settings, with LiteLLM's defaults: num_retries 0,
// allowed_fails 3, cooldown_time 5s. Weighted failover is on unless
// enable_weighted_failover is explicitly false. Only simple-shuffle is
// implemented; another routing_strategy is warned about and routed as
// simple-shuffle.
func RouterSettings(cfg *config.Config, set *Set) (router.Settings, []string, error) {
	rs := cfg.RouterSettings
	s := router.Settings{
		AllowedFails:           router.DefaultAllowedFails,
		CooldownTime:           router.DefaultCooldownTime,
		DisableCooldowns:       rs.DisableCooldowns,
		WeightedFailover:       rs.EnableWeightedFailover == nil || *rs.EnableWeightedFailover,
		RetryBackoff:           router.DefaultRetryBackoff,
		Fallbacks:              map[string][]string{},
		ContextWindowFallbacks: map[string][]string{},
	}
	var warnings []string
	switch {
	case rs.NumRetries != nil:
		s.NumRetries = *rs.NumRetries
	case cfg.LiteLLMSettings.NumRetries != nil:
		s.NumRetries = *cfg.LiteLLMSettings.NumRetries
	}
	if s.NumRetries < 0 {
		return s, nil, fmt.Errorf("router_settings.num_retries: must not be negative")
	}
	if rs.AllowedFails != nil {
		if *rs.AllowedFails < 0 {
			return s, nil, fmt.Errorf("router_settings.allowed_fails: must not be negative")
		}
		s.AllowedFails = *rs.AllowedFails
	}
	if rs.CooldownTime != nil {
		d, err := Seconds(string(*rs.CooldownTime))
		if err != nil {
			return s, nil, fmt.Errorf("router_settings.cooldown_time: %w", err)
		}
		s.CooldownTime = d
	}
	if st := rs.RoutingStrategy; st != "" && st != "simple-shuffle" {
		warnings = append(warnings, fmt.Sprintf("router_settings.routing_strategy %q is not implemented; routing with simple-shuffle", st))
	}
	for name, lists := range map[string]struct {
		in  []map[string][]string
		out map[string][]string
	}{
		"fallbacks":                {rs.Fallbacks, s.Fallbacks},
		"context_window_fallbacks": {rs.ContextWindowFallbacks, s.ContextWindowFallbacks},
	} {
		for i, m := range lists.in {
			for from, tos := range m {
				key := from
				if g, ok := set.Lookup(from); ok {
					key = g
				} else if from != "*" {
					warnings = append(warnings, fmt.Sprintf("router_settings.%s[%d]: model group %q has no deployments", name, i, from))
				}
				for _, to := range tos {
					g, ok := set.Lookup(to)
					if !ok {
						warnings = append(warnings, fmt.Sprintf("router_settings.%s[%d].%s: fallback model group %q has no deployments; skipped", name, i, from, to))
						continue
					}
					lists.out[key] = append(lists.out[key], g)
				}
			}
		}
	}
	return s, warnings, nil
}
