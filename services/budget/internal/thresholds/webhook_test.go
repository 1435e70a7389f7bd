package thresholds

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

func TestWebhookPostsExactJSONWithAnIdempotencyKey(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := Crossing{
		EventID: "0b6f2c1e-8d7a-5b3e-9f10-2a4c6e8b0d12", BudgetID: "bud-1",
		Scope: scope.Scope{Kind: scope.KindKeyModel, ID: "k1", ModelGroup: "gpt-4o"}, Threshold: "0.8",
		Duration: window.MustParse("1mo"), WindowIndex: 674, WindowStart: start, WindowEnd: start.AddDate(0, 1, 0),
		// Above 2^53 nanos: a float would not carry the last digits.
		Limit: 12_345_678_901_234_567, Spent: 9_876_543_210_987_654 + 1,
		DetectedAt: time.Date(2026, 3, 20, 8, 30, 0, 0, time.UTC),
	}
	if err := (Webhook{URL: srv.URL, Client: srv.Client()}).Notify(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.Header.Get("Idempotency-Key") != c.EventID ||
		got.Header.Get("Content-Type") != "application/json" || got.Header.Get("X-Spendledger-Event") != WebhookEventType {
		t.Fatalf("request %s with headers %v", got.Method, got.Header)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	want := map[string]any{
		"type": "budget.threshold_crossed", "event_id": c.EventID, "budget_id": "bud-1",
		"scope":     map[string]any{"kind": "key_model", "id": "k1", "model_group": "gpt-4o"},
		"threshold": "0.8",
		"limit_usd": "12345678.901234567", "spent_usd": "9876543.210987655",
		"limit_nanos": "12345678901234567", "spent_nanos": "9876543210987655",
		"window": map[string]any{"duration": "1mo", "index": float64(674),
			"start": "2026-03-01T00:00:00Z", "end": "2026-04-01T00:00:00Z"},
		"occurred_at": "2026-03-20T08:30:00Z",
	}
	gotJSON, _ := json.Marshal(m)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("payload\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestWebhookFailsOnAnythingButA2xx(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "receiver overloaded", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	err := (Webhook{URL: srv.URL, Client: srv.Client()}).Notify(context.Background(), Crossing{EventID: "e1", Duration: window.Lifetime})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "receiver overloaded") {
		t.Fatalf("err %v; want the status and the answer", err)
	}
	srv.Close()
	if err := (Webhook{URL: srv.URL}).Notify(context.Background(), Crossing{EventID: "e1", Duration: window.Lifetime}); err == nil {
		t.Fatal("a closed receiver was a delivery")
	}
}

func TestBackoffDoublesToMaxThenGivesUp(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 8 * time.Second, GiveUpAfter: time.Minute}
	var got []time.Duration
	for attempt := 1; attempt <= 6; attempt++ {
		wait, giveUp := b.Next(attempt, 0)
		if giveUp {
			t.Fatalf("gave up at attempt %d of a fresh crossing", attempt)
		}
		got = append(got, wait)
	}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(got, want) {
		t.Fatalf("waits %v; want %v", got, want)
	}
	if _, giveUp := b.Next(3, 57*time.Second); !giveUp {
		t.Fatal("a retry due after GiveUpAfter was scheduled")
	}
	if _, giveUp := b.Next(3, 56*time.Second); giveUp {
		t.Fatal("gave up on a retry due before GiveUpAfter")
	}
}
