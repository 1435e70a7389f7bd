// Package server is the gateway's client-facing HTTP API: OpenAI's
// /v1/chat/completions (plain and streamed) and /v1/models, LiteLLM's health
// paths, with LiteLLM's response headers and OpenAI's error shape.
//
// A chat completion goes: authenticate the key (cached), parse, resolve the
// model group, admit against the budget service (one reservation covering
// every deployment the request could be routed to, its fallbacks included),
// route among the deployments admission allowed, answer the client, and
// publish one UsageRecorded for the upstream call that completed. A request
// that ends without a completed upstream call (every deployment failed, the
// client went away) releases its reservation.
package server

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

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/services/gateway/internal/budget"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
	"github.com/spendledger/spendledger/services/gateway/internal/router"
)

// Publisher takes finished usage events.
type Publisher interface {
	Publish(ev *eventsv1.UsageRecorded)
}

// Config is what a Server needs.
type Config struct {
	Set    *deploy.Set
	Router *router.Router
	Budget budget.Service
	// EndUsers, when set, gives an end user its default budget before its
	// request is admitted (litellm_settings.max_end_user_budget).
	EndUsers interface {
		Ensure(ctx context.Context, endUserID string) error
	}
	Publisher Publisher
	Metrics   *Metrics
	Log       *slog.Logger
	// MasterKey (general_settings.master_key) may call the API too. Its
	// requests are admitted with key_id "": only provider, deployment and tag
	// budgets apply to it.
	MasterKey string
	GatewayID string
	// MaxBodyBytes bounds a request body (default 32 MiB).
	MaxBodyBytes int64
	// BudgetTimeout bounds Admit and Release calls (default 5s).
	BudgetTimeout time.Duration
	// Ready reports failed readiness checks, for /health/readiness.
	Ready func(context.Context) map[string]error
	// Now is the clock (tests).
	Now func() time.Time
}

// Server serves the client API.
type Server struct {
	Config
	// candidates are each group's admission candidates: its deployments, then
	// those of its fallbacks, built once.
	candidates map[string][]*budgetv1.Candidate
	models     []byte
	created    int64
	masterHash [sha256.Size]byte
}

// New returns a Server.
func New(c Config) *Server {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 32 << 20
	}
	if c.BudgetTimeout <= 0 {
		c.BudgetTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	s := &Server{Config: c, candidates: map[string][]*budgetv1.Candidate{}, created: c.Now().Unix()}
	if c.MasterKey != "" {
		s.masterHash = sha256.Sum256([]byte(c.MasterKey))
	}
	for g := range c.Set.Groups {
		seen := map[string]bool{}
		for _, cg := range c.Router.FallbackChain(g) {
			for _, d := range c.Set.Groups[cg] {
				if !seen[d.ID()] {
					seen[d.ID()] = true
					s.candidates[g] = append(s.candidates[g], d.Candidate)
				}
			}
		}
	}
	s.models = s.modelsBody(nil)
	return s
}

// routes are the client API's paths and their handlers.
var routes = []struct {
	pattern string
	handler func(*Server, http.ResponseWriter, *http.Request)
}{
	{"POST /v1/chat/completions", (*Server).chat},
	{"POST /chat/completions", (*Server).chat},
	{"POST /openai/deployments/{model}/chat/completions", (*Server).chat},
	{"GET /v1/models", (*Server).listModels},
	{"GET /models", (*Server).listModels},
	{"GET /health/liveliness", (*Server).liveliness},
	{"GET /health/liveness", (*Server).liveliness},
	{"GET /health/readiness", (*Server).readiness},
}

// Register adds the routes to mux, served by s.
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) { rt.handler(s, w, r) })
	}
}

// principal is who is calling.
type principal struct {
	key    *budgetv1.Key // nil for the master key
	master bool
}

func (p *principal) keyID() string {
	if p.master {
		return ""
	}
	return p.key.GetKeyId()
}

// allows reports whether the key may call model group g. LiteLLM's
// "all-proxy-models" and "*" mean every group.
func (p *principal) allows(g string) bool {
	if p.master || len(p.key.GetModels()) == 0 {
		return true
	}
	for _, m := range p.key.GetModels() {
		if m == g || m == "*" || m == "all-proxy-models" {
			return true
		}
	}
	return false
}

// authenticate identifies the caller.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (*principal, *openai.Error) {
	tok := openai.APIKey(r)
	if tok == "" {
		return nil, openai.Unauthorized("missing API key: send it as Authorization: Bearer <key>")
	}
	h := sha256.Sum256([]byte(tok))
	// Compare hashes so the comparison takes the same time whatever the length.
	if s.MasterKey != "" && subtle.ConstantTimeCompare(h[:], s.masterHash[:]) == 1 {
		return &principal{master: true}, nil
	}
	key, err := s.Budget.Authenticate(ctx, hex.EncodeToString(h[:]))
	if err != nil {
		return nil, s.budgetError("authenticate", err)
	}
	if key.GetBlocked() {
		return nil, openai.Unauthorized("this API key is blocked")
	}
	if exp := key.GetExpiresAt(); exp != nil && !exp.AsTime().After(s.Now()) {
		return nil, openai.Unauthorized("this API key expired at " + exp.AsTime().UTC().Format(time.RFC3339))
	}
	return &principal{key: key}, nil
}

// budgetError maps a failed budget call to the client's error.
func (s *Server) budgetError(op string, err error) *openai.Error {
	var be *budget.Error
	if !errors.As(err, &be) {
		be = budget.Classify(op, err)
	}
	switch be.Kind {
	case budget.KindInvalidKey:
		s.Metrics.budgetCalls(op, "invalid_key").Inc()
		return openai.Unauthorized(be.Message())
	case budget.KindBadRequest:
		s.Metrics.budgetCalls(op, "bad_request").Inc()
		return openai.BadRequest(be.Message(), "")
	case budget.KindForbidden:
		s.Metrics.budgetCalls(op, "forbidden").Inc()
		return &openai.Error{Status: http.StatusForbidden, Type: openai.TypePermission, Message: be.Message()}
	}
	s.Metrics.budgetCalls(op, "unavailable").Inc()
	s.Log.Error("budget service unavailable; failing closed", "op", op, "err", err)
	return &openai.Error{Status: http.StatusServiceUnavailable, Message: be.Message(), Type: openai.TypeAPI, Code: openai.CodeBudgetUnavailable, RetryAfter: 1}
}

type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelsBody(p *principal) []byte {
	data := make([]modelEntry, 0, len(s.Set.GroupNames))
	for _, g := range s.Set.GroupNames {
		target, _ := s.Set.Lookup(g)
		if p != nil && !p.allows(target) && !p.allows(g) {
			continue
		}
		data = append(data, modelEntry{ID: g, Object: "model", Created: s.created, OwnedBy: "openai"})
	}
	b, _ := json.Marshal(struct {
		Object string       `json:"object"`
		Data   []modelEntry `json:"data"`
	}{"list", data})
	return b
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	p, oerr := s.authenticate(r.Context(), r)
	if oerr != nil {
		oerr.Write(w)
		return
	}
	body := s.models
	if !p.master && len(p.key.GetModels()) > 0 {
		body = s.modelsBody(p)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *Server) liveliness(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`"I'm alive!"` + "\n"))
}

func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	var failed map[string]error
	if s.Ready != nil {
		failed = s.Ready(r.Context())
	}
	body := map[string]any{"status": "healthy"}
	status := http.StatusOK
	if len(failed) > 0 {
		reasons := map[string]string{}
		for k, v := range failed {
			reasons[k] = v.Error()
		}
		body = map[string]any{"status": "unhealthy", "failed": reasons}
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
