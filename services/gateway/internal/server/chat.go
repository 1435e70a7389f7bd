package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/events"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
	"github.com/spendledger/spendledger/services/gateway/internal/router"
	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

// Response headers, as LiteLLM names them.
const (
	hdrCallID     = "X-Litellm-Call-Id"
	hdrModelID    = "X-Litellm-Model-Id"
	hdrModelGroup = "X-Litellm-Model-Group"
	hdrCost       = "X-Litellm-Response-Cost"
	hdrKeySpend   = "X-Litellm-Key-Spend"
	hdrRetries    = "X-Litellm-Attempted-Retries"
	hdrFallbacks  = "X-Litellm-Attempted-Fallbacks"
	hdrDuration   = "X-Litellm-Response-Duration-Ms"
	// hdrPricing says "unpriced" when the cost header is absent because the
	// gateway's catalog has no price for some billed component.
	hdrPricing = "X-Spendledger-Pricing"
)

// statusClientGone is what the metrics record when the client left.
const statusClientGone = 499

// exchange is one chat completion request in flight.
type exchange struct {
	s          *Server
	w          http.ResponseWriter
	r          *http.Request
	start      time.Time
	callID     string
	p          *principal
	req        *openai.ChatRequest
	group      string
	tags       []string
	admission  *budgetv1.Admission
	occurredAt time.Time
	status     int
	hvals      []string // see setHeader
	// settled is true once the reservation is accounted for: a usage event
	// carries it to the ledger, or it was released.
	settled bool
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	x := &exchange{s: s, w: w, r: r, start: s.Now(), group: "unknown"}
	defer x.finish()
	x.run()
}

func (x *exchange) fail(e *openai.Error) {
	x.status = e.Status
	x.header().Set(hdrCallID, x.callID)
	e.Write(x.w)
}

func (x *exchange) header() http.Header { return x.w.Header() }

// setHeader sets a response header whose name is canonical already (as the
// constants above are). http.Header.Set would check the name's case and
// allocate a slice per value; the values of one response share one array.
func (x *exchange) setHeader(name, value string) {
	if len(x.hvals) == cap(x.hvals) {
		x.hvals = make([]string, 0, 12)
	}
	x.hvals = append(x.hvals, value)
	n := len(x.hvals)
	x.w.Header()[name] = x.hvals[n-1 : n : n]
}

// finish releases an unsettled reservation and records the request.
func (x *exchange) finish() {
	if x.admission != nil && !x.settled {
		x.s.release(x.r.Context(), x.admission)
	}
	if x.status == 0 {
		x.status = http.StatusOK
	}
	m := &x.s.Metrics.hot
	m.requests.of(groupStatus{x.group, x.status}).Inc()
	m.duration.of(groupStreamed{x.group, x.req != nil && x.req.Stream}).Observe(x.s.Now().Sub(x.start).Seconds())
}

// release voids a reservation. It runs detached from the request's context:
// a client that went away is exactly when the reservation must be released.
func (s *Server) release(ctx context.Context, adm *budgetv1.Admission) {
	id := adm.GetReservationId()
	if id == "" {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.BudgetTimeout)
	defer cancel()
	if err := s.Budget.Release(rctx, id, adm.GetCounterKeys()); err != nil {
		s.Metrics.budgetCalls("release", "error").Inc()
		s.Log.Warn("release failed; the reservation will expire on its own", "reservation_id", id, "err", err)
		return
	}
	s.Metrics.budgetCalls("release", "ok").Inc()
}

func (x *exchange) run() {
	s, r := x.s, x.r
	ctx := r.Context()
	id, err := uuid.NewV7()
	if err != nil {
		x.fail(&openai.Error{Status: http.StatusInternalServerError, Message: "request id: " + err.Error(), Type: openai.TypeAPI})
		return
	}
	x.callID = id.String()

	p, oerr := s.authenticate(ctx, r)
	if oerr != nil {
		x.fail(oerr)
		return
	}
	x.p = p

	body, oerr := x.readBody()
	if oerr != nil {
		x.fail(oerr)
		return
	}
	req, oerr := openai.ParseChatRequest(body)
	if oerr != nil {
		x.fail(oerr)
		return
	}
	if m := r.PathValue("model"); m != "" {
		req.Model = m
	}
	x.req = req
	group, ok := s.Set.Lookup(req.Model)
	if !ok {
		x.fail(&openai.Error{Status: http.StatusNotFound, Type: openai.TypeInvalidRequest, Param: "model", Code: openai.CodeModelNotFound,
			Message: fmt.Sprintf("model %q is not served by this gateway; GET /v1/models lists the model groups", req.Model)})
		return
	}
	x.group = group
	if !p.allows(group) && !p.allows(req.Model) {
		x.fail(&openai.Error{Status: http.StatusUnauthorized, Type: openai.TypePermission, Param: "model", Code: openai.CodeModelNotAllowed,
			Message: fmt.Sprintf("this API key may not call model %q; it may call: %s", req.Model, strings.Join(p.key.GetModels(), ", "))})
		return
	}
	x.tags = openai.Dedup(req.Tags, headerTags(r), p.key.GetTags())

	if !x.admit() {
		return
	}
	if req.Stream {
		x.stream()
	} else {
		x.complete()
	}
}

func headerTags(r *http.Request) []string {
	v := r.Header.Get("X-Litellm-Tags")
	if v == "" {
		return nil
	}
	tags := strings.Split(v, ",")
	for i := range tags {
		tags[i] = strings.TrimSpace(tags[i])
	}
	return tags
}

func (x *exchange) readBody() ([]byte, *openai.Error) {
	if n := x.r.ContentLength; n > 0 && n <= x.s.MaxBodyBytes {
		// The server stops the body at its Content-Length: no limit reader is
		// needed, and the buffer is sized once.
		buf := make([]byte, n)
		if _, err := io.ReadFull(x.r.Body, buf); err != nil {
			return nil, openai.BadRequest("reading request body: "+err.Error(), "")
		}
		return buf, nil
	}
	rd := http.MaxBytesReader(x.w, x.r.Body, x.s.MaxBodyBytes)
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rd); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &openai.Error{Status: http.StatusRequestEntityTooLarge, Type: openai.TypeInvalidRequest,
				Message: fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)}
		}
		return nil, openai.BadRequest("reading request body: "+err.Error(), "")
	}
	return buf.Bytes(), nil
}

// admit asks the budget service to admit the request; false when it was
// refused (and the error written).
func (x *exchange) admit() bool {
	s := x.s
	ar := &budgetv1.AdmitRequest{
		RequestId:    x.callID,
		KeyId:        x.p.keyID(),
		ModelGroup:   x.group,
		Candidates:   s.candidates[x.group],
		EndUserId:    x.req.User,
		Tags:         x.tags,
		PromptTokens: openai.EstimateTokens(x.req.TextBytes()),
		MaxTokens:    x.req.MaxTokens,
	}
	x.occurredAt = s.Now()
	ctx, cancel := context.WithTimeout(x.r.Context(), s.BudgetTimeout)
	defer cancel()
	var resp *budgetv1.AdmitResponse
	var err error
	if s.EndUsers != nil && ar.EndUserId != "" {
		err = s.EndUsers.Ensure(ctx, ar.EndUserId)
	}
	if err == nil {
		resp, err = s.Budget.Admit(ctx, ar)
	}
	if err != nil {
		if x.r.Context().Err() != nil {
			x.status = statusClientGone
			return false
		}
		x.fail(s.budgetError("admit", err))
		return false
	}
	if d := resp.GetDenied(); d != nil {
		s.Metrics.budgetCalls("admit", "denied").Inc()
		x.fail(denialError(d, x.group, s.Now()))
		return false
	}
	a := resp.GetAdmitted()
	if a == nil {
		x.fail(s.budgetError("admit", errors.New("answer is neither admitted nor denied")))
		return false
	}
	s.Metrics.budgetCalls("admit", "admitted").Inc()
	x.admission = a
	if len(a.GetAllowedDeploymentIds()) == 0 {
		// Admitted, but every candidate is over a provider, deployment or tag
		// budget. Fail closed rather than guess.
		x.fail(&openai.Error{Status: http.StatusTooManyRequests, Type: openai.TypeBudgetExceeded, Code: openai.CodeBudgetExceeded,
			Message: fmt.Sprintf("every deployment of model group %q (and of its fallbacks) is over a provider, deployment or tag budget", x.group)})
		return false
	}
	return true
}

// denialError is the client's error for a denial. An unpriced model is a 400:
// waiting will not help; the operator has to price it. Every other denial is a
// 429 with Retry-After at the window's reset.
func denialError(d *budgetv1.Denial, group string, now time.Time) *openai.Error {
	msg := d.GetMessage()
	b := d.GetBudget()
	if d.GetReason() == budgetv1.DenialReason_DENIAL_REASON_UNPRICED_MODEL {
		if msg == "" {
			msg = fmt.Sprintf("model group %q has no known price and this key has a finite budget; set input_cost_per_token and output_cost_per_token on its deployments (or model_info.unpriced: allow)", group)
		}
		return &openai.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "model", Code: openai.CodeUnpricedModel, Message: msg}
	}
	if msg == "" {
		msg = "budget exceeded"
		if b != nil {
			msg = fmt.Sprintf("budget exceeded for %s %q: spend %s USD of limit %s USD", strings.ToLower(strings.TrimPrefix(b.GetScope().GetKind().String(), "SCOPE_KIND_")), b.GetScope().GetId(),
				money.Nanos(b.GetSpentNanos()+b.GetReservedNanos()), money.Nanos(b.GetLimitNanos()))
			if r := b.GetResetsAt(); r != nil {
				msg += ", resets at " + r.AsTime().UTC().Format(time.RFC3339)
			}
		}
	}
	e := &openai.Error{Status: http.StatusTooManyRequests, Type: openai.TypeBudgetExceeded, Code: openai.CodeBudgetExceeded, Message: msg}
	if r := b.GetResetsAt(); r != nil {
		if secs := math.Ceil(r.AsTime().Sub(now).Seconds()); secs > 0 {
			e.RetryAfter = int64(secs)
		}
	}
	return e
}

func (x *exchange) allowed() func(string) bool {
	ids := x.admission.GetAllowedDeploymentIds()
	return func(id string) bool { return slices.Contains(ids, id) }
}

// attempt wraps one upstream call with its timeout and metrics.
func (x *exchange) attempt(ctx context.Context, rd *router.Deployment, call func(context.Context, *deploy.Deployment) error) error {
	d := x.s.Set.Deployments[rd.Index]
	t0 := time.Now()
	err := call(ctx, d)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if ctx.Err() != nil {
			outcome = "canceled"
		}
		x.s.Log.Debug("upstream call failed", "call_id", x.callID, "deployment_id", d.ID(), "err", err)
	}
	x.s.Metrics.hot.upstream.of(upstreamCall{d.Group(), d.ID(), outcome}).Observe(time.Since(t0).Seconds())
	return err
}

// withTimeout bounds an upstream call by the deployment's timeout. Without
// one the call runs on the request's context as is: the server cancels it
// when the request ends, so a context of its own would only cost a cancel
// registration per call.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return ctx, func() {}
}

func (x *exchange) complete() {
	ctx := x.r.Context()
	var res *upstream.Result
	out, err := x.s.Router.Do(ctx, x.group, x.allowed(), func(ctx context.Context, rd *router.Deployment) error {
		return x.attempt(ctx, rd, func(ctx context.Context, d *deploy.Deployment) error {
			cctx, cancel := withTimeout(ctx, d.Timeout)
			defer cancel()
			r, err := d.Transport.Complete(cctx, x.req)
			res = r
			return err
		})
	})
	if err != nil {
		x.routeFailed(out, err)
		return
	}
	d := x.s.Set.Deployments[out.Deployment.Index]
	if res.UsageEstimated {
		x.s.Metrics.UsageEstimated.WithLabelValues(d.ID()).Inc()
	}
	ev, everr := x.event(d, res.Usage, false)
	x.commonHeaders(d, out)
	x.costHeader(d, res.Usage)
	x.setHeader("Content-Type", "application/json")
	x.setHeader("Content-Length", strconv.Itoa(len(res.Body)))
	x.setHeader(hdrDuration, strconv.FormatInt(x.s.Now().Sub(x.start).Milliseconds(), 10))
	_, _ = x.w.Write(res.Body)
	// The client has its answer before the event is handed over; publishing
	// never delays a response (and spooling, when NATS is away, only delays the
	// handler's return).
	_ = http.NewResponseController(x.w).Flush()
	x.publish(ev, everr)
}

// publish hands the usage event over; the reservation travels with it to the
// ledger, which settles it.
func (x *exchange) publish(ev *eventsv1.UsageRecorded, err error) {
	if err != nil {
		// Counts that cannot be represented (negative) are an upstream bug; the
		// reservation is released so it does not block the budget, and the
		// operator is told loudly.
		x.s.Log.Error("usage event not built; reservation released", "call_id", x.callID, "err", err)
		return
	}
	x.s.Publisher.Publish(ev)
	x.settled = true
}

func (x *exchange) event(d *deploy.Deployment, u pricing.Usage, streamed bool) (*eventsv1.UsageRecorded, error) {
	ident := &eventsv1.Identity{KeyId: x.p.keyID(), EndUserId: x.req.User, Tags: x.tags}
	if k := x.p.key; k != nil {
		ident.TeamId, ident.UserId, ident.OrgId = k.GetTeamId(), k.GetUserId(), k.GetOrgId()
	}
	route := &eventsv1.Route{ModelGroup: x.group, DeploymentId: d.ID(), Provider: d.Provider, BackendModel: d.BackendModel, BaseModel: d.BaseModel}
	return events.NewUsageRecorded(events.Call{
		RequestID:       x.callID,
		Identity:        ident,
		Route:           route,
		Usage:           u,
		PriceOverrides:  d.PriceOverrides,
		UnpricedAllowed: d.UnpricedAllowed,
		ReservationID:   x.admission.GetReservationId(),
		ReservedNanos:   x.admission.GetReservedNanos(),
		CounterKeys:     counterKeys(x.admission, d.ID()),
		OccurredAt:      x.occurredAt,
		CompletedAt:     x.s.Now(),
		Streamed:        streamed,
		GatewayID:       x.s.GatewayID,
	})
}

func (x *exchange) commonHeaders(d *deploy.Deployment, out router.Outcome) {
	x.setHeader(hdrCallID, x.callID)
	x.setHeader(hdrModelID, d.ID())
	x.setHeader(hdrModelGroup, d.Group())
	x.setHeader(hdrRetries, strconv.Itoa(out.Retries))
	x.setHeader(hdrFallbacks, strconv.Itoa(out.Fallbacks))
	if spend, ok := keySpend(x.admission); ok {
		x.setHeader(hdrKeySpend, spend.String())
	}
}

// keySpend is the key's spend as admission saw it (before this request): its
// lifetime key budget if it has one, else its first key budget.
func keySpend(a *budgetv1.Admission) (money.Nanos, bool) {
	var found *budgetv1.BudgetStatus
	for _, b := range a.GetBudgets() {
		if b.GetScope().GetKind() != eventsv1.ScopeKind_SCOPE_KIND_KEY {
			continue
		}
		if found == nil || (found.GetResetsAt() != nil && b.GetResetsAt() == nil) {
			found = b
		}
	}
	if found == nil {
		return 0, false
	}
	return money.Nanos(found.GetSpentNanos()), true
}

// costHeader sets x-litellm-response-cost: the exact cost in USD from the
// gateway's catalog and the deployment's overrides (the ledger's cost, priced
// by the pricing service, is authoritative). Without a price for every billed
// component it is left out, never written as 0.
func (x *exchange) costHeader(d *deploy.Deployment, u pricing.Usage) {
	if v, ok := cost(d, u); ok {
		x.setHeader(hdrCost, v)
	} else {
		x.setHeader(hdrPricing, "unpriced")
	}
}

func cost(d *deploy.Deployment, u pricing.Usage) (string, bool) {
	if d.Pricing == nil {
		return "", false
	}
	c, err := d.Pricing.Cost(u)
	if err != nil || c.Status != pricing.StatusPriced {
		return "", false
	}
	return c.Total.String(), true
}

// routeFailed answers a request no deployment could serve.
func (x *exchange) routeFailed(out router.Outcome, err error) {
	if x.r.Context().Err() != nil {
		x.status = statusClientGone
		x.s.Metrics.Abandoned.WithLabelValues(x.group, "upstream").Inc()
		return
	}
	h := x.header()
	h.Set(hdrRetries, strconv.Itoa(out.Retries))
	h.Set(hdrFallbacks, strconv.Itoa(out.Fallbacks))
	x.s.Log.Warn("request failed upstream", "call_id", x.callID, "model_group", x.group, "attempts", out.Attempts, "fallbacks", out.Fallbacks, "err", err)
	x.fail(upstreamError(x.group, out, err))
}

// upstreamError maps the last routing error to the client's error.
func upstreamError(group string, out router.Outcome, err error) *openai.Error {
	var nd *router.NoDeploymentsError
	if errors.As(err, &nd) {
		if nd.CoolingDown == 0 && nd.Excluded > 0 {
			return &openai.Error{Status: http.StatusTooManyRequests, Type: openai.TypeBudgetExceeded, Code: openai.CodeBudgetExceeded,
				Message: fmt.Sprintf("every deployment of model group %q is over a provider, deployment or tag budget", group)}
		}
		return &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeAPI, Code: openai.CodeNoHealthyDeployments,
			Message: nd.Error() + "; try again shortly", RetryAfter: max(1, int64(math.Ceil(nd.RetryAfter.Seconds())))}
	}
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		return &openai.Error{Status: http.StatusInternalServerError, Type: openai.TypeAPI, Message: err.Error()}
	}
	switch {
	case ue.ContextWindow:
		return &openai.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "messages", Code: openai.CodeContextLengthExceeded, Message: ue.Message}
	case !ue.Failover():
		typ := ue.Type
		if typ == "" {
			typ = openai.TypeInvalidRequest
		}
		return &openai.Error{Status: ue.Status, Type: typ, Code: ue.Code, Message: ue.Message}
	}
	tried := fmt.Sprintf("after %d attempt(s) on model group %q", out.Attempts, group)
	if out.Fallbacks > 0 {
		tried += fmt.Sprintf(" and %d fallback group(s)", out.Fallbacks)
	}
	switch {
	case ue.Status == http.StatusTooManyRequests:
		// LiteLLM passes a provider's rate limit through as 429; so do we. Its
		// type and code tell it apart from a budget denial.
		return &openai.Error{Status: http.StatusTooManyRequests, Type: openai.TypeRateLimit, Code: openai.CodeRateLimitExceeded,
			Message: "upstream rate limit " + tried + ": " + ue.Message, RetryAfter: 1}
	case ue.Timeout:
		return &openai.Error{Status: http.StatusGatewayTimeout, Type: openai.TypeTimeout, Code: openai.CodeTimeout, Message: "upstream timed out " + tried}
	}
	msg := "upstream failed " + tried + "; last error: " + ue.Error()
	return &openai.Error{Status: http.StatusBadGateway, Type: openai.TypeAPI, Code: openai.CodeUpstreamError, Message: msg}
}

func (x *exchange) stream() {
	ctx := x.r.Context()
	var (
		st     upstream.Stream
		cancel context.CancelFunc = func() {}
	)
	out, err := x.s.Router.Do(ctx, x.group, x.allowed(), func(ctx context.Context, rd *router.Deployment) error {
		return x.attempt(ctx, rd, func(ctx context.Context, d *deploy.Deployment) error {
			cctx, c := withTimeout(ctx, d.Timeout)
			s, err := d.Transport.Stream(cctx, x.req)
			if err != nil {
				c()
				return err
			}
			st, cancel = s, c
			return nil
		})
	})
	if err != nil {
		x.routeFailed(out, err)
		return
	}
	defer cancel()
	defer st.Close()
	d := x.s.Set.Deployments[out.Deployment.Index]

	x.commonHeaders(d, out)
	x.setHeader("Content-Type", "text/event-stream")
	x.setHeader("Cache-Control", "no-cache")
	x.setHeader("X-Accel-Buffering", "no")
	// The cost is known only at the end: it follows as a trailer.
	x.setHeader("Trailer", hdrCost+", "+hdrPricing)
	x.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(x.w)
	_ = rc.Flush()

	var (
		line     []byte
		gotUsage bool // the upstream's final usage arrived
	)
	// A client that leaves after the upstream reported its usage is billed
	// for the call like any other; before that, the reservation is released.
	abandon := func() {
		if gotUsage {
			u, _ := st.Usage()
			ev, everr := x.event(d, u, true)
			x.publish(ev, everr)
		}
		x.abandonStream()
	}
	for {
		c, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				abandon()
				return
			}
			// Headers are gone: the failure is reported in-stream, in OpenAI's
			// shape, and the call is not billed (no usage arrived).
			x.status = http.StatusBadGateway
			x.s.Log.Warn("upstream failed mid-stream; reservation released", "call_id", x.callID, "deployment_id", d.ID(), "err", err)
			e := &openai.Error{Status: http.StatusBadGateway, Type: openai.TypeAPI, Code: openai.CodeUpstreamError, Message: err.Error()}
			var ue *upstream.Error
			if errors.As(err, &ue) {
				e.Message = ue.Message
			}
			_, _ = x.w.Write(append(append([]byte("data: "), e.Body()...), "\n\n"...))
			_ = rc.Flush()
			return
		}
		if c.UsageOnly {
			gotUsage = true
			if !x.req.IncludeUsage {
				continue
			}
		}
		line = append(append(append(line[:0], "data: "...), c.Data...), "\n\n"...)
		if _, err := x.w.Write(line); err != nil {
			abandon()
			return
		}
		if err := rc.Flush(); err != nil {
			abandon()
			return
		}
	}
	if _, err := x.w.Write([]byte("data: [DONE]\n\n")); err != nil {
		gotUsage = true // the stream ended: whatever usage it had is final
		abandon()
		return
	}
	_ = rc.Flush()
	u, estimated := st.Usage()
	if estimated {
		x.s.Metrics.UsageEstimated.WithLabelValues(d.ID()).Inc()
	}
	ev, everr := x.event(d, u, true)
	x.costHeader(d, u)
	x.publish(ev, everr)
}

// abandonStream records a client that left mid-stream. The upstream call is
// cancelled with the request's context and, unless its usage was already
// published, the reservation is released (see finish).
func (x *exchange) abandonStream() {
	x.status = statusClientGone
	x.s.Metrics.Abandoned.WithLabelValues(x.group, "stream").Inc()
	x.s.Log.Info("client went away mid-stream", "call_id", x.callID, "model_group", x.group, "billed", x.settled)
}

// counterKeys are the counters a call's cost lands on: every counter admission
// checked for the request, and the provider and deployment counters of the
// deployment that served it.
func counterKeys(adm *budgetv1.Admission, deploymentID string) []string {
	n := len(adm.GetCounterKeys())
	for _, c := range adm.GetCandidateCounters() {
		if c.GetDeploymentId() == deploymentID {
			n += len(c.GetCounterKeys())
		}
	}
	if n == 0 {
		return nil
	}
	keys := append(make([]string, 0, n), adm.GetCounterKeys()...)
	for _, c := range adm.GetCandidateCounters() {
		if c.GetDeploymentId() == deploymentID {
			keys = append(keys, c.GetCounterKeys()...)
		}
	}
	return keys
}
