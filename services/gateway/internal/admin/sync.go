package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

// ConfigBudget is one budget the config file declares.
type ConfigBudget struct {
	// Path names it in the config, for logs and errors.
	Path     string
	Scope    *eventsv1.Scope
	Limit    money.Nanos
	Duration string // "" is a lifetime budget
}

// ConfigBudgets are the budgets cfg declares, checked: provider budgets
// (router_settings.provider_budget_config), tag budgets
// (litellm_settings.tag_budget_config) and deployment budgets
// (litellm_params.max_budget / budget_duration, on the deployment's id as
// admission sees it). A malformed one is an error: the gateway must not start
// believing a budget is in force that the budget service would refuse.
func ConfigBudgets(cfg *config.Config, set *deploy.Set) ([]ConfigBudget, error) {
	var out []ConfigBudget
	add := func(path string, kind eventsv1.ScopeKind, id string, limit *config.Decimal, dur string) error {
		b := ConfigBudget{Path: path, Scope: scopeOf(kind, id, ""), Duration: dur}
		if _, err := protoconv.Scope(b.Scope); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if limit == nil {
			return fmt.Errorf("%s: a budget needs a limit (budget_limit or max_budget)", path)
		}
		n, err := money.ParseLimit(string(*limit))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		b.Limit = n
		if dur != "" {
			if _, err := window.Parse(dur); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		out = append(out, b)
		return nil
	}
	for _, sec := range []struct {
		path string
		kind eventsv1.ScopeKind
		m    map[string]config.BudgetConfig
	}{
		{"router_settings.provider_budget_config", kindProvider, cfg.RouterSettings.ProviderBudgetConfig},
		{"litellm_settings.tag_budget_config", kindTag, cfg.LiteLLMSettings.TagBudgetConfig},
	} {
		names := make([]string, 0, len(sec.m))
		for n := range sec.m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			path := sec.path + "." + n
			limit, dur, err := resolveBudgetConfig(path, sec.m[n])
			if err != nil {
				return nil, err
			}
			if err := add(path, sec.kind, n, limit, dur); err != nil {
				return nil, err
			}
		}
	}
	for _, d := range set.Deployments {
		p := d.Entry.LiteLLMParams
		if p.MaxBudget == nil {
			if p.BudgetDuration != "" {
				return nil, fmt.Errorf("model_list[%d].litellm_params.budget_duration: set without max_budget", d.R.Index)
			}
			continue
		}
		if err := add(fmt.Sprintf("model_list[%d].litellm_params (%s)", d.R.Index, d.ID()), kindDeployment, d.ID(), p.MaxBudget, p.BudgetDuration); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolveBudgetConfig reads LiteLLM's two spellings of a budget
// (budget_limit / time_period, max_budget / budget_duration); both spellings
// with different values is an error, not a guess.
func resolveBudgetConfig(path string, c config.BudgetConfig) (*config.Decimal, string, error) {
	limit := c.BudgetLimit
	if c.MaxBudget != nil {
		if limit != nil && *limit != *c.MaxBudget {
			return nil, "", fmt.Errorf("%s: budget_limit (%s) and max_budget (%s) disagree", path, *limit, *c.MaxBudget)
		}
		limit = c.MaxBudget
	}
	dur := c.TimePeriod
	if c.BudgetDuration != "" {
		if dur != "" && dur != c.BudgetDuration {
			return nil, "", fmt.Errorf("%s: time_period (%s) and budget_duration (%s) disagree", path, dur, c.BudgetDuration)
		}
		dur = c.BudgetDuration
	}
	return limit, dur, nil
}

// ProviderBudgets are the provider budgets of budgets, for Config.Providers.
func ProviderBudgets(budgets []ConfigBudget) map[string]ProviderBudget {
	m := map[string]ProviderBudget{}
	for _, b := range budgets {
		if b.Scope.GetKind() == kindProvider {
			m[b.Scope.GetId()] = ProviderBudget{Limit: b.Limit, Duration: b.Duration}
		}
	}
	return m
}

// Syncer writes the config's budgets to the budget service. Each budget
// replaces the one of its scope (same duration, else the first: a changed
// time_period moves the budget instead of adding a second), so syncing is
// idempotent and every gateway instance may do it at start. Budgets the
// config no longer names are left alone (they may have been set through the
// API); delete them in the budget service.
type Syncer struct {
	h       *Handler
	budgets []ConfigBudget

	mu   sync.Mutex
	done bool
	last error
}

// NewSyncer returns a Syncer of budgets through h's budget client.
func NewSyncer(h *Handler, budgets []ConfigBudget) *Syncer {
	return &Syncer{h: h, budgets: budgets, done: len(budgets) == 0}
}

// Sync writes every budget once; the first failure stops the pass (the
// caller retries the whole pass, which is idempotent).
func (s *Syncer) Sync(ctx context.Context) error {
	for _, b := range s.budgets {
		got, oerr := s.h.setBudget(ctx, b.Scope, b.Limit, b.Duration)
		if oerr != nil {
			err := fmt.Errorf("syncing %s: %w", b.Path, oerr)
			s.mu.Lock()
			s.last = err
			s.mu.Unlock()
			return err
		}
		s.h.Log.Info("config budget synced", "config", b.Path, "budget_id", got.GetSpec().GetBudgetId(),
			"scope", scopeName(b.Scope), "scope_id", b.Scope.GetId(), "limit", b.Limit.String(), "duration", b.Duration)
	}
	s.mu.Lock()
	s.done, s.last = true, nil
	s.mu.Unlock()
	return nil
}

// Ready is a readiness check: the gateway is not ready until the budgets the
// config declares are in force (a provider budget that silently is not there
// is the failure this project exists to prevent).
func (s *Syncer) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.done:
		return nil
	case s.last != nil:
		return fmt.Errorf("config budgets not synced to the budget service yet: %w", s.last)
	}
	return errors.New("config budgets not synced to the budget service yet")
}
