package thresholds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Notifier calls the webhook for a crossing; Webhook is the real one.
type Notifier interface {
	Notify(ctx context.Context, c Crossing) error
}

// WebhookEventType is the payload's "type" and the X-Spendledger-Event
// header, so a receiver shared with other senders can tell it apart.
const WebhookEventType = "budget.threshold_crossed"

// Webhook POSTs a crossing as JSON to URL. A 2xx answer is a delivery;
// anything else, or no answer within the client's timeout, is a failure to
// retry later. Delivery is at least once: a call that succeeded but whose
// row could not be marked (a crash, Postgres gone) is made again, with the
// same Idempotency-Key (the event id) for the receiver to drop it.
type Webhook struct {
	URL    string
	Client *http.Client
}

// WebhookPayload is the JSON body. Money is exact: decimal dollars and
// nano-USD, both as strings (a JSON number above 2^53 loses digits in
// JavaScript), never floats.
type WebhookPayload struct {
	Type      string       `json:"type"`
	EventID   string       `json:"event_id"`
	BudgetID  string       `json:"budget_id"`
	Scope     WebhookScope `json:"scope"`
	Threshold string       `json:"threshold"`
	LimitUSD  string       `json:"limit_usd"`
	SpentUSD  string       `json:"spent_usd"`
	// LimitNanos and SpentNanos are decimal integers of nano-USD.
	LimitNanos string `json:"limit_nanos"`
	SpentNanos string `json:"spent_nanos"`
	// Window is the budget window the spend is counted in; Duration
	// "lifetime" for a budget that never resets.
	Window     WebhookWindow `json:"window"`
	OccurredAt time.Time     `json:"occurred_at"`
}

// WebhookScope is the budget's scope in the payload.
type WebhookScope struct {
	Kind       string `json:"kind"`
	ID         string `json:"id"`
	ModelGroup string `json:"model_group,omitempty"`
}

// WebhookWindow is the window in the payload: [Start, End).
type WebhookWindow struct {
	Duration string    `json:"duration"`
	Index    int64     `json:"index"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

// Payload is the webhook body for c.
func (c Crossing) Payload() WebhookPayload {
	return WebhookPayload{
		Type: WebhookEventType, EventID: c.EventID, BudgetID: c.BudgetID,
		Scope:     WebhookScope{Kind: c.Scope.Kind.String(), ID: c.Scope.ID, ModelGroup: c.Scope.ModelGroup},
		Threshold: c.Threshold,
		LimitUSD:  c.Limit.String(), SpentUSD: c.Spent.String(),
		LimitNanos: strconv.FormatInt(int64(c.Limit), 10), SpentNanos: strconv.FormatInt(int64(c.Spent), 10),
		Window: WebhookWindow{
			Duration: c.Duration.String(), Index: c.WindowIndex, Start: c.WindowStart, End: c.WindowEnd,
		},
		OccurredAt: c.DetectedAt,
	}
}

// Notify implements Notifier.
func (w Webhook) Notify(ctx context.Context, c Crossing) error {
	body, err := json.Marshal(c.Payload())
	if err != nil {
		return fmt.Errorf("encode webhook payload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", c.EventID)
	req.Header.Set("X-Spendledger-Event", WebhookEventType)
	req.Header.Set("User-Agent", "spendledger-budget")
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook POST: %w", err)
	}
	defer resp.Body.Close()
	// A little of the answer says why it was refused; the rest is drained
	// so the connection can be reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// Backoff spaces webhook attempts: Min after the first failure, doubling up
// to Max, and none after GiveUpAfter from the crossing's detection.
type Backoff struct {
	Min, Max    time.Duration
	GiveUpAfter time.Duration
}

// DefaultBackoff retries for a day: a receiver down for a night still gets
// every call, and one misconfigured for longer stops costing requests.
var DefaultBackoff = Backoff{Min: time.Second, Max: 5 * time.Minute, GiveUpAfter: 24 * time.Hour}

// Next is the wait after failed attempt number attempt (1 for the first)
// of a crossing detected age ago, and whether to give up instead.
func (b Backoff) Next(attempt int, age time.Duration) (wait time.Duration, giveUp bool) {
	wait = b.Min
	for i := 1; i < attempt && wait < b.Max; i++ {
		wait *= 2
	}
	wait = min(wait, b.Max)
	return wait, age+wait > b.GiveUpAfter
}
