package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// spendLogJSON is one ledger entry as a row of LiteLLM's spend logs.
type spendLogJSON struct {
	RequestID         string         `json:"request_id"`
	CallType          string         `json:"call_type"`
	APIKey            string         `json:"api_key"`
	Spend             json.Number    `json:"spend"`
	TotalTokens       int64          `json:"total_tokens"`
	PromptTokens      int64          `json:"prompt_tokens"`
	CompletionTokens  int64          `json:"completion_tokens"`
	StartTime         *string        `json:"startTime"`
	EndTime           *string        `json:"endTime"`
	Model             string         `json:"model"`
	ModelGroup        string         `json:"model_group"`
	ModelID           string         `json:"model_id"`
	CustomLLMProvider string         `json:"custom_llm_provider"`
	User              string         `json:"user"`
	EndUser           string         `json:"end_user"`
	TeamID            string         `json:"team_id"`
	OrganizationID    string         `json:"organization_id"`
	RequestTags       []string       `json:"request_tags"`
	Metadata          map[string]any `json:"metadata"`
}

type componentJSON struct {
	Name         string      `json:"name"`
	Tokens       int64       `json:"tokens"`
	UnitPrice    *string     `json:"unit_price"` // exact decimal text; null when unknown
	Source       string      `json:"source"`
	SourceDetail string      `json:"source_detail,omitempty"`
	Cost         json.Number `json:"cost"`
}

func spendLogRow(e *ledgerv1.Entry) spendLogJSON {
	c := e.GetCost()
	u := c.GetUsage()
	id, rt, tok := u.GetIdentity(), u.GetRoute(), u.GetTokens()
	prompt := tok.GetInput() + tok.GetCacheRead() + tok.GetCacheCreation() + tok.GetCacheCreation_1H()
	completion := tok.GetOutput() + tok.GetReasoning()
	status := "priced"
	if c.GetStatus() == eventsv1.PricingStatus_PRICING_STATUS_UNPRICED {
		status = "unpriced"
	}
	comps := make([]componentJSON, 0, len(c.GetComponents()))
	for _, p := range c.GetComponents() {
		comps = append(comps, componentJSON{Name: p.GetName(), Tokens: p.GetTokens(), UnitPrice: strPtr(p.GetUnitPrice()),
			Source: p.GetSource().String(), SourceDetail: p.GetSourceDetail(), Cost: usdNanos(p.GetCostNanos())})
	}
	meta := map[string]any{
		"event_id":        e.GetEventId(),
		"pricing_status":  status,
		"catalog_version": c.GetCatalogVersion(),
		"resolved_entry":  c.GetResolvedEntry(),
		"recorded_at":     ts(e.GetRecordedAt()),
		"reservation_id":  u.GetReservationId(),
		"gateway_id":      u.GetGatewayId(),
		"streamed":        u.GetStreamed(),
		"cost_breakdown":  comps,
		"usage": map[string]int64{
			"input": tok.GetInput(), "output": tok.GetOutput(), "cache_read": tok.GetCacheRead(),
			"cache_creation": tok.GetCacheCreation(), "cache_creation_1h": tok.GetCacheCreation_1H(), "reasoning": tok.GetReasoning(),
		},
	}
	if len(c.GetUnknownComponents()) > 0 {
		meta["unknown_components"] = c.GetUnknownComponents()
	}
	if x := e.GetCorrectsEventId(); x != "" {
		meta["corrects_event_id"] = x
	}
	return spendLogJSON{
		RequestID: u.GetRequestId(), CallType: "acompletion", APIKey: id.GetKeyId(), Spend: usdNanos(c.GetTotalNanos()),
		TotalTokens: prompt + completion, PromptTokens: prompt, CompletionTokens: completion,
		StartTime: ts(u.GetOccurredAt()), EndTime: ts(u.GetCompletedAt()),
		Model: rt.GetBackendModel(), ModelGroup: rt.GetModelGroup(), ModelID: rt.GetDeploymentId(), CustomLLMProvider: rt.GetProvider(),
		User: id.GetUserId(), EndUser: id.GetEndUserId(), TeamID: id.GetTeamId(), OrganizationID: id.GetOrgId(),
		RequestTags: nonNil(id.GetTags()), Metadata: meta,
	}
}

// parseDate reads start_date / end_date: YYYY-MM-DD (UTC), "YYYY-MM-DD
// HH:MM:SS" (UTC) or RFC 3339. A date-only end_date includes that whole day,
// as people read "to 2026-03-31".
func parseDate(param, s string, end bool) (*time.Time, *openai.Error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return &t, nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateTime} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t, nil
		}
	}
	return nil, badRequest(param, param+": want YYYY-MM-DD or an RFC 3339 time, got "+strconv.Quote(s))
}

const (
	defaultSpendLogRows = 1000
	maxSpendLogRows     = 10000
)

// spendLogs is GET /spend/logs?api_key=&start_date=&end_date=: the key's
// ledger entries, newest first, corrections included (their spend may be
// negative). limit (default 1000, at most 10000) bounds the rows; request_id
// keeps one request's rows.
func (h *Handler) spendLogs(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	q := r.URL.Query()
	ref := q.Get("api_key")
	if ref == "" {
		return nil, badRequest("api_key", "api_key is required: the key (sk-...) or its token (key id); spend logs are read per key")
	}
	id, oerr := h.resolveKey(ctx, ref)
	if oerr != nil {
		return nil, oerr
	}
	start, oerr := parseDate("start_date", q.Get("start_date"), false)
	if oerr != nil {
		return nil, oerr
	}
	end, oerr := parseDate("end_date", q.Get("end_date"), true)
	if oerr != nil {
		return nil, oerr
	}
	limit := defaultSpendLogRows
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > maxSpendLogRows {
			return nil, badRequest("limit", "limit: want 1 to "+strconv.Itoa(maxSpendLogRows))
		}
		limit = n
	}
	requestID := q.Get("request_id")
	var rng *ledgerv1.TimeRange
	if start != nil || end != nil {
		rng = &ledgerv1.TimeRange{}
		if start != nil {
			rng.Start = timestamppb.New(*start)
		}
		if end != nil {
			rng.End = timestamppb.New(*end)
		}
	}
	rows := []spendLogJSON{}
	token := ""
	for len(rows) < limit {
		cctx, cancel := h.rpc(ctx)
		resp, err := h.Ledger.ListEntries(cctx, connect.NewRequest(&ledgerv1.ListEntriesRequest{
			KeyId: id, Range: rng, PageSize: int32(min(limit-len(rows), 1000)), PageToken: token,
		}))
		cancel()
		if err != nil {
			return nil, fromConnect("ledger", "list entries", err)
		}
		for _, e := range resp.Msg.GetEntries() {
			if requestID != "" && e.GetCost().GetUsage().GetRequestId() != requestID {
				continue
			}
			if len(rows) < limit {
				rows = append(rows, spendLogRow(e))
			}
		}
		if token = resp.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	return rows, nil
}

// providerBudgetJSON is one provider in LiteLLM's /provider/budgets.
type providerBudgetJSON struct {
	BudgetLimit   json.Number  `json:"budget_limit"`
	TimePeriod    *string      `json:"time_period"`
	Spend         *json.Number `json:"spend"`
	BudgetResetAt *string      `json:"budget_reset_at"`
	// Synced is false while the configured budget has not reached the budget
	// service yet (the gateway syncs config budgets at start).
	Synced bool `json:"synced"`
}

// providerBudgets is GET /provider/budgets: each provider of
// provider_budget_config with its budget as the budget service holds it and
// the ledger's spend in the current window.
func (h *Handler) providerBudgets(ctx context.Context, _ *caller, _ *http.Request) (any, *openai.Error) {
	names := make([]string, 0, len(h.Providers))
	for n := range h.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]providerBudgetJSON{}
	for _, name := range names {
		cfg := h.Providers[name]
		sc := scopeOf(kindProvider, name, "")
		bs, oerr := h.listBudgets(ctx, sc)
		if oerr != nil {
			return nil, oerr
		}
		b := pickBudget(bs, cfg.Duration)
		if b == nil {
			out[name] = providerBudgetJSON{BudgetLimit: usd(cfg.Limit), TimePeriod: strPtr(cfg.Duration)}
			continue
		}
		rng, resetAt := h.spendRange(b)
		spend, oerr := h.ledgerSpend(ctx, sc, rng)
		if oerr != nil {
			return nil, oerr
		}
		s := usd(spend)
		out[name] = providerBudgetJSON{BudgetLimit: usdNanos(b.GetLimitNanos()), TimePeriod: strPtr(b.GetSpec().GetDuration()),
			Spend: &s, BudgetResetAt: resetAt, Synced: true}
	}
	return map[string]any{"providers": out}, nil
}
