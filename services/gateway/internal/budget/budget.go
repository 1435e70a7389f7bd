// Package budget is the gateway's side of the budget service: authenticate a
// virtual key, admit a request (reserve its estimate), release a reservation.
// The gateway depends on the small Service interface; the real implementation
// is the generated Connect client, and Cached puts a short-lived cache in front
// of Authenticate so a key costs one RPC per TTL, not one per request.
//
// Every failure to reach a decision fails closed: the request is refused with
// 503, never served unmetered.
package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	"github.com/spendledger/spendledger/services/budget/budgetclient"
	"github.com/spendledger/spendledger/services/internal/serve"
)

// Service is what the gateway asks the budget service.
type Service interface {
	// Authenticate returns the key whose clear text hashes (hex SHA-256) to
	// keyHash.
	Authenticate(ctx context.Context, keyHash string) (*budgetv1.Key, error)
	// Admit checks and reserves, or denies.
	Admit(ctx context.Context, req *budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error)
	// Release voids a reservation; releasing twice is a no-op.
	Release(ctx context.Context, reservationID string, counterKeys []string) error
}

// Kind classifies a failure to get an answer, for the HTTP status.
type Kind int

const (
	// KindUnavailable: the budget service could not decide (down, overloaded,
	// not implemented, internal error). 503: fail closed.
	KindUnavailable Kind = iota
	// KindInvalidKey: unknown, blocked or expired key. 401.
	KindInvalidKey
	// KindBadRequest: the budget service rejected the request's input. 400.
	KindBadRequest
	// KindForbidden: the key is valid but this request may not be admitted:
	// its end user or a tag is blocked, or the key may not call the model
	// group. 403.
	KindForbidden
)

// Error is a failed budget call.
type Error struct {
	Kind Kind
	Op   string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("budget %s: %v", e.Op, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Message is the sentence for the client.
func (e *Error) Message() string {
	var ce *connect.Error
	msg := e.Err.Error()
	if errors.As(e.Err, &ce) {
		msg = ce.Message()
		if msg == "" {
			msg = ce.Code().String()
		}
	}
	switch e.Kind {
	case KindInvalidKey:
		return "invalid API key: " + msg
	case KindBadRequest, KindForbidden:
		return msg
	}
	return "budget service unavailable; the request was not admitted (" + e.Op + ": " + msg + ")"
}

// Classify maps a Connect error to a Kind.
func Classify(op string, err error) *Error {
	switch code := connect.CodeOf(err); code {
	case connect.CodeNotFound, connect.CodeUnauthenticated, connect.CodePermissionDenied:
		if op == "authenticate" {
			return &Error{Kind: KindInvalidKey, Op: op, Err: err}
		}
		if op == "admit" && code == connect.CodePermissionDenied {
			return &Error{Kind: KindForbidden, Op: op, Err: err}
		}
	case connect.CodeInvalidArgument:
		return &Error{Kind: KindBadRequest, Op: op, Err: err}
	}
	return &Error{Kind: KindUnavailable, Op: op, Err: err}
}

// Client is the Connect implementation of Service.
type Client struct {
	c      budgetv1connect.BudgetServiceClient
	admit  *budgetclient.Coalescer
	grants *grants
}

// NewClient returns a client of the budget service at baseURL over httpClient
// (serve.RPCClient: a wide kept-alive HTTP/1.1 pool, since admission is on
// every request), without response compression
// (serve.RPCClientOptions). Concurrent Admits go out together as AdmitBatch
// calls (budgetclient.Coalescer: no timer, so a lone Admit is sent at once;
// plain Admit against a budget service without AdmitBatch).
func NewClient(httpClient *http.Client, baseURL string) *Client {
	return clientOf(budgetv1connect.NewBudgetServiceClient(httpClient, baseURL, serve.RPCClientOptions()...))
}

func clientOf(c budgetv1connect.BudgetServiceClient) *Client {
	cl := &Client{c: c, admit: budgetclient.New(c, budgetclient.Options{})}
	cl.grants = newGrants(cl.Release, slog.Default())
	return cl
}

// Authenticate implements Service.
func (c *Client) Authenticate(ctx context.Context, keyHash string) (*budgetv1.Key, error) {
	resp, err := c.c.Authenticate(ctx, connect.NewRequest(&budgetv1.AuthenticateRequest{KeyHash: keyHash}))
	if err != nil {
		return nil, Classify("authenticate", err)
	}
	if resp.Msg.GetKey() == nil {
		return nil, &Error{Kind: KindInvalidKey, Op: "authenticate", Err: errors.New("unknown key")}
	}
	return resp.Msg.GetKey(), nil
}

// Admit implements Service. A request like one the budget service granted
// parts for is admitted here, from the grant (grants.go); any other goes to
// the service, asking for a grant for the requests like it that follow.
func (c *Client) Admit(ctx context.Context, req *budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, error) {
	for {
		local, kind, wait := c.grants.take(req)
		if local != nil {
			return local, nil
		}
		if wait != nil {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, Classify("admit", ctx.Err())
			}
		}
		asking := req.GetGrantParts() > 1
		prompt, maxTokens := req.GetPromptTokens(), req.GetMaxTokens()
		resp, err := c.admit.Admit(ctx, req)
		if asking {
			c.grants.asked(kind, prompt, maxTokens, resp) // resp is nil on error
		}
		if err != nil {
			return nil, Classify("admit", err)
		}
		return resp, nil
	}
}

// Close releases the parts of every grant this client has not handed out.
// Call it once no more requests are admitted (after the server drained).
func (c *Client) Close() { c.grants.closeAll() }

// Release implements Service.
func (c *Client) Release(ctx context.Context, reservationID string, counterKeys []string) error {
	if _, err := c.c.Release(ctx, connect.NewRequest(&budgetv1.ReleaseRequest{ReservationId: reservationID, CounterKeys: counterKeys})); err != nil {
		return Classify("release", err)
	}
	return nil
}
