package serve

import (
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
