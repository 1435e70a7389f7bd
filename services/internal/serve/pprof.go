package serve

import "net/http/pprof"

// HandlePprof serves net/http/pprof under /debug/pprof/ on the service's own
// mux. Registered explicitly rather than by importing the package for its side
// effect, which would publish the profiles on http.DefaultServeMux for anyone
// who serves it. Off unless a service's -pprof flag asks for it: the profiles
// expose internals on the API address.
func (s *Server) HandlePprof() {
	s.Mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.Mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.Mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.Mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.Mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
