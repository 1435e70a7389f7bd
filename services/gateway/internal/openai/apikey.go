package openai

import (
	"net/http"
	"strings"
)

// APIKey extracts the caller's key the way clients send it: Authorization:
// Bearer (OpenAI SDKs), or the x-litellm-api-key, api-key (Azure SDKs) and
// x-api-key (Anthropic SDKs) headers LiteLLM also accepts. The client API
// and the admin API both read keys here, so they accept the same headers.
func APIKey(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if k, ok := strings.CutPrefix(a, "Bearer "); ok {
			return strings.TrimSpace(k)
		}
		if k, ok := strings.CutPrefix(a, "bearer "); ok {
			return strings.TrimSpace(k)
		}
		return strings.TrimSpace(a)
	}
	for _, h := range []string{"X-Litellm-Api-Key", "Api-Key", "X-Api-Key"} {
		if k := r.Header.Get(h); k != "" {
			return strings.TrimSpace(k)
		}
	}
	return ""
}

// Unauthorized is the 401 for a missing, unknown or unusable key.
func Unauthorized(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Type: TypeAuthentication, Code: CodeInvalidAPIKey, Message: msg}
}
