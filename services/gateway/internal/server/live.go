package server

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
)

// Live serves the client API from the current Server and swaps in a new one
// when the admin API registers or updates a deployment (LiteLLM's /model/new,
// /model/update). A request runs start to end on the Server it started on, so
// it never sees half a change; the new Server shares the old one's budget
// client, publisher and metrics, and its router keeps the cooldowns of the
// deployments that did not change.
//
// Runtime deployments live in this process only: they are not persisted and
// not shared with other gateway instances; a restart serves the config file
// again. (LiteLLM persists them with store_model_in_db; here the config file
// stays the source of truth.)
type Live struct {
	cur     atomic.Pointer[Server]
	mu      sync.Mutex // serializes changes
	builder *deploy.Builder
}

// NewLive returns a Live serving s; b builds runtime deployments with the
// config's catalog and defaults.
func NewLive(s *Server, b *deploy.Builder) *Live {
	l := &Live{builder: b}
	l.cur.Store(s)
	return l
}

// Current is the Server new requests are served by.
func (l *Live) Current() *Server { return l.cur.Load() }

// Register adds the client API's routes to mux, each served by the Server
// current when the request arrives.
func (l *Live) Register(mux *http.ServeMux) {
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) { rt.handler(l.cur.Load(), w, r) })
	}
}

// ModelChange is the outcome of a runtime registration.
type ModelChange struct {
	Deployment *deploy.Deployment
	// Changed is false when the same entry was already registered: nothing
	// was rebuilt (registering twice is a no-op).
	Changed bool
	// Created is true for a new deployment, false for a replaced one.
	Created bool
	// Warning is set when the deployment's transport cannot call its backend.
	Warning string
}

// ErrUnknownDeployment is UpdateModel's error for an id nothing serves.
var ErrUnknownDeployment = errors.New("no deployment has this id")

// AddModel registers cd (see deploy.Set.Resolve for ids and no-ops). before,
// when not nil, runs with the built deployment before it serves anything (the
// admin API sets its budget there); its error cancels the change.
func (l *Live) AddModel(cd config.Deployment, before func(*deploy.Deployment) error) (ModelChange, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.cur.Load()
	id, existing, err := s.Set.Resolve(cd)
	if err != nil {
		return ModelChange{}, err
	}
	if existing != nil {
		return ModelChange{Deployment: existing}, nil
	}
	return l.put(s, cd, id, len(s.Set.Deployments), before)
}

// UpdateModel replaces the entry of the deployment with id by cd (the
// caller merged the patch into the current entry). The same entry again is a
// no-op.
func (l *Live) UpdateModel(id string, cd config.Deployment, before func(*deploy.Deployment) error) (ModelChange, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.cur.Load()
	existing := s.Set.ByID(id)
	if existing == nil {
		return ModelChange{}, fmt.Errorf("deployment %q: %w", id, ErrUnknownDeployment)
	}
	if deploy.SameEntry(existing.Entry, cd) {
		return ModelChange{Deployment: existing}, nil
	}
	return l.put(s, cd, id, existing.R.Index, before)
}

// Deployments are the deployments served now, config and runtime ones, in
// config order.
func (l *Live) Deployments() []*deploy.Deployment { return l.cur.Load().Set.Deployments }

// Entry returns the current entry of the deployment with id.
func (l *Live) Entry(id string) (config.Deployment, bool) {
	d := l.cur.Load().Set.ByID(id)
	if d == nil {
		return config.Deployment{}, false
	}
	return d.Entry, true
}

func (l *Live) put(s *Server, cd config.Deployment, id string, index int, before func(*deploy.Deployment) error) (ModelChange, error) {
	d, warn, err := l.builder.Deployment("model", index, id, cd)
	if err != nil {
		return ModelChange{}, err
	}
	if before != nil {
		if err := before(d); err != nil {
			return ModelChange{}, err
		}
	}
	set := s.Set.With(d)
	c := s.Config
	c.Set, c.Router = set, s.Router.Rebuild(set.RouterDeployments())
	n := New(c)
	// /v1/models reports when the model list was created; a change does not
	// make the old groups new.
	n.created = s.created
	n.models = n.modelsBody(nil)
	l.cur.Store(n)
	s.Log.Info("deployment registered at runtime", "id", id, "model_group", d.Group(), "backend_model", d.BackendModel,
		"replaced", index < len(s.Set.Deployments), "catalog_entry", entryOf(d))
	return ModelChange{Deployment: d, Changed: true, Created: index == len(s.Set.Deployments), Warning: warn}, nil
}

func entryOf(d *deploy.Deployment) string {
	if d.Pricing == nil {
		return ""
	}
	return d.Pricing.Entry
}
