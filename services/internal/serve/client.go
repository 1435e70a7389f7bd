package serve

import (
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
)

// RPCClient returns the HTTP client for Connect calls from one service to
// another's Server: HTTP/1.1 with a keep-alive pool wide enough that a call
// never waits for a dial under load (the gateway calls Admit on every
// request), and timeout bounding each call.
//
// Not HTTP/2, although every Server accepts cleartext HTTP/2 (h2c) for gRPC
// clients: measured (BenchmarkAdmitRPC in services/gateway/internal/budget),
// an Admit over h2c costs more CPU, client and server together, than over a
// kept-alive HTTP/1.1 connection: about half as much again one call at a time,
// a fifth more at 50 in flight, with a third more bytes allocated.
// net/http's HTTP/2 client flushes a request's HEADERS frame and its DATA
// frame in two writes where HTTP/1.1 sends one, and its server starts a
// goroutine per call where HTTP/1.1 reuses the connection's. A unary call with
// a small body is exactly the case where multiplexing buys nothing back.
func RPCClient(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        2048,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// H2CClient is RPCClient over cleartext HTTP/2 with prior knowledge: every
// call multiplexed onto one connection (another is opened past the server's
// MaxConcurrentStreams). For a caller that must keep few connections open; it
// costs more CPU per unary call than RPCClient (see there). A connection that
// died silently would stall every call on it, so it is pinged after pingAfter
// without a frame and closed when the ping goes unanswered.
func H2CClient(timeout time.Duration) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	d := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:     d.DialContext,
			Protocols:       p,
			IdleConnTimeout: 90 * time.Second,
			HTTP2:           &http.HTTP2Config{SendPingTimeout: pingAfter, PingTimeout: pingTimeout},
		},
	}
}

// pingAfter and pingTimeout bound how long a dead HTTP/2 connection goes unnoticed.
const (
	pingAfter   = 5 * time.Second
	pingTimeout = 2 * time.Second
)

// RPCClientOptions are the Connect options for a client of another service.
// They turn off response compression: Connect clients ask for gzip by default
// and a server without a compression threshold then compresses every answer,
// which for the few hundred bytes of an Admit costs more CPU than it saves on
// a local network: a flate reset on each side per call, a third of an Admit's
// CPU against a handler without a threshold (measured; the budget service sets
// one, other servers may not).
func RPCClientOptions() []connect.ClientOption {
	return []connect.ClientOption{connect.WithAcceptCompression("gzip", nil, nil)}
}
