package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

// counter is one budget in the window of the request. The budget is shared
// with the slice BudgetsFor returned (a Budget is a few hundred bytes, and
// every request copies several).
type counter struct {
	budget *store.Budget
	key    string
	start  time.Time
	end    time.Time
}

func counterFor(b *store.Budget, at time.Time) counter {
	w := b.Window()
	k := w.Index(at)
	start, end := w.Bounds(k)
	return counter{budget: b, key: scope.CounterKey(b.Scope, w, k), start: start, end: end}
}

// candidate is one deployment the request could be routed to.
type candidate struct {
	msg      *budgetv1.Candidate
	estimate int64
	unknown  []string
	counters []counter // provider and deployment budgets
}

// Admit implements the Admit RPC (see the package comment).
func (a *Admitter) Admit(ctx context.Context, req *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	start := time.Now()
	m := req.Msg
	if err := validate(m); err != nil {
		a.metrics.decisions.WithLabelValues("invalid").Inc()
		return nil, err
	}
	now := a.cfg.Now()

	ident := scope.Identity{EndUserID: m.GetEndUserId(), Tags: m.GetTags(), ModelGroup: m.GetModelGroup()}
	if m.GetKeyId() != "" {
		k, err := a.cfg.Budgets.KeyByID(ctx, m.GetKeyId())
		if err != nil {
			return nil, keyError(m.GetKeyId(), err)
		}
		if err := usable(k, m.GetModelGroup(), now); err != nil {
			return nil, err
		}
		ident.KeyID, ident.TeamID, ident.UserID, ident.OrgID = k.ID, k.TeamID, k.UserID, k.OrgID
		ident.Tags = append(slices.Clone(ident.Tags), k.Tags...)
	}
	reqScopes := ident.Scopes()
	if err := a.refuseBlocked(ctx, reqScopes); err != nil {
		return nil, err
	}

	cands := make([]*candidate, len(m.GetCandidates()))
	all := slices.Clone(reqScopes)
	for i, c := range m.GetCandidates() {
		cands[i] = &candidate{msg: c}
		all = append(all,
			scope.Scope{Kind: scope.KindProvider, ID: c.GetProvider()},
			scope.Scope{Kind: scope.KindDeployment, ID: c.GetDeploymentId()})
	}
	budgets, err := a.cfg.Budgets.BudgetsFor(ctx, all)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("read budgets: %w", err))
	}
	reqCounters, byScope := split(budgets, reqScopes, now)
	for _, c := range cands {
		for _, s := range []scope.Scope{{Kind: scope.KindProvider, ID: c.msg.GetProvider()}, {Kind: scope.KindDeployment, ID: c.msg.GetDeploymentId()}} {
			c.counters = append(c.counters, byScope[s]...)
		}
		if err := a.estimate(c, m); err != nil {
			return nil, invalid("candidates: %v", err)
		}
	}

	// An unknown price is not free: under any budget, a deployment whose
	// price is unknown is not a candidate unless the operator opted it in.
	// The budgets that count are the ones its cost would land on: the
	// request's and its own provider and deployment budgets (a budget on
	// another candidate's deployment does not make this one's cost matter).
	var priced []*candidate
	for _, c := range cands {
		budgeted := len(reqCounters) > 0 || len(c.counters) > 0
		if len(c.unknown) == 0 || c.msg.GetUnpricedAllowed() || !budgeted {
			priced = append(priced, c)
		}
	}
	if len(priced) == 0 {
		a.metrics.decisions.WithLabelValues("unpriced").Inc()
		return deny(&budgetv1.Denial{Reason: budgetv1.DenialReason_DENIAL_REASON_UNPRICED_MODEL, Message: unpricedMessage(m.GetModelGroup(), cands)}), nil
	}

	allowed, denial, err := a.filter(ctx, priced)
	if err != nil {
		return a.redisDown(ctx, m, reqCounters, priced, err)
	}
	if len(allowed) == 0 {
		a.metrics.decisions.WithLabelValues("no_candidate").Inc()
		return deny(denial), nil
	}

	amount := int64(0)
	for _, c := range allowed {
		amount = max(amount, c.estimate)
	}
	adm := &budgetv1.Admission{ReservedNanos: amount}
	for _, c := range allowed {
		adm.AllowedDeploymentIds = append(adm.AllowedDeploymentIds, c.msg.GetDeploymentId())
		cc := &budgetv1.CandidateCounters{DeploymentId: c.msg.GetDeploymentId()}
		for _, k := range c.counters {
			cc.CounterKeys = append(cc.CounterKeys, k.key)
		}
		adm.CandidateCounters = append(adm.CandidateCounters, cc)
	}
	for _, c := range reqCounters {
		adm.CounterKeys = append(adm.CounterKeys, c.key)
	}

	if len(reqCounters) > 0 {
		d, err := a.check(ctx, m.GetRequestId(), amount, reqCounters, m.GetGrantParts())
		if err != nil {
			return a.redisDown(ctx, m, reqCounters, allowed, err)
		}
		if !d.admitted {
			c := reqCounters[d.denied]
			a.metrics.decisions.WithLabelValues("denied").Inc()
			st := status(c, d.states[d.denied])
			return deny(&budgetv1.Denial{
				Budget:  st,
				Reason:  budgetv1.DenialReason_DENIAL_REASON_BUDGET_EXCEEDED,
				Message: exceededMessage(c, d.states[d.denied], amount),
			}), nil
		}
		if amount > 0 {
			adm.ReservationId = d.reservation
			adm.ExpiresAt = timestamppb.New(d.expires)
		}
		if g := d.grant; g.parts > 0 {
			adm.Grant = &budgetv1.LeaseGrant{LeaseId: g.lease, FirstPart: g.first, Parts: uint32(g.parts), HandOutFor: durationpb.New(g.handOutFor)}
		}
		for i, c := range reqCounters {
			adm.Budgets = append(adm.Budgets, status(c, d.states[i]))
		}
	}
	a.metrics.decisions.WithLabelValues("admitted").Inc()
	a.metrics.latency.Observe(time.Since(start).Seconds())
	return connect.NewResponse(&budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: adm}}), nil
}

// check reserves amount on every counter, or (for a free request, which
// reserves nothing) only checks them.
func (a *Admitter) check(ctx context.Context, id string, amount int64, cs []counter, want uint32) (decision, error) {
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	if amount == 0 {
		states, err := a.read(ctx, keys)
		if err != nil {
			return decision{}, err
		}
		for i, st := range states {
			if st.Spent+st.Live > int64(cs[i].budget.Limit) {
				return decision{denied: i, states: states}, nil
			}
		}
		a.lastKnown.remember(keys, states)
		return decision{admitted: true, states: states}, nil
	}
	if a.leases != nil && amount <= redisstore.MaxPartAmount {
		limits := make([]int64, len(cs))
		for i, c := range cs {
			limits[i] = int64(c.budget.Limit)
		}
		d, err := a.leases.admit(ctx, id, amount, keys, limits, a.cfg.Now(), uint64(want))
		if err != nil {
			return decision{}, err
		}
		a.lastKnown.remember(keys, d.states)
		return d, nil
	}
	req := redisstore.ReserveRequest{ID: id, Amount: amount, TTL: a.cfg.ReservationTTL}
	for _, c := range cs {
		req.Counters = append(req.Counters, redisstore.Counter{Key: c.key, Limit: int64(c.budget.Limit)})
	}
	res, err := a.reserve(ctx, req)
	if err != nil {
		return decision{}, err
	}
	a.lastKnown.remember(keys, res.States)
	return decision{admitted: res.Admitted, denied: res.Denied, reservation: id, expires: res.ExpiresAt, states: res.States}, nil
}

// filter keeps the candidates still within their provider and deployment
// budgets, and says which budget excluded the others.
func (a *Admitter) filter(ctx context.Context, cands []*candidate) ([]*candidate, *budgetv1.Denial, error) {
	var keys []string
	for _, c := range cands {
		for _, k := range c.counters {
			keys = append(keys, k.key)
		}
	}
	if len(keys) == 0 {
		return cands, nil, nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	states, err := a.read(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	// Remembered for the last_known policy, which filters candidates on
	// these counters too when Redis is down.
	a.lastKnown.remember(keys, states)
	at := make(map[string]redisstore.State, len(keys))
	for i, k := range keys {
		at[k] = states[i]
	}
	var out []*candidate
	var denial *budgetv1.Denial
	for _, c := range cands {
		ok := true
		for _, k := range c.counters {
			st := at[k.key]
			if st.Spent+st.Live+c.estimate > int64(k.budget.Limit) {
				ok = false
				if denial == nil {
					denial = &budgetv1.Denial{
						Budget:  status(k, st),
						Reason:  budgetv1.DenialReason_DENIAL_REASON_NO_CANDIDATE,
						Message: exceededMessage(k, st, c.estimate),
					}
				}
				break
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, denial, nil
}

// redisDown applies the fault policy when the counters cannot be read or
// reserved. cands are the candidates still in the running.
//
// Two causes are not Redis being down, and never admit under last_known: the
// caller's context ending (the client gave up or its deadline passed), and
// redisstore.ErrInvalid (admission built a request the store refuses: a bug
// here, not an outage).
func (a *Admitter) redisDown(ctx context.Context, m *budgetv1.AdmitRequest, cs []counter, cands []*candidate, cause error) (*connect.Response[budgetv1.AdmitResponse], error) {
	if err := ctx.Err(); err != nil {
		code := connect.CodeCanceled
		if errors.Is(err, context.DeadlineExceeded) {
			code = connect.CodeDeadlineExceeded
		}
		return nil, connect.NewError(code, fmt.Errorf("admit %s: %w", m.GetRequestId(), cause))
	}
	if errors.Is(cause, redisstore.ErrInvalid) {
		a.cfg.Log.Error("admission built an invalid counter request", "request_id", m.GetRequestId(), "err", cause)
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("admit %s: %w", m.GetRequestId(), cause))
	}
	a.metrics.redisFaults.Inc()
	if a.cfg.OnRedisDown == FailClosed {
		a.cfg.Log.Error("admission failed closed: Redis unavailable", "request_id", m.GetRequestId(), "err", cause)
		a.metrics.decisions.WithLabelValues("failed_closed").Inc()
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("budget counters unavailable; failing closed: %w", cause))
	}
	// last_known: the same rule as with Redis up (spent + reserved +
	// estimate <= limit), on the last state this instance saw of every
	// counter plus what it admitted since Redis went down; a counter never
	// seen fails closed. A request Redis would deny is not admitted because
	// Redis is down. (Other instances' admissions during the outage are not
	// seen: that is the bound an operator accepts with this policy.)
	known := func(c counter, estimate int64) (redisstore.State, bool) {
		st, ok := a.lastKnown.get(c.key)
		return st, ok && st.Spent+st.Live+estimate <= int64(c.budget.Limit)
	}
	var allowed []*candidate
	for _, c := range cands {
		ok := true
		for _, k := range c.counters {
			if _, fits := known(k, c.estimate); !fits {
				ok = false
				break
			}
		}
		if ok {
			allowed = append(allowed, c)
		}
	}
	if len(allowed) == 0 {
		a.cfg.Log.Error("admission failed closed: Redis unavailable and no candidate within its last known provider and deployment spend", "request_id", m.GetRequestId(), "err", cause)
		a.metrics.decisions.WithLabelValues("failed_closed").Inc()
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("budget counters unavailable: %w", cause))
	}
	amount := int64(0)
	for _, c := range allowed {
		amount = max(amount, c.estimate)
	}
	adm := &budgetv1.Admission{}
	for _, c := range cs {
		st, fits := known(c, amount)
		if !fits {
			a.cfg.Log.Error("admission failed closed: Redis unavailable and no last known spend within the limit", "request_id", m.GetRequestId(), "counter", c.key, "err", cause)
			a.metrics.decisions.WithLabelValues("failed_closed").Inc()
			return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("budget counters unavailable: %w", cause))
		}
		adm.CounterKeys = append(adm.CounterKeys, c.key)
		adm.Budgets = append(adm.Budgets, status(c, st))
	}
	// Nothing is reserved (ReservedNanos 0, no reservation id), but the
	// counters are named as on the normal path, candidate counters
	// included: the ledger charges the event to exactly these keys, so a
	// request admitted during the outage still lands on its provider and
	// deployment budgets.
	for _, c := range allowed {
		adm.AllowedDeploymentIds = append(adm.AllowedDeploymentIds, c.msg.GetDeploymentId())
		cc := &budgetv1.CandidateCounters{DeploymentId: c.msg.GetDeploymentId()}
		for _, k := range c.counters {
			cc.CounterKeys = append(cc.CounterKeys, k.key)
		}
		adm.CandidateCounters = append(adm.CandidateCounters, cc)
	}
	// Not reserved in Redis, but held here: this instance's later
	// admissions during the outage count it.
	a.lastKnown.hold(adm.CounterKeys, amount)
	a.cfg.Log.Warn("admitted against last known spend: Redis unavailable", "request_id", m.GetRequestId(), "err", cause)
	a.metrics.decisions.WithLabelValues("last_known").Inc()
	return connect.NewResponse(&budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: adm}}), nil
}

// split sorts budgets into the request's counters and, for candidates, the
// counters by scope.
//
// It runs on every request: the scope lists are short (one request's), so
// a scan beats building a set, and the candidates' map is made only when a
// provider or deployment budget exists.
func split(budgets []store.Budget, reqScopes []scope.Scope, now time.Time) ([]counter, map[scope.Scope][]counter) {
	req := make([]counter, 0, len(budgets))
	var byScope map[scope.Scope][]counter
	for i := range budgets {
		b := &budgets[i]
		c := counterFor(b, now)
		if slices.Contains(reqScopes, b.Scope) {
			req = append(req, c)
			continue
		}
		if byScope == nil {
			byScope = map[scope.Scope][]counter{}
		}
		byScope[b.Scope] = append(byScope[b.Scope], c)
	}
	return req, byScope
}

func (a *Admitter) estimate(c *candidate, m *budgetv1.AdmitRequest) error {
	res, err := a.prices.resolve(c.msg)
	if err != nil {
		return err
	}
	out := m.GetMaxTokens()
	if out == 0 {
		out = a.cfg.MaxTokensCap
		if out == 0 {
			out = res.MaxOutputTokens
		}
		if out == 0 {
			out = DefaultMaxTokens
		}
	}
	bound, unknown, err := res.UpperBound(m.GetPromptTokens(), out)
	if err != nil {
		return fmt.Errorf("deployment %s: %w", c.msg.GetDeploymentId(), err)
	}
	c.estimate, c.unknown = int64(bound), unknown
	return nil
}

// maxRequestIDLen is redisstore's bound on reservation IDs: the request ID
// becomes one (a hash field and zset member on every counter).
const maxRequestIDLen = 256

func validate(m *budgetv1.AdmitRequest) error {
	switch {
	case m.GetRequestId() == "":
		return invalid("request_id is required")
	case len(m.GetRequestId()) > maxRequestIDLen:
		return invalid("request_id is longer than %d bytes", maxRequestIDLen)
	case redisstore.IsLeaseID(m.GetRequestId()):
		// A request's reservation id is its request id, and ids of this
		// form name lease parts, which settle differently.
		return invalid("request_id must not begin with %q", redisstore.LeaseID(""))
	case m.GetModelGroup() == "":
		return invalid("model_group is required")
	case len(m.GetCandidates()) == 0:
		return invalid("candidates: at least one deployment is required")
	case m.GetPromptTokens() < 0:
		return invalid("prompt_tokens must not be negative")
	case m.GetMaxTokens() < 0:
		return invalid("max_tokens must not be negative")
	}
	// Every field that becomes part of a scope follows the scope name rules,
	// so a value no budget could be set on is refused here rather than
	// failing later in Postgres (a NUL byte) or Redis, where the error
	// would look like a store outage and fall under the fault policy.
	if err := checkName("model_group", m.GetModelGroup()); err != nil {
		return err
	}
	if id := m.GetKeyId(); id != "" {
		if err := checkName("key_id", id); err != nil {
			return err
		}
	}
	for i, c := range m.GetCandidates() {
		if c.GetDeploymentId() == "" || c.GetProvider() == "" || c.GetBackendModel() == "" {
			return invalid("candidates[%d]: deployment_id, provider and backend_model are required", i)
		}
		if err := checkName(fmt.Sprintf("candidates[%d].deployment_id", i), c.GetDeploymentId()); err != nil {
			return err
		}
		if err := checkName(fmt.Sprintf("candidates[%d].provider", i), c.GetProvider()); err != nil {
			return err
		}
	}
	for _, t := range m.GetTags() {
		if err := (scope.Scope{Kind: scope.KindTag, ID: t}).Validate(); err != nil {
			return invalid("tags: %v", err)
		}
	}
	if id := m.GetEndUserId(); id != "" {
		if err := (scope.Scope{Kind: scope.KindEndUser, ID: id}).Validate(); err != nil {
			return invalid("end_user_id: %v", err)
		}
	}
	return nil
}

// checkName applies the scope name rules (scope.Scope.Validate: not empty,
// at most scope.MaxIDLen bytes, UTF-8 without control characters or
// surrounding white space) to a request field.
func checkName(field, v string) error {
	if err := (scope.Scope{Kind: scope.KindTag, ID: v}).Validate(); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return invalid("%s: %v", field, err)
	}
	return nil
}

func keyError(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("key %s does not exist", id))
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("read key %s: %w", id, err))
}

// usable refuses a key exactly as Authenticate does, and enforces its
// model allow-list.
func usable(k store.AuthKey, group string, now time.Time) error {
	if why := k.Refusal(now); why != "" {
		return connect.NewError(connect.CodePermissionDenied, errors.New(why))
	}
	if len(k.Models) > 0 && !slices.Contains(k.Models, group) {
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("key %s may not call model group %q (allowed: %s)", k.AliasHint, group, strings.Join(k.Models, ", ")))
	}
	return nil
}

// refuseBlocked refuses a request whose end user, or one of whose tags (the
// request's or its key's), is blocked: PermissionDenied naming it, as a
// blocked key, team, user or org is refused (usable). The flags come from
// the cache, which every instance keeps in step with LISTEN/NOTIFY, so
// blocking and unblocking take effect at once everywhere.
func (a *Admitter) refuseBlocked(ctx context.Context, scopes []scope.Scope) error {
	var principals []scope.Scope
	for _, s := range scopes {
		if s.Kind == scope.KindEndUser || s.Kind == scope.KindTag {
			principals = append(principals, s)
		}
	}
	if len(principals) == 0 {
		return nil
	}
	p, blocked, err := a.cfg.Budgets.Blocked(ctx, principals)
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("read blocked end users and tags: %w", err))
	}
	if !blocked {
		return nil
	}
	a.metrics.decisions.WithLabelValues("blocked").Inc()
	what := "end user"
	if p.Kind == scope.KindTag {
		what = "tag"
	}
	return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s %q is blocked", what, p.ID))
}

func deny(d *budgetv1.Denial) *connect.Response[budgetv1.AdmitResponse] {
	return connect.NewResponse(&budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Denied{Denied: d}})
}

func status(c counter, st redisstore.State) *budgetv1.BudgetStatus {
	remaining := max(int64(c.budget.Limit)-st.Spent-st.Live, 0)
	return &budgetv1.BudgetStatus{
		BudgetId:       c.budget.ID,
		Scope:          protoconv.ScopeProto(c.budget.Scope),
		LimitNanos:     int64(c.budget.Limit),
		SpentNanos:     st.Spent,
		ReservedNanos:  st.Live,
		RemainingNanos: remaining,
		WindowStart:    timestamppb.New(c.start),
		ResetsAt:       timestamppb.New(c.end),
	}
}

func exceededMessage(c counter, st redisstore.State, estimate int64) string {
	reset := "never (lifetime budget)"
	if !c.budget.Duration.IsLifetime() {
		reset = c.end.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("Budget exceeded for %s %s: spend $%s + in-flight $%s + this request's estimate $%s > limit $%s (window %s); resets at %s",
		c.budget.Scope.Kind, describe(c.budget.Scope), money.Nanos(st.Spent), money.Nanos(st.Live), money.Nanos(estimate),
		c.budget.Limit, c.budget.Duration, reset)
}

func describe(s scope.Scope) string {
	if s.ModelGroup != "" {
		return fmt.Sprintf("%q on model group %q", s.ID, s.ModelGroup)
	}
	return fmt.Sprintf("%q", s.ID)
}

func unpricedMessage(group string, cands []*candidate) string {
	var parts []string
	for _, c := range cands {
		parts = append(parts, fmt.Sprintf("%s (%s) has no price for %s", c.msg.GetDeploymentId(), c.msg.GetBackendModel(), strings.Join(c.unknown, ", ")))
	}
	return fmt.Sprintf("Model group %q cannot be admitted under a budget: its price is unknown, and unknown is not free. %s. "+
		"Price it in the deployment's model_info (input_cost_per_token, output_cost_per_token, ...), name a priced catalog entry with model_info.base_model, "+
		"add it to the catalog file, or set model_info.unpriced: allow to serve it unpriced.", group, strings.Join(parts, "; "))
}
