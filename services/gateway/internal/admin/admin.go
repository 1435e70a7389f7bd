package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	"github.com/spendledger/spendledger/gen/spendledger/ledger/v1/ledgerv1connect"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
	"github.com/spendledger/spendledger/services/gateway/internal/server"
)

// Models is the gateway's runtime model registry (server.Live).
type Models interface {
	AddModel(cd config.Deployment, before func(*deploy.Deployment) error) (server.ModelChange, error)
	UpdateModel(id string, cd config.Deployment, before func(*deploy.Deployment) error) (server.ModelChange, error)
	Entry(id string) (config.Deployment, bool)
	Deployments() []*deploy.Deployment
}

// ProviderBudget is one provider_budget_config entry, for /provider/budgets.
type ProviderBudget struct {
	Limit    money.Nanos
	Duration string
}

// Config is what a Handler needs.
type Config struct {
	// Budget is the budget service (keys, principals, budgets).
	Budget budgetv1connect.BudgetServiceClient
	// Ledger answers spend queries (/key/info spend, /spend/logs).
	Ledger ledgerv1connect.LedgerServiceClient
	// Models registers deployments at runtime; nil disables /model/*.
	Models Models
	// MasterKey is general_settings.master_key; empty disables every admin
	// path but a virtual key's own /key/info.
	MasterKey string
	// Providers is router_settings.provider_budget_config, by provider.
	Providers map[string]ProviderBudget
	// DefaultEndUserBudget is litellm_settings.max_end_user_budget, applied by
	// /customer/new when the request sets no max_budget.
	DefaultEndUserBudget *money.Nanos
	// Getenv resolves os.environ/ references in /model/new entries.
	Getenv func(string) string
	Log    *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
	// Timeout bounds one call to the budget or ledger service (default 10s).
	Timeout time.Duration
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
}

// Handler serves the admin API.
type Handler struct {
	Config
	masterHash [sha256.Size]byte
}

// New returns a Handler.
func New(c Config) *Handler {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	h := &Handler{Config: c}
	if c.MasterKey != "" {
		h.masterHash = sha256.Sum256([]byte(c.MasterKey))
	}
	return h
}

// endpoint handles one admin request; the result is written as JSON 200.
type endpoint func(ctx context.Context, c *caller, r *http.Request) (any, *openai.Error)

// Register adds the admin routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	// The one path a virtual key may call: its own /key/info.
	mux.HandleFunc("GET /key/info", h.serve(h.keyInfoEndpoint, false))
	for pattern, e := range h.adminOnly() {
		mux.HandleFunc(pattern, h.serve(e, true))
	}
}

// adminOnly is every route only the master key may call.
func (h *Handler) adminOnly() map[string]endpoint {
	return map[string]endpoint{
		"POST /key/generate":     h.keyGenerate,
		"POST /key/update":       h.keyUpdate,
		"POST /key/delete":       h.keyDelete,
		"POST /team/new":         h.teamNew,
		"GET /team/info":         h.teamInfo,
		"POST /user/new":         h.userNew,
		"GET /user/info":         h.userInfo,
		"POST /customer/new":     h.customerNew,
		"POST /end_user/new":     h.customerNew,
		"GET /customer/info":     h.customerInfo,
		"GET /end_user/info":     h.customerInfo,
		"POST /organization/new": h.orgNew,
		"GET /organization/info": h.orgInfo,
		"POST /model/new":        h.modelNew,
		"POST /model/update":     h.modelUpdate,
		"GET /model/info":        h.modelInfo,
		"GET /v1/model/info":     h.modelInfo,
		"GET /spend/logs":        h.spendLogs,
		"GET /provider/budgets":  h.providerBudgets,

		"GET /key/list":             h.keyList,
		"POST /key/block":           h.keyBlock(true),
		"POST /key/unblock":         h.keyBlock(false),
		"POST /team/update":         teamAPI.update(h),
		"POST /team/delete":         teamAPI.delete(h),
		"POST /team/block":          teamAPI.block(h, "team_id", true),
		"POST /team/unblock":        teamAPI.block(h, "team_id", false),
		"POST /user/update":         userAPI.update(h),
		"POST /user/delete":         userAPI.delete(h),
		"POST /customer/update":     customerAPI.update(h),
		"POST /end_user/update":     customerAPI.update(h),
		"POST /customer/delete":     customerAPI.delete(h),
		"POST /end_user/delete":     customerAPI.delete(h),
		"POST /customer/block":      customerAPI.block(h, "user_ids", true),
		"POST /customer/unblock":    customerAPI.block(h, "user_ids", false),
		"POST /end_user/block":      customerAPI.block(h, "user_ids", true),
		"POST /end_user/unblock":    customerAPI.block(h, "user_ids", false),
		"POST /organization/update": orgAPI.update(h),
		"POST /organization/delete": orgAPI.delete(h),
	}
}

// caller is who is calling: the master key, or a virtual key.
type caller struct {
	master bool
	key    *budgetv1.Key
	token  string // the presented key, to recognise "my own key" without an RPC
}

func (h *Handler) serve(e endpoint, adminOnly bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		c, oerr := h.authenticate(ctx, r)
		if oerr == nil && adminOnly && !c.master {
			oerr = notAdmin(r.URL.Path, h.MasterKey == "")
		}
		var out any
		if oerr == nil {
			out, oerr = e(ctx, c, r)
		}
		if oerr != nil {
			if oerr.Status >= 500 {
				h.Log.Warn("admin request failed", "path", r.URL.Path, "status", oerr.Status, "err", oerr.Message)
			}
			oerr.Write(w)
			return
		}
		body, err := json.Marshal(out)
		if err != nil {
			h.Log.Error("admin response does not encode", "path", r.URL.Path, "err", err)
			(&openai.Error{Status: http.StatusInternalServerError, Type: openai.TypeAPI, Message: "encoding the response: " + err.Error()}).Write(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(body, '\n'))
	}
}

// notAdmin is the answer to a virtual key on an admin path: 403, because the
// key is valid but not allowed (LiteLLM answers 401; an SDK reads 403 as
// "permission denied", which is what happened).
func notAdmin(path string, disabled bool) *openai.Error {
	msg := path + " needs the master key (general_settings.master_key); a virtual key may only read its own /key/info"
	if disabled {
		msg = path + ": the admin API is disabled because general_settings.master_key is not set; a virtual key may only read its own /key/info"
	}
	return &openai.Error{Status: http.StatusForbidden, Type: openai.TypePermission, Code: "admin_only", Message: msg}
}

// authenticate identifies the caller: the master key (compared as hashes, in
// constant time) or a virtual key the budget service knows. It asks the budget
// service directly, not the chat path's cache, so a key blocked a moment ago
// cannot read anything.
func (h *Handler) authenticate(ctx context.Context, r *http.Request) (*caller, *openai.Error) {
	tok := openai.APIKey(r)
	if tok == "" {
		return nil, openai.Unauthorized("missing API key: send it as Authorization: Bearer <key>")
	}
	sum := sha256.Sum256([]byte(tok))
	if h.MasterKey != "" && subtle.ConstantTimeCompare(sum[:], h.masterHash[:]) == 1 {
		return &caller{master: true, token: tok}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	resp, err := h.Budget.Authenticate(ctx, connect.NewRequest(&budgetv1.AuthenticateRequest{KeyHash: hex.EncodeToString(sum[:])}))
	if err != nil {
		switch connect.CodeOf(err) {
		case connect.CodeUnauthenticated, connect.CodeNotFound, connect.CodePermissionDenied, connect.CodeInvalidArgument:
			return nil, openai.Unauthorized("invalid API key: " + connectMessage(err))
		}
		return nil, fromConnect("budget", "authenticate", err)
	}
	if resp.Msg.GetKey() == nil {
		return nil, openai.Unauthorized("invalid API key: unknown key")
	}
	return &caller{key: resp.Msg.GetKey(), token: tok}, nil
}

// rpc bounds one call to a backing service.
func (h *Handler) rpc(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.Timeout)
}

func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		if m := ce.Message(); m != "" {
			return m
		}
		return ce.Code().String()
	}
	return err.Error()
}
