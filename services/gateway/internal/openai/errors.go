// Package openai holds the OpenAI chat-completions wire format the gateway
// speaks to clients (and to OpenAI-compatible upstreams): request parsing,
// response and chunk types, usage, and the error body.
package openai

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is an error as OpenAI returns it: an HTTP status and a JSON body
// {"error":{"message","type","param","code"}}. SDKs read type and code to decide
// what to do, so every failure the gateway returns has this shape.
type Error struct {
	Status  int
	Message string
	Type    string
	Param   string // "" is written as null
	Code    string // "" is written as null
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter int64
}

func (e *Error) Error() string { return strconv.Itoa(e.Status) + " " + e.Type + ": " + e.Message }

// Error types and codes the gateway uses.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeBudgetExceeded = "budget_exceeded"
	TypeRateLimit      = "rate_limit_error"
	TypeAPI            = "api_error"
	TypeTimeout        = "timeout_error"

	CodeInvalidAPIKey         = "invalid_api_key"
	CodeModelNotFound         = "model_not_found"
	CodeModelNotAllowed       = "model_not_allowed"
	CodeBudgetExceeded        = "budget_exceeded"
	CodeUnpricedModel         = "unpriced_model"
	CodeContextLengthExceeded = "context_length_exceeded"
	CodeRateLimitExceeded     = "rate_limit_exceeded"
	CodeUpstreamError         = "upstream_error"
	CodeNoHealthyDeployments  = "no_healthy_deployments"
	CodeBudgetUnavailable     = "budget_service_unavailable"
	CodeTimeout               = "timeout"
)

// BadRequest is a 400 naming the offending parameter.
func BadRequest(msg, param string) *Error {
	return &Error{Status: http.StatusBadRequest, Message: msg, Type: TypeInvalidRequest, Param: param}
}

type wireError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Body returns the JSON body of e.
func (e *Error) Body() []byte {
	b, _ := json.Marshal(struct {
		Error wireError `json:"error"`
	}{wireError{Message: e.Message, Type: e.Type, Param: nullable(e.Param), Code: nullable(e.Code)}})
	return b
}

// Write sends e as the whole response.
func (e *Error) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(e.RetryAfter, 10))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.Body())
}

// ParseErrorBody reads an upstream's error body in OpenAI's shape (also the
// {"error":"text"} and {"message":...} variants some compatible servers send).
// ok is false when the body is not JSON of any of these shapes.
func ParseErrorBody(b []byte) (msg, typ, code string, ok bool) {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  string          `json:"detail"`
	}
	if json.Unmarshal(b, &v) != nil {
		return "", "", "", false
	}
	if len(v.Error) > 0 && v.Error[0] == '{' {
		var e struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
		}
		if json.Unmarshal(v.Error, &e) == nil {
			return e.Message, e.Type, rawString(e.Code), true
		}
	}
	if len(v.Error) > 0 && v.Error[0] == '"' {
		var s string
		_ = json.Unmarshal(v.Error, &s)
		return s, "", "", true
	}
	if v.Message != "" {
		return v.Message, "", "", true
	}
	if v.Detail != "" {
		return v.Detail, "", "", true
	}
	return "", "", "", false
}

// rawString returns a JSON string's value, a number's text, or "" for null.
func rawString(r json.RawMessage) string {
	if len(r) == 0 || string(r) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s
	}
	return string(r)
}
