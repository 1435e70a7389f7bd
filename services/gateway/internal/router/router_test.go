package router

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

// These tests translate LiteLLM's weighted-failover tests (reference 003) and
// add the cooldown, retry and fallback rules around them.

func ip(v int) *int { return &v }

func dep(id, group string, weight *int) *Deployment {
	return &Deployment{ID: id, Group: group, Weight: weight}
}

var errDown = &upstream.Error{Status: http.StatusInternalServerError, Message: "down"}

// script answers each deployment id with a fixed error (nil: success) and
// records the order of calls.
type script struct {
	errs  map[string]error
	calls []string
}

func (s *script) fn(_ context.Context, d *Deployment) error {
	s.calls = append(s.calls, d.ID)
	return s.errs[d.ID]
}

func settings() Settings {
	return Settings{WeightedFailover: true, AllowedFails: 3, CooldownTime: time.Minute}
}

func newRouter(deps []*Deployment, s Settings, opts ...Option) *Router {
	opts = append([]Option{WithRand(rand.New(rand.NewPCG(1, 2)))}, opts...)
	return New(deps, s, opts...)
}

// ---- _get_excluded_filtered_deployments ----

func TestPickNeverReturnsExcluded(t *testing.T) {
	r := newRouter([]*Deployment{dep("a", "g", nil), dep("b", "g", nil), dep("c", "g", nil)}, settings())
	es := r.groups["g"]
	for i := 0; i < 200; i++ {
		if got := es[r.pick(es, []bool{false, true, false}, nil)].d.ID; got == "b" {
			t.Fatal("picked an excluded deployment")
		}
	}
	if got := r.pick(es, []bool{false, false, false}, nil); got < 0 {
		t.Fatal("no exclusions must leave every deployment pickable")
	}
}

func TestPickAllExcludedReturnsNone(t *testing.T) {
	// Returning the original list here would re-pick the deployment that just
	// failed; the caller must see "nothing left" and move on to fallbacks.
	r := newRouter([]*Deployment{dep("a", "g", nil), dep("b", "g", nil)}, settings())
	if got := r.pick(r.groups["g"], []bool{true, true}, nil); got != -1 {
		t.Fatalf("pick = %d; want -1 when everything is excluded", got)
	}
}

func TestPickUnknownAllowedIDsExcludeNothingKnown(t *testing.T) {
	r := newRouter([]*Deployment{dep("a", "g", nil), dep("b", "g", nil)}, settings())
	seen := map[string]bool{}
	allowed := func(id string) bool { return id != "zzz" }
	for i := 0; i < 100; i++ {
		seen[r.groups["g"][r.pick(r.groups["g"], []bool{false, false}, allowed)].d.ID] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("picked %v; want both", seen)
	}
}

// ---- end-to-end weighted failover ----

func TestNoFailoverWhenFlagOff(t *testing.T) {
	s := settings()
	s.WeightedFailover = false
	r := newRouter([]*Deployment{dep("A", "g", ip(1)), dep("B", "g", ip(0))}, s)
	sc := &script{errs: map[string]error{"A": errDown}}
	_, err := r.Do(context.Background(), "g", nil, sc.fn)
	if err == nil {
		t.Fatal("with enable_weighted_failover: false a failure must surface")
	}
	if len(sc.calls) != 1 {
		t.Fatalf("calls %v; want only A", sc.calls)
	}
}

func TestFailoverLandsOnOtherDeployment(t *testing.T) {
	r := newRouter([]*Deployment{dep("A", "g", ip(1)), dep("B", "g", ip(0))}, settings())
	sc := &script{errs: map[string]error{"A": errDown}}
	out, err := r.Do(context.Background(), "g", nil, sc.fn)
	if err != nil || out.Deployment.ID != "B" {
		t.Fatalf("served by %v, err %v; want B", out.Deployment, err)
	}
	if out.Retries != 1 || out.Attempts != 2 {
		t.Fatalf("outcome %+v", out)
	}
}

func TestFailoverChainThreeDeployments(t *testing.T) {
	r := newRouter([]*Deployment{dep("A", "g", ip(1_000_000)), dep("B", "g", ip(1)), dep("C", "g", ip(0))}, settings())
	sc := &script{errs: map[string]error{"A": errDown, "B": errDown}}
	out, err := r.Do(context.Background(), "g", nil, sc.fn)
	if err != nil || out.Deployment.ID != "C" {
		t.Fatalf("served by %v, err %v; want C", out.Deployment, err)
	}
	if len(sc.calls) != 3 || sc.calls[2] != "C" {
		t.Fatalf("calls %v; want A and B (each once) then C", sc.calls)
	}
}

func TestFailoverExhaustedReturnsTheUpstreamError(t *testing.T) {
	r := newRouter([]*Deployment{dep("A", "g", ip(1)), dep("B", "g", ip(1))}, settings())
	sc := &script{errs: map[string]error{"A": errDown, "B": errDown}}
	_, err := r.Do(context.Background(), "g", nil, sc.fn)
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		t.Fatalf("err %v; want the upstream error", err)
	}
	if len(sc.calls) != 2 {
		t.Fatalf("calls %v; each deployment exactly once", sc.calls)
	}
}

func TestFailoverFallsThroughToExternalFallback(t *testing.T) {
	s := settings()
	s.Fallbacks = map[string][]string{"test-model": {"fallback-model"}}
	r := newRouter([]*Deployment{dep("A", "test-model", ip(1)), dep("B", "test-model", ip(1)), dep("fallback", "fallback-model", nil)}, s)
	sc := &script{errs: map[string]error{"A": errDown, "B": errDown}}
	out, err := r.Do(context.Background(), "test-model", nil, sc.fn)
	if err != nil || out.Deployment.ID != "fallback" || out.Fallbacks != 1 {
		t.Fatalf("served by %v (%+v), err %v; want fallback", out.Deployment, out, err)
	}
}

func TestWeightsRespectedWhenAllHealthy(t *testing.T) {
	r := newRouter([]*Deployment{dep("A", "g", ip(80)), dep("B", "g", ip(20))}, settings())
	sc := &script{}
	const n = 20000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		out, err := r.Do(context.Background(), "g", nil, sc.fn)
		if err != nil {
			t.Fatal(err)
		}
		counts[out.Deployment.ID]++
	}
	// Binomial sd at n=20000, p=.8 is ~0.28%; 1.5% is > 5 sd.
	if share := float64(counts["A"]) / n; share < 0.785 || share > 0.815 {
		t.Fatalf("A served %.3f of requests; want 0.80 ± 0.015 (counts %v)", share, counts)
	}
}

func TestZeroWeightsFallThroughToRPMThenUniform(t *testing.T) {
	a := &Deployment{ID: "A", Group: "g", Weight: ip(0), RPM: ip(90)}
	b := &Deployment{ID: "B", Group: "g", Weight: ip(0), RPM: ip(10)}
	r := newRouter([]*Deployment{a, b}, settings())
	counts := map[string]int{}
	for i := 0; i < 10000; i++ {
		counts[r.groups["g"][r.pick(r.groups["g"], []bool{false, false}, nil)].d.ID]++
	}
	if share := float64(counts["A"]) / 10000; share < 0.87 || share > 0.93 {
		t.Fatalf("zero weights must fall through to rpm 90/10; A got %.3f", share)
	}
	u := newRouter([]*Deployment{dep("X", "h", nil), dep("Y", "h", nil)}, settings())
	counts = map[string]int{}
	for i := 0; i < 10000; i++ {
		counts[u.groups["h"][u.pick(u.groups["h"], []bool{false, false}, nil)].d.ID]++
	}
	if share := float64(counts["X"]) / 10000; share < 0.47 || share > 0.53 {
		t.Fatalf("no metric: want uniform; X got %.3f", share)
	}
}

func TestFailoverSkippedForContextWindowError(t *testing.T) {
	r := newRouter([]*Deployment{dep("A", "g", ip(1)), dep("B", "g", ip(1))}, settings())
	cw := &upstream.Error{Status: 400, Code: "context_length_exceeded", ContextWindow: true, Message: "too long"}
	sc := &script{errs: map[string]error{"A": cw, "B": cw}}
	_, err := r.Do(context.Background(), "g", nil, sc.fn)
	var ue *upstream.Error
	if !errors.As(err, &ue) || !ue.ContextWindow {
		t.Fatalf("err %v; want the context-window error", err)
	}
	if len(sc.calls) != 1 {
		t.Fatalf("calls %v; a context-window error must not fail over within the group", sc.calls)
	}
}

func TestContextWindowErrorUsesContextWindowFallbacks(t *testing.T) {
	s := settings()
	s.Fallbacks = map[string][]string{"small": {"other"}}
	s.ContextWindowFallbacks = map[string][]string{"small": {"big"}}
	r := newRouter([]*Deployment{dep("s1", "small", nil), dep("s2", "small", nil), dep("o", "other", nil), dep("b", "big", nil)}, s)
	cw := &upstream.Error{Status: 400, ContextWindow: true}
	sc := &script{errs: map[string]error{"s1": cw, "s2": cw}}
	out, err := r.Do(context.Background(), "small", nil, sc.fn)
	if err != nil || out.Deployment.ID != "b" {
		t.Fatalf("served by %v, err %v; want the context_window_fallbacks group", out.Deployment, err)
	}
	if len(sc.calls) != 2 {
		t.Fatalf("calls %v; want one small deployment, then big", sc.calls)
	}
}

func TestUserConfigTwoRegionFailover(t *testing.T) {
	s := settings()
	s.AllowedFails, s.CooldownTime = 5, 120*time.Second
	r := newRouter([]*Deployment{dep("eastus2", "gpt-5.4-mini", ip(50)), dep("northcentralus", "gpt-5.4-mini", ip(50))}, s)
	sc := &script{errs: map[string]error{"eastus2": &upstream.Error{Status: 503, Message: "eastus2 5xx"}}}
	successes := map[string]int{}
	for i := 0; i < 20; i++ {
		out, err := r.Do(context.Background(), "gpt-5.4-mini", nil, sc.fn)
		if err != nil {
			t.Fatalf("request %d failed: %v", i, err)
		}
		successes[out.Deployment.ID]++
	}
	if successes["northcentralus"] != 20 {
		t.Fatalf("successes %v; every request must land on the healthy region", successes)
	}
	if !r.CoolingDown("eastus2") {
		t.Fatal("eastus2 failed more than allowed_fails times; it must be cooling down")
	}
}

func TestSkipsWhenRemainingAllInCooldown(t *testing.T) {
	r := newRouter([]*Deployment{dep("A", "g", ip(1)), dep("B", "g", ip(1)), dep("C", "g", ip(1))}, settings())
	r.SetCooldown("B", time.Now().Add(time.Minute))
	r.SetCooldown("C", time.Now().Add(time.Minute))
	sc := &script{errs: map[string]error{"A": errDown}}
	_, err := r.Do(context.Background(), "g", nil, sc.fn)
	if err == nil {
		t.Fatal("want an error")
	}
	if len(sc.calls) != 1 || sc.calls[0] != "A" {
		t.Fatalf("calls %v; cooling deployments must not be called", sc.calls)
	}
}

func TestProceedsWhenOneHealthyRemains(t *testing.T) {
	r := newRouter([]*Deployment{dep("A", "g", ip(1_000_000)), dep("B", "g", ip(1)), dep("C", "g", ip(1))}, settings())
	r.SetCooldown("B", time.Now().Add(time.Minute))
	sc := &script{errs: map[string]error{"A": errDown}}
	out, err := r.Do(context.Background(), "g", nil, sc.fn)
	if err != nil || out.Deployment.ID != "C" {
		t.Fatalf("served by %v (calls %v), err %v; want C", out.Deployment, sc.calls, err)
	}
}

func TestFallsThroughToExternalFallbackWhenRemainingInCooldown(t *testing.T) {
	s := settings()
	s.Fallbacks = map[string][]string{"test-model": {"fallback-model"}}
	r := newRouter([]*Deployment{dep("A", "test-model", ip(1_000_000)), dep("B", "test-model", ip(1)), dep("fallback", "fallback-model", nil)}, s)
	r.SetCooldown("B", time.Now().Add(time.Minute))
	sc := &script{errs: map[string]error{"A": errDown, "B": errDown}}
	out, err := r.Do(context.Background(), "test-model", nil, sc.fn)
	if err != nil || out.Deployment.ID != "fallback" {
		t.Fatalf("served by %v, err %v; want fallback", out.Deployment, err)
	}
	for _, c := range sc.calls {
		if c == "B" {
			t.Fatalf("calls %v; B is cooling down", sc.calls)
		}
	}
}

// ---- cooldown, retries, errors that do not fail over ----

func TestCooldownAfterAllowedFails(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	s := settings()
	s.AllowedFails, s.CooldownTime, s.WeightedFailover = 2, 10*time.Second, false
	var cooled []string
	r := newRouter([]*Deployment{dep("A", "g", ip(1_000_000)), dep("B", "g", ip(1))}, s,
		WithClock(clock), WithHooks(Hooks{Cooldown: func(d *Deployment) { cooled = append(cooled, d.ID) }}))
	sc := &script{errs: map[string]error{"A": errDown}}
	for i := 0; i < 2; i++ {
		_, _ = r.Do(context.Background(), "g", nil, sc.fn)
		if r.CoolingDown("A") {
			t.Fatalf("A cooled down after %d failures; allowed_fails is 2", i+1)
		}
	}
	_, _ = r.Do(context.Background(), "g", nil, sc.fn)
	if !r.CoolingDown("A") || len(cooled) != 1 {
		t.Fatalf("A must cool down on its third failure (cooldowns %v)", cooled)
	}
	sc.calls = nil
	out, err := r.Do(context.Background(), "g", nil, sc.fn)
	if err != nil || out.Deployment.ID != "B" || len(sc.calls) != 1 {
		t.Fatalf("while A cools down B serves alone: %v %v %v", out.Deployment, sc.calls, err)
	}
	now = now.Add(11 * time.Second)
	if r.CoolingDown("A") {
		t.Fatal("cooldown must end after cooldown_time")
	}
}

func TestFailuresOutsideTheWindowDoNotAccumulate(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := settings()
	s.AllowedFails, s.CooldownTime = 1, 10*time.Second
	r := newRouter([]*Deployment{dep("A", "g", nil), dep("B", "g", nil)}, s, WithClock(func() time.Time { return now }))
	sc := &script{errs: map[string]error{"A": errDown, "B": errDown}}
	for i := 0; i < 5; i++ {
		_, _ = r.Do(context.Background(), "g", nil, sc.fn)
		now = now.Add(11 * time.Second)
	}
	if r.CoolingDown("A") || r.CoolingDown("B") {
		t.Fatal("one failure per window never exceeds allowed_fails 1")
	}
}

func TestSingleDeploymentGroupNeverCoolsDown(t *testing.T) {
	s := settings()
	s.AllowedFails = 0
	r := newRouter([]*Deployment{dep("only", "g", nil)}, s)
	sc := &script{errs: map[string]error{"only": errDown}}
	for i := 0; i < 5; i++ {
		_, _ = r.Do(context.Background(), "g", nil, sc.fn)
	}
	if r.CoolingDown("only") || len(sc.calls) != 5 {
		t.Fatalf("the only deployment of a group must keep being tried (calls %d)", len(sc.calls))
	}
}

func TestNumRetriesRetriesTheGroup(t *testing.T) {
	s := settings()
	s.NumRetries = 2
	r := newRouter([]*Deployment{dep("only", "g", nil)}, s)
	n := 0
	out, err := r.Do(context.Background(), "g", nil, func(context.Context, *Deployment) error {
		n++
		if n < 3 {
			return errDown
		}
		return nil
	})
	if err != nil || n != 3 || out.Retries != 2 {
		t.Fatalf("calls %d, outcome %+v, err %v; want success on the third try", n, out, err)
	}
}

func TestBadRequestDoesNotFailOverOrFallBack(t *testing.T) {
	s := settings()
	s.Fallbacks = map[string][]string{"g": {"f"}}
	r := newRouter([]*Deployment{dep("A", "g", nil), dep("B", "g", nil), dep("F", "f", nil)}, s)
	bad := &upstream.Error{Status: 400, Message: "bad"}
	sc := &script{errs: map[string]error{"A": bad, "B": bad}}
	_, err := r.Do(context.Background(), "g", nil, sc.fn)
	if !errors.Is(err, bad) || len(sc.calls) != 1 {
		t.Fatalf("err %v calls %v; a bad request fails once, without failover or fallback", err, sc.calls)
	}
	if r.CoolingDown(sc.calls[0]) {
		t.Fatal("a bad request is not the deployment's fault")
	}
}

func TestClientGoneIsNotADeploymentFailure(t *testing.T) {
	s := settings()
	s.AllowedFails = 0
	r := newRouter([]*Deployment{dep("A", "g", nil), dep("B", "g", nil)}, s)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := r.Do(ctx, "g", nil, func(ctx context.Context, d *Deployment) error {
		calls++
		cancel()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err %v calls %d; want the cancellation after one call", err, calls)
	}
	if r.CoolingDown("A") || r.CoolingDown("B") {
		t.Fatal("a client leaving must not cool a deployment down")
	}
}

func TestAdmissionFilterExcludesDeployments(t *testing.T) {
	r := newRouter([]*Deployment{dep("A", "g", ip(1_000_000)), dep("B", "g", ip(1))}, settings())
	sc := &script{}
	out, err := r.Do(context.Background(), "g", func(id string) bool { return id == "B" }, sc.fn)
	if err != nil || out.Deployment.ID != "B" {
		t.Fatalf("served by %v, err %v; admission allowed only B", out.Deployment, err)
	}
	_, err = r.Do(context.Background(), "g", func(string) bool { return false }, sc.fn)
	var nd *NoDeploymentsError
	if !errors.As(err, &nd) || nd.Excluded != 2 {
		t.Fatalf("err %v; want NoDeploymentsError with 2 excluded", err)
	}
}

func TestFallbackChainForAdmission(t *testing.T) {
	s := settings()
	s.Fallbacks = map[string][]string{"a": {"b", "c"}}
	s.ContextWindowFallbacks = map[string][]string{"a": {"c", "d"}}
	r := newRouter(nil, s)
	got := r.FallbackChain("a")
	want := []string{"a", "b", "c", "d"}
	if len(got) != len(want) {
		t.Fatalf("chain %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("chain %v; want %v", got, want)
		}
	}
}

func TestRebuildKeepsTheStateOfUnchangedDeployments(t *testing.T) {
	a, b := dep("a", "g", nil), dep("b", "g", nil)
	r := newRouter([]*Deployment{a, b}, settings())
	until := time.Now().Add(time.Minute)
	r.SetCooldown("a", until)
	// b is replaced by a new *Deployment with the same id (an update), c is new.
	b2, c := dep("b", "g", nil), dep("c", "h", nil)
	n := r.Rebuild([]*Deployment{a, b2, c})
	if !n.CoolingDown("a") {
		t.Fatal("an unchanged deployment lost its cooldown")
	}
	n.SetCooldown("b", until)
	if r.CoolingDown("b") {
		t.Fatal("the rebuilt router shares state with the old one")
	}
	if !n.HasGroup("h") || r.HasGroup("h") || !n.groups["h"][0].single {
		t.Fatal("new group not routed, or routed by the old router")
	}
}
