// Package router picks the deployment that serves a request and fails over.
//
// For a model group it runs LiteLLM's simple-shuffle with weighted failover:
//
//  1. Candidates are the group's deployments that admission allowed and that are
//     not cooling down.
//  2. Pick one at random by weight (litellm_params.weight, else rpm, else tpm,
//     else uniformly). A metric whose total over the candidates is zero falls
//     through to the next, so zero-weight backups still serve once the weighted
//     deployments are out.
//  3. On a failure that may succeed elsewhere (upstream.Error.Failover), exclude
//     that deployment and pick again among the rest, by weight: weighted
//     failover. A context-window error never does this: every deployment of
//     the group has the same window.
//  4. When no candidate is left, the group is retried num_retries more times
//     (with a short backoff, exclusions cleared: deployments that failed enough
//     are cooling down by now); then the group's fallbacks are tried in order,
//     each the same way, and for a context-window error its
//     context_window_fallbacks instead.
//
// A deployment cools down for cooldown_time once it failed more than
// allowed_fails times within cooldown_time. The only deployment of a group
// never cools down: that would turn a transient error into an outage of the
// whole group for cooldown_time.
package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

// Deployment is what the router needs to know about a deployment.
type Deployment struct {
	// Index is the caller's index of the deployment (the router ignores it).
	Index int
	ID    string
	Group string
	// Weight, RPM and TPM are the configured routing metrics; nil when unset.
	Weight, RPM, TPM *int
}

// Settings are router_settings, resolved to defaults.
type Settings struct {
	NumRetries   int
	AllowedFails int
	CooldownTime time.Duration
	// DisableCooldowns turns cooldowns off.
	DisableCooldowns bool
	// WeightedFailover re-picks inside the group after a failure.
	WeightedFailover bool
	// Fallbacks and ContextWindowFallbacks map a group to the groups to try
	// after it, in order. The key "*" applies to every group without its own.
	Fallbacks              map[string][]string
	ContextWindowFallbacks map[string][]string
	// RetryBackoff is the wait before the first retry of a group; it doubles per
	// retry, up to 2s.
	RetryBackoff time.Duration
}

// LiteLLM's defaults.
const (
	DefaultAllowedFails = 3
	DefaultCooldownTime = 5 * time.Second
	DefaultRetryBackoff = 100 * time.Millisecond
)

// Rand is the router's source of randomness.
type Rand interface {
	Uint64N(n uint64) uint64
}

type globalRand struct{}

func (globalRand) Uint64N(n uint64) uint64 { return rand.Uint64N(n) }

// Hooks observe routing, for metrics.
type Hooks struct {
	Retry    func(group string)
	Fallback func(from, to string)
	Cooldown func(d *Deployment)
}

// Router routes requests to the deployments of model groups.
type Router struct {
	s      Settings
	groups map[string][]*entry
	rnd    Rand
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	hooks  Hooks
}

type entry struct {
	d *Deployment
	// cooldownUntil is unix nanos; read lock-free on every pick.
	cooldownUntil atomic.Int64
	single        bool

	mu    sync.Mutex
	fails []time.Time // failures within the window, oldest first
}

// Option configures a Router.
type Option func(*Router)

// WithRand sets the source of randomness (tests seed one).
func WithRand(r Rand) Option { return func(rt *Router) { rt.rnd = r } }

// WithClock sets the clock.
func WithClock(now func() time.Time) Option { return func(rt *Router) { rt.now = now } }

// WithHooks sets the observers.
func WithHooks(h Hooks) Option { return func(rt *Router) { rt.hooks = h } }

// New returns a router over deployments, grouped by Deployment.Group in order.
func New(deployments []*Deployment, s Settings, opts ...Option) *Router {
	r := &Router{s: s, groups: map[string][]*entry{}, rnd: globalRand{}, now: time.Now, sleep: sleepCtx}
	for _, d := range deployments {
		r.groups[d.Group] = append(r.groups[d.Group], &entry{d: d})
	}
	for _, es := range r.groups {
		if len(es) == 1 {
			es[0].single = true
		}
	}
	for _, o := range opts {
		o(r)
	}
	if r.hooks.Retry == nil {
		r.hooks.Retry = func(string) {}
	}
	if r.hooks.Fallback == nil {
		r.hooks.Fallback = func(string, string) {}
	}
	if r.hooks.Cooldown == nil {
		r.hooks.Cooldown = func(*Deployment) {}
	}
	return r
}

// Rebuild returns a router over deployments with r's settings, randomness,
// clock and hooks, for a runtime change of the deployments (/model/new). A
// deployment r already routes (the same *Deployment) keeps its cooldown and
// recent failures, so registering a model does not revive a failing sibling;
// a new or replaced deployment starts fresh. r keeps serving the requests
// that started on it.
func (r *Router) Rebuild(deployments []*Deployment) *Router {
	old := map[*Deployment]*entry{}
	for _, es := range r.groups {
		for _, e := range es {
			old[e.d] = e
		}
	}
	n := &Router{s: r.s, groups: map[string][]*entry{}, rnd: r.rnd, now: r.now, sleep: r.sleep, hooks: r.hooks}
	for _, d := range deployments {
		e := &entry{d: d}
		if o := old[d]; o != nil {
			e.cooldownUntil.Store(o.cooldownUntil.Load())
			o.mu.Lock()
			e.fails = append([]time.Time(nil), o.fails...)
			o.mu.Unlock()
		}
		n.groups[d.Group] = append(n.groups[d.Group], e)
	}
	for _, es := range n.groups {
		if len(es) == 1 {
			es[0].single = true
		}
	}
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// HasGroup reports whether group has deployments.
func (r *Router) HasGroup(group string) bool { return len(r.groups[group]) > 0 }

// FallbackChain is every group a request to group may be served by, in the
// order they would be tried: the group, its fallbacks, then its context-window
// fallbacks. Admission gets the deployments of all of them as candidates.
func (r *Router) FallbackChain(group string) []string {
	chain := []string{group}
	seen := map[string]bool{group: true}
	for _, fb := range [][]string{r.fallbacks(r.s.Fallbacks, group), r.fallbacks(r.s.ContextWindowFallbacks, group)} {
		for _, g := range fb {
			if !seen[g] {
				seen[g] = true
				chain = append(chain, g)
			}
		}
	}
	return chain
}

func (r *Router) fallbacks(m map[string][]string, group string) []string {
	if fb, ok := m[group]; ok {
		return fb
	}
	return m["*"]
}

// AttemptFunc calls one deployment. It returns nil on success; an
// *upstream.Error for an upstream failure; the context's error when the
// caller is gone.
type AttemptFunc func(ctx context.Context, d *Deployment) error

// Outcome says how a request was served.
type Outcome struct {
	// Deployment served the request; nil when every attempt failed.
	Deployment *Deployment
	// Attempts is the number of upstream calls made.
	Attempts int
	// Retries is the attempts after the first in any group (failovers and
	// retries); Fallbacks the number of fallback groups tried.
	Retries, Fallbacks int
}

// NoDeploymentsError says no deployment of a group could be tried: all are
// cooling down or excluded by admission.
type NoDeploymentsError struct {
	Group       string
	CoolingDown int
	Excluded    int
	// RetryAfter is when the first cooling deployment comes back.
	RetryAfter time.Duration
}

func (e *NoDeploymentsError) Error() string {
	return fmt.Sprintf("no deployment of model group %q is available (%d cooling down, %d excluded by provider/deployment/tag budgets)", e.Group, e.CoolingDown, e.Excluded)
}

// Do serves a request to group with fn, trying deployments for which allowed
// returns true (nil allows all). It returns the last error when every
// deployment of the group and of its fallbacks failed.
func (r *Router) Do(ctx context.Context, group string, allowed func(id string) bool, fn AttemptFunc) (Outcome, error) {
	var out Outcome
	err := r.tryGroup(ctx, group, allowed, fn, &out)
	if err == nil || ctx.Err() != nil {
		return out, err
	}
	var chain []string
	var ue *upstream.Error
	switch {
	case errors.As(err, &ue) && ue.ContextWindow:
		chain = r.fallbacks(r.s.ContextWindowFallbacks, group)
	case errors.As(err, &ue) && !ue.Failover():
		return out, err // the request is at fault; it would fail anywhere
	default:
		chain = r.fallbacks(r.s.Fallbacks, group)
	}
	for _, fb := range chain {
		if fb == group || len(r.groups[fb]) == 0 {
			continue
		}
		out.Fallbacks++
		r.hooks.Fallback(group, fb)
		ferr := r.tryGroup(ctx, fb, allowed, fn, &out)
		if ferr == nil || ctx.Err() != nil {
			return out, ferr
		}
		// Keep the most informative error: an upstream failure says more than
		// "nothing was available".
		var nd *NoDeploymentsError
		if !errors.As(ferr, &nd) || errors.As(err, &nd) {
			err = ferr
		}
		if errors.As(ferr, &ue) && !ue.Failover() && !ue.ContextWindow {
			return out, ferr
		}
	}
	return out, err
}

func (r *Router) tryGroup(ctx context.Context, group string, allowed func(string) bool, fn AttemptFunc, out *Outcome) error {
	es := r.groups[group]
	var (
		lastErr  error
		excluded = make([]bool, len(es))
		started  = out.Attempts
	)
	for pass := 0; pass <= r.s.NumRetries; pass++ {
		if pass > 0 {
			if lastErr == nil {
				break
			}
			if err := r.sleep(ctx, r.backoff(pass)); err != nil {
				return err
			}
			clear(excluded)
		}
		for {
			i := r.pick(es, excluded, allowed)
			if i < 0 {
				break
			}
			e := es[i]
			if out.Attempts > started {
				out.Retries++
				r.hooks.Retry(group)
			}
			out.Attempts++
			err := fn(ctx, e.d)
			if err == nil {
				out.Deployment = e.d
				return nil
			}
			if ctx.Err() != nil {
				// The client left: not the deployment's fault.
				return ctx.Err()
			}
			var ue *upstream.Error
			if errors.As(err, &ue) && !ue.Failover() {
				return err
			}
			r.failed(e)
			lastErr = err
			excluded[i] = true
			if !r.s.WeightedFailover {
				break
			}
		}
	}
	if lastErr != nil {
		return lastErr
	}
	return r.unavailable(group, allowed)
}

func (r *Router) backoff(pass int) time.Duration {
	b := r.s.RetryBackoff << (pass - 1)
	return min(b, 2*time.Second)
}

func (r *Router) unavailable(group string, allowed func(string) bool) error {
	e := &NoDeploymentsError{Group: group}
	now := r.now().UnixNano()
	for _, en := range r.groups[group] {
		switch until := en.cooldownUntil.Load(); {
		case allowed != nil && !allowed(en.d.ID):
			e.Excluded++
		case until > now:
			e.CoolingDown++
			if d := time.Duration(until - now); e.RetryAfter == 0 || d < e.RetryAfter {
				e.RetryAfter = d
			}
		}
	}
	return e
}

// maxPick bounds the candidates kept on the stack while picking.
const maxPick = 32

// pick returns the index in es of a weighted-random candidate, or -1.
func (r *Router) pick(es []*entry, excluded []bool, allowed func(string) bool) int {
	var buf [maxPick]int
	cands := buf[:0]
	now := r.now().UnixNano()
	for i, e := range es {
		if excluded[i] || (allowed != nil && !allowed(e.d.ID)) || e.cooldownUntil.Load() > now {
			continue
		}
		cands = append(cands, i)
	}
	switch len(cands) {
	case 0:
		return -1
	case 1:
		return cands[0]
	}
	for _, metric := range [...]func(*Deployment) *int{
		func(d *Deployment) *int { return d.Weight },
		func(d *Deployment) *int { return d.RPM },
		func(d *Deployment) *int { return d.TPM },
	} {
		var total uint64
		for _, i := range cands {
			if v := metric(es[i].d); v != nil && *v > 0 {
				total += uint64(*v)
			}
		}
		if total == 0 {
			continue
		}
		x := r.rnd.Uint64N(total)
		for _, i := range cands {
			v := metric(es[i].d)
			if v == nil || *v <= 0 {
				continue
			}
			if x < uint64(*v) {
				return i
			}
			x -= uint64(*v)
		}
	}
	return cands[r.rnd.Uint64N(uint64(len(cands)))]
}

// failed records a failure of e and starts its cooldown once it failed more
// than allowed_fails times within cooldown_time.
func (r *Router) failed(e *entry) {
	if r.s.DisableCooldowns || e.single {
		return
	}
	now := r.now()
	e.mu.Lock()
	cutoff := now.Add(-r.s.CooldownTime)
	k := 0
	for k < len(e.fails) && !e.fails[k].After(cutoff) {
		k++
	}
	e.fails = append(e.fails[k:], now)
	cool := len(e.fails) > r.s.AllowedFails
	if cool {
		e.fails = e.fails[:0]
		e.cooldownUntil.Store(now.Add(r.s.CooldownTime).UnixNano())
	}
	e.mu.Unlock()
	if cool {
		r.hooks.Cooldown(e.d)
	}
}

// CoolingDown reports whether the deployment with id is cooling down.
func (r *Router) CoolingDown(id string) bool {
	now := r.now().UnixNano()
	for _, es := range r.groups {
		for _, e := range es {
			if e.d.ID == id {
				return e.cooldownUntil.Load() > now
			}
		}
	}
	return false
}

// SetCooldown puts the deployment with id in cooldown until t (tests, and an
// operator endpoint later).
func (r *Router) SetCooldown(id string, until time.Time) {
	for _, es := range r.groups {
		for _, e := range es {
			if e.d.ID == id {
				e.cooldownUntil.Store(until.UnixNano())
			}
		}
	}
}
