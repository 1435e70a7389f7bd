package deploy

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

// ParseMock reads litellm_params.mock_response. Accepted forms:
//
//	mock_response: "Hello!"                          # a canned completion
//	mock_response: "litellm.RateLimitError"          # fails as that LiteLLM exception
//	mock_response: "litellm.RateLimitError: slow down"   # ... with this message
//	mock_response: {error: "boom"}                   # fails with status 500
//	mock_response: {error: {status: 429, message: "slow down", type: rate_limit_error, code: rate_limit_exceeded}}
//
// Exception names: litellm.RateLimitError (429), InternalServerError (500),
// APIError (500), APIConnectionError (500), ServiceUnavailableError (503),
// Timeout (408), ContextWindowExceededError (400, context window),
// BadRequestError (400), ContentPolicyViolationError (400),
// AuthenticationError (401), PermissionDeniedError (403), NotFoundError (404).
// In the mapping form, status (or status_code) is 400-599, default 500; a 400
// whose code is context_length_exceeded (or whose message says the context is
// too long) is a context-window error.
func ParseMock(n *yaml.Node) (*upstream.Mock, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		text := n.Value
		if rest, ok := strings.CutPrefix(text, "litellm."); ok {
			name, msg, _ := strings.Cut(rest, ":")
			e, ok := upstream.MockError(strings.TrimSpace(name), strings.TrimSpace(msg))
			if !ok {
				names := upstream.MockErrorNames()
				sort.Strings(names)
				return nil, fmt.Errorf("line %d: unknown LiteLLM exception %q; accepted: %s", n.Line, "litellm."+name, strings.Join(names, ", "))
			}
			return &upstream.Mock{Err: e}, nil
		}
		return &upstream.Mock{Text: text}, nil
	case yaml.MappingNode:
		var v struct {
			Error yaml.Node `yaml:"error"`
		}
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		switch v.Error.Kind {
		case yaml.ScalarNode:
			return &upstream.Mock{Err: upstream.NewStatusError(http.StatusInternalServerError, v.Error.Value, "api_error", "")}, nil
		case yaml.MappingNode:
			var e struct {
				Status     int    `yaml:"status"`
				StatusCode int    `yaml:"status_code"`
				Message    string `yaml:"message"`
				Type       string `yaml:"type"`
				Code       string `yaml:"code"`
			}
			if err := v.Error.Decode(&e); err != nil {
				return nil, fmt.Errorf("line %d: %w", v.Error.Line, err)
			}
			status := max(e.Status, e.StatusCode)
			if status == 0 {
				status = http.StatusInternalServerError
			}
			if status < 400 || status > 599 {
				return nil, fmt.Errorf("line %d: error status %d: want 400-599", v.Error.Line, status)
			}
			return &upstream.Mock{Err: upstream.NewStatusError(status, e.Message, e.Type, e.Code)}, nil
		}
		return nil, fmt.Errorf("line %d: a mapping mock_response needs an error: string or mapping {status, message, type, code}", n.Line)
	}
	return nil, errors.New("want a string or a mapping {error: ...}")
}
