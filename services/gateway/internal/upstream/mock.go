package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// Mock answers from litellm_params.mock_response without calling anyone, so a
// demo config runs with no provider account. Usage is deterministic: prompt
// tokens are openai.EstimateTokens of the request's text bytes, completion
// tokens the same rule on the mock text.
type Mock struct {
	// Text is the canned completion.
	Text string
	// Err, when set, makes every call fail with it instead.
	Err *Error
	// Model is the model name put in responses.
	Model string
}

func (m *Mock) usage(req *openai.ChatRequest) pricing.Usage {
	return pricing.Usage{Input: openai.EstimateTokens(req.TextBytes()), Output: openai.EstimateTokens(int64(len(m.Text)))}
}

func (m *Mock) fail(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.Err != nil {
		e := *m.Err
		return &e
	}
	return nil
}

// Complete implements Transport.
func (m *Mock) Complete(ctx context.Context, req *openai.ChatRequest) (*Result, error) {
	if err := m.fail(ctx); err != nil {
		return nil, err
	}
	u := m.usage(req)
	b, err := json.Marshal(openai.Completion{
		ID: "chatcmpl-" + uuid.NewString(), Object: "chat.completion", Created: time.Now().Unix(), Model: m.Model,
		Choices: []openai.Choice{{Message: openai.ResponseMessage{Role: "assistant", Content: openai.Ptr(m.Text)}, FinishReason: "stop"}},
		Usage:   openai.FromNormalized(u),
	})
	if err != nil {
		return nil, fmt.Errorf("mock: encode completion: %w", err)
	}
	return &Result{Body: b, Usage: u}, nil
}

// Stream implements Transport: a role chunk, one content chunk, a finish
// chunk, and the usage chunk.
func (m *Mock) Stream(ctx context.Context, req *openai.ChatRequest) (Stream, error) {
	if err := m.fail(ctx); err != nil {
		return nil, err
	}
	u := m.usage(req)
	base := openai.Chunk{ID: "chatcmpl-" + uuid.NewString(), Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: m.Model}
	var chunks []Chunk
	add := func(c openai.Chunk, usageOnly bool) error {
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("mock: encode chunk: %w", err)
		}
		chunks = append(chunks, Chunk{Data: b, UsageOnly: usageOnly})
		return nil
	}
	for _, d := range []openai.ChunkChoice{
		{Delta: openai.Delta{Role: "assistant", Content: openai.Ptr("")}},
		{Delta: openai.Delta{Content: openai.Ptr(m.Text)}},
		{FinishReason: openai.Ptr("stop")},
	} {
		c := base
		c.Choices = []openai.ChunkChoice{d}
		if err := add(c, false); err != nil {
			return nil, err
		}
	}
	c := base
	c.Choices = []openai.ChunkChoice{}
	c.Usage = openai.FromNormalized(u)
	if err := add(c, true); err != nil {
		return nil, err
	}
	return &sliceStream{ctx: ctx, chunks: chunks, usage: u}, nil
}

type sliceStream struct {
	ctx    context.Context
	chunks []Chunk
	usage  pricing.Usage
}

func (s *sliceStream) Next() (Chunk, error) {
	if err := s.ctx.Err(); err != nil {
		return Chunk{}, err
	}
	if len(s.chunks) == 0 {
		return Chunk{}, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *sliceStream) Usage() (pricing.Usage, bool) { return s.usage, false }
func (s *sliceStream) Close() error                 { return nil }

// mockErrors maps LiteLLM's exception names, as written in mock_response
// ("litellm.RateLimitError"), to the upstream failure they stand for.
var mockErrors = map[string]Error{
	"RateLimitError":              {Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: openai.CodeRateLimitExceeded},
	"InternalServerError":         {Status: http.StatusInternalServerError, Type: "api_error"},
	"APIError":                    {Status: http.StatusInternalServerError, Type: "api_error"},
	"APIConnectionError":          {Status: http.StatusInternalServerError, Type: "api_connection_error"},
	"ServiceUnavailableError":     {Status: http.StatusServiceUnavailable, Type: "api_error"},
	"Timeout":                     {Status: http.StatusRequestTimeout, Type: "timeout_error", Timeout: true},
	"ContextWindowExceededError":  {Status: http.StatusBadRequest, Type: "invalid_request_error", Code: openai.CodeContextLengthExceeded, ContextWindow: true},
	"BadRequestError":             {Status: http.StatusBadRequest, Type: "invalid_request_error"},
	"ContentPolicyViolationError": {Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "content_policy_violation"},
	"AuthenticationError":         {Status: http.StatusUnauthorized, Type: "authentication_error"},
	"PermissionDeniedError":       {Status: http.StatusForbidden, Type: "permission_error"},
	"NotFoundError":               {Status: http.StatusNotFound, Type: "not_found_error"},
}

// MockError returns the failure a LiteLLM exception name stands for, with msg
// (or a default message naming the exception) as its message.
func MockError(name, msg string) (*Error, bool) {
	e, ok := mockErrors[name]
	if !ok {
		return nil, false
	}
	if msg == "" {
		msg = "mock_response: litellm." + name
	}
	e.Message = msg
	return &e, true
}

// MockErrorNames lists the accepted exception names, for error messages.
func MockErrorNames() []string {
	names := make([]string, 0, len(mockErrors))
	for k := range mockErrors {
		names = append(names, "litellm."+k)
	}
	return names
}

// NewStatusError is the failure of a mapping-form mock_response.
func NewStatusError(status int, msg, typ, code string) *Error {
	if msg == "" {
		msg = fmt.Sprintf("mock_response: upstream error %d", status)
	}
	return &Error{Status: status, Message: msg, Type: typ, Code: code, ContextWindow: IsContextWindow(status, code, msg), Timeout: status == http.StatusRequestTimeout}
}

// Unsupported is the transport of a deployment the gateway cannot call (a
// provider with no api_base and no native transport). Every call fails over
// with a message saying how to fix the configuration.
type Unsupported struct{ Reason string }

// Complete implements Transport.
func (u *Unsupported) Complete(context.Context, *openai.ChatRequest) (*Result, error) {
	return nil, &Error{Status: http.StatusNotImplemented, Message: u.Reason}
}

// Stream implements Transport.
func (u *Unsupported) Stream(context.Context, *openai.ChatRequest) (Stream, error) {
	return nil, &Error{Status: http.StatusNotImplemented, Message: u.Reason}
}
