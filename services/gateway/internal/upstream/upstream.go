// Package upstream calls the deployments behind the gateway. Every transport
// speaks OpenAI's chat-completions format to the gateway whatever the provider
// speaks on the wire, and reports usage already normalized into disjoint counts
// (pricing.Usage), so the rest of the gateway never deals with provider quirks.
//
// Transports: OpenAI-compatible (every deployment with an api_base, and openai/
// with OpenAI's default base; azure/ with Azure's URL shape), Anthropic Messages
// (anthropic/), and Mock (litellm_params.mock_response).
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// Transport is one deployment's way of answering a chat completion.
type Transport interface {
	// Complete makes a non-streaming call.
	Complete(ctx context.Context, req *openai.ChatRequest) (*Result, error)
	// Stream starts a streaming call and returns once the upstream accepted it
	// (answered 2xx), so a refusal can still fail over to another deployment.
	Stream(ctx context.Context, req *openai.ChatRequest) (Stream, error)
}

// Result is a completed non-streaming call.
type Result struct {
	// Body is the chat.completion JSON for the client.
	Body  []byte
	Usage pricing.Usage
	// UsageEstimated is true when the upstream reported no usage and the
	// gateway estimated it (openai.EstimateTokens) rather than bill nothing.
	UsageEstimated bool
}

// Chunk is one streamed chat.completion.chunk, ready to forward.
type Chunk struct {
	// Data is the chunk's JSON. It is valid until the next call to Next.
	Data []byte
	// UsageOnly marks the final usage chunk (no choices), which only a client
	// that asked for stream_options.include_usage receives.
	UsageOnly bool
}

// Stream is a streaming call in progress.
type Stream interface {
	// Next returns the next chunk, io.EOF at the end of the stream, or an error
	// (an *Error when the upstream failed mid-stream).
	Next() (Chunk, error)
	// Usage is the call's usage once Next returned io.EOF; estimated when the
	// upstream never reported it.
	Usage() (u pricing.Usage, estimated bool)
	Close() error
}

// Error is a failed upstream call.
type Error struct {
	// Status is the upstream's HTTP status, or 0 when no response arrived.
	Status  int
	Message string
	Type    string
	Code    string
	// ContextWindow marks a request too long for the model: another deployment
	// of the same group will fail the same way, so it never fails over within
	// the group (context_window_fallbacks may name a bigger model).
	ContextWindow bool
	// Timeout marks a call that ran out of time.
	Timeout bool
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("upstream")
	if e.Status != 0 {
		fmt.Fprintf(&b, " %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Failover reports whether another deployment may succeed where this one
// failed, and whether the failure counts against this deployment (cooldown).
// It mirrors LiteLLM: rate limits, auth and not-found errors (a misconfigured
// deployment), timeouts, 5xx and connection failures fail over; a bad request
// is the client's and would fail everywhere.
func (e *Error) Failover() bool {
	if e.ContextWindow {
		return false
	}
	switch {
	case e.Status == 0, e.Status >= 500:
		return true
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden,
		e.Status == http.StatusNotFound, e.Status == http.StatusRequestTimeout,
		e.Status == http.StatusConflict, e.Status == http.StatusTooManyRequests:
		return true
	}
	return false
}

// contextWindowPhrases are what providers say when a prompt is too long; the
// list follows LiteLLM's exception mapping.
var contextWindowPhrases = []string{
	"context_length_exceeded", "maximum context length", "context window",
	"prompt is too long", "input is too long", "too many tokens",
	"model's maximum context limit", "is longer than the model's context length",
	"input tokens exceed", "string too long",
}

// IsContextWindow reports whether an upstream error says the prompt is too long.
func IsContextWindow(status int, code, msg string) bool {
	if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
		return false
	}
	if code == openai.CodeContextLengthExceeded {
		return true
	}
	m := strings.ToLower(msg)
	for _, p := range contextWindowPhrases {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// FromResponse builds the Error for a non-2xx upstream response.
func FromResponse(status int, body []byte) *Error {
	msg, typ, code, ok := openai.ParseErrorBody(body)
	if !ok {
		msg = strings.TrimSpace(string(truncate(body, 512)))
		if msg == "" {
			msg = http.StatusText(status)
		}
	}
	return &Error{Status: status, Message: msg, Type: typ, Code: code, ContextWindow: IsContextWindow(status, code, msg)}
}

// FromTransportError wraps an error from the HTTP client (no response).
func FromTransportError(err error) *Error {
	e := &Error{Err: err, Message: "connection to upstream failed"}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		e.Timeout = true
		e.Status = http.StatusRequestTimeout
		e.Message = "upstream timed out"
	}
	return e
}

// wrapErr passes a cancellation by the caller through untouched (so the router
// knows the client left, rather than blame the deployment), and wraps the rest.
func wrapErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return FromTransportError(err)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// NewHTTPClient returns the client every HTTP transport shares: one
// connection pool, kept alive, wide enough per host that a busy gateway never
// dials per request. No overall timeout: streams last as long as they last;
// per-deployment timeouts are contexts.
func NewHTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// maxResponseBytes bounds a non-streamed response body.
const maxResponseBytes = 64 << 20

// postJSON posts body to url with header through client.Do (see
// endpoint.post, which calls it when the fast path does not apply).
func postJSON(ctx context.Context, client *http.Client, url string, header http.Header, body []byte) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("upstream: build request: %w", err)
	}
	// Shared, not cloned per call: neither the client nor the transports write
	// to a request's header map (they copy it before adding anything).
	hreq.Header = header
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, wrapErr(ctx, err)
	}
	return checkStatus(resp)
}

// checkStatus passes a 2xx response through; any other status becomes an
// *Error built from the provider's body.
func checkStatus(resp *http.Response) (*http.Response, error) {
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, FromResponse(resp.StatusCode, b)
	}
	return resp, nil
}
