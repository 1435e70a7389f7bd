package harness

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// NATSServer is a test's own nats-server with JetStream and no other store,
// for a service tested against NATS alone (the gateway, with its budget
// service answered in process). It always runs the local binary (.bin/ or
// PATH). Its URL, port and data survive Stop and Start; it stops at the
// test's cleanup, and a failed test gets its log and its services' logs.
type NATSServer struct {
	URL string // nats://127.0.0.1:PORT

	in    *Infra
	names map[string]bool // services prepared so far, to keep their logs apart
}

// StartNATSServer starts a nats-server with JetStream for tb and returns
// once JetStream answers.
func StartNATSServer(tb testing.TB) *NATSServer {
	tb.Helper()
	in := newInfra(tb, newConfig(nil))
	in.Backend = "local"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := in.startLocalNATS(ctx)
	if s != nil {
		in.nats = s // stopped at cleanup even when it did not become ready
	}
	if err != nil {
		tb.Fatalf("harness: start nats: %v", err)
	}
	return &NATSServer{URL: in.NATSURL, in: in, names: map[string]bool{}}
}

// Stop stops the server gracefully; JetStream's data stays for Start.
func (n *NATSServer) Stop() { n.in.t.Helper(); n.in.StopNATS() }

// Start starts the server again on the same port and data and returns once
// JetStream answers.
func (n *NATSServer) Start() { n.in.t.Helper(); n.in.StartNATS() }

// NewService prepares one of the repository's services (built as StartStack
// builds them) to run with args on a port of its own: the harness adds
// --http-addr. A second service of the same name logs as name-PORT. It is
// not started (Start waits for /readyz 200); it is stopped
// at the test's cleanup, before the NATS server, and must exit cleanly on
// SIGTERM.
func (n *NATSServer) NewService(name string, args ...string) *Service {
	n.in.t.Helper()
	bindir, err := serviceBinaries()
	if err != nil {
		n.in.t.Fatalf("harness: %v", err)
	}
	port, err := freePort()
	if err != nil {
		n.in.t.Fatalf("harness: %v", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	label := name
	if n.names[name] {
		label = name + "-" + strconv.Itoa(port)
	}
	n.names[name] = true
	s := n.in.newService(label, addr, filepath.Join(bindir, name), concat([]string{"--http-addr", addr}, args), nil)
	n.in.t.Cleanup(s.stopChecked)
	return s
}

// newService is a Service for the binary at path, run with args and env
// (appended to the test's environment) in the infra's directory, logging to
// its log set.
func (in *Infra) newService(name, addr, path string, args, env []string) *Service {
	return &Service{
		Name: name,
		URL:  "http://" + addr,
		t:    in.t,
		logs: in.logs,
		p: &process{
			name:     name,
			path:     path,
			args:     args,
			env:      env,
			dir:      in.Dir,
			logPath:  in.logs.path(name),
			stopWait: 15 * time.Second,
		},
		readyTimeout: in.cfg.readyTimeout,
	}
}
