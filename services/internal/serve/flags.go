package serve

import (
	"runtime/debug"
	"time"

	"github.com/spendledger/spendledger/services/internal/envflag"
)

// Flags are the settings every service's server has.
type Flags struct {
	Addr     *string
	LogLevel *string
	Grace    *time.Duration
}

// DefineFlags defines -http-addr (HTTP_ADDR), -log-level (LOG_LEVEL) and
// -shutdown-grace (SHUTDOWN_GRACE).
func DefineFlags(fs *envflag.Set, defaultAddr string) Flags {
	return Flags{
		Addr:     fs.String("http-addr", "HTTP_ADDR", defaultAddr, "listen address for the API, /healthz, /readyz and /metrics"),
		LogLevel: fs.String("log-level", "LOG_LEVEL", "info", "log level: debug, info, warn or error"),
		Grace:    fs.Duration("shutdown-grace", "SHUTDOWN_GRACE", 20*time.Second, "how long SIGTERM waits for in-flight work"),
	}
}

// GCPercentFlag defines -gc-percent (env), default 400, and returns what
// applies it once the flags are parsed: the Go GC target, unless GOGC is set
// (the runtime's own variable wins). The services allocate per request or
// batch around a small live heap, so at Go's default of 100 the GC runs
// nearly all the time (measured at ~35% of the ledger's CPU while draining a
// backlog, ~24% of the budget service's under admission load); 400 trades a
// few tens of MB for that CPU.
func GCPercentFlag(fs *envflag.Set, env string) (apply func(getenv func(string) string)) {
	p := fs.Int("gc-percent", env, 400, "Go GC target percentage (as GOGC); ignored when GOGC is set")
	return func(getenv func(string) string) {
		if getenv("GOGC") == "" {
			debug.SetGCPercent(*p)
		}
	}
}
