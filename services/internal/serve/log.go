package serve

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger returns a JSON slog logger at the named level (debug, info, warn,
// error) that tags every record with the service name.
func NewLogger(w io.Writer, service, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(h).With("service", service), nil
}
