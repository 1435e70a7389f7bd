// Package serve runs the HTTP server every service has: its own routes beside
// /healthz (liveness), /readyz (readiness of its dependencies) and /metrics
// (Prometheus), with graceful shutdown.
//
// Liveness answers 200 as long as the process serves HTTP; a dead dependency
// never makes a service "not alive", or an orchestrator would restart it in a
// loop while the dependency is down. Readiness runs every registered check and
// answers 503 naming the failures, and answers 503 from the moment shutdown
// begins so load balancers stop sending work before the listener closes.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CheckTimeout bounds each readiness check.
const CheckTimeout = 2 * time.Second

// Check reports whether one dependency is usable.
type Check func(context.Context) error

// Server is a service's HTTP server.
type Server struct {
	// Mux is where the service registers its own routes.
	Mux *http.ServeMux
	// Registry is where the service registers its metrics; it already holds the
	// Go runtime and process collectors.
	Registry *prometheus.Registry

	log      *slog.Logger
	mu       sync.Mutex
	checks   map[string]Check
	draining atomic.Bool
}

// New returns a Server with the shared endpoints registered.
func New(log *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{Mux: http.NewServeMux(), Registry: reg, log: log, checks: map[string]Check{}}
	s.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.Mux.HandleFunc("GET /readyz", s.ready)
	s.Mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return s
}

// AddCheck registers a readiness check under a name shown in /readyz.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Ready runs every check and returns the failures by name.
func (s *Server) Ready(ctx context.Context) map[string]error {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed = map[string]error{}
	)
	for name, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			if err := c(cctx); err != nil {
				mu.Lock()
				failed[name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if s.draining.Load() {
		failed["shutdown"] = errors.New("draining")
	}
	return failed
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	failed := s.Ready(r.Context())
	body := map[string]any{"status": "ready"}
	status := http.StatusOK
	if len(failed) > 0 {
		status = http.StatusServiceUnavailable
		names := make([]string, 0, len(failed))
		for n := range failed {
			names = append(names, n)
		}
		sort.Strings(names)
		reasons := map[string]string{}
		for _, n := range names {
			reasons[n] = failed[n].Error()
		}
		body = map[string]any{"status": "not ready", "failed": reasons}
	}
	writeJSON(w, status, body)
}

// Run serves on addr until ctx is done, then stops accepting, marks the server
// not ready, and waits up to grace for in-flight requests to finish.
func (s *Server) Run(ctx context.Context, addr string, grace time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln, grace)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.Mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Cleartext HTTP/2 lets gRPC clients reach Connect handlers without TLS
		// on a trusted network; HTTP/1.1 serves everything else.
		Protocols: protocols(),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}

func protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// Step is a readiness check that fails until its start-up step is done, so a
// service serves /healthz while it waits for a store to run migrations.
type Step struct {
	name string
	done atomic.Bool
}

// NewStep registers a pending start-up step as a readiness check.
func (s *Server) NewStep(name string) *Step {
	st := &Step{name: name}
	s.AddCheck(name, func(context.Context) error {
		if !st.done.Load() {
			return errors.New("not done yet")
		}
		return nil
	})
	return st
}

// Done marks the step finished.
func (st *Step) Done() { st.done.Store(true) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
