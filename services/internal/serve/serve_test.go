package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestReadyzNamesFailedChecks(t *testing.T) {
	s := New(quiet())
	s.AddCheck("redis", func(context.Context) error { return errors.New("connection refused") })
	s.AddCheck("nats", func(context.Context) error { return nil })
	rec := httptest.NewRecorder()
	s.Mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d; want 503", rec.Code)
	}
	var body struct{ Failed map[string]string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Failed["redis"] != "connection refused" || len(body.Failed) != 1 {
		t.Fatalf("failed = %v; want only redis", body.Failed)
	}
}

func TestStepBlocksReadinessUntilDone(t *testing.T) {
	s := New(quiet())
	st := s.NewStep("migrations")
	if len(s.Ready(context.Background())) != 1 {
		t.Fatal("want not ready before the step is done")
	}
	st.Done()
	if f := s.Ready(context.Background()); len(f) != 0 {
		t.Fatalf("want ready after Done, got %v", f)
	}
}

func TestHealthAndMetricsAnswer(t *testing.T) {
	s := New(quiet())
	for path, want := range map[string]string{"/healthz": `"ok"`, "/metrics": "go_goroutines"} {
		rec := httptest.NewRecorder()
		s.Mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Fatalf("%s: %d %q; want 200 containing %q", path, rec.Code, rec.Body.String(), want)
		}
	}
}

func TestShutdownWaitsForInFlightRequests(t *testing.T) {
	s := New(quiet())
	started := make(chan struct{})
	s.Mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(w, "finished")
	})
	base, stop := serveOnLoopback(t, s, 5*time.Second)

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	done := stop()
	if body := <-got; body != "finished" {
		t.Fatalf("in-flight request got %q; want it to finish", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if f := s.Ready(context.Background()); f["shutdown"] == nil {
		t.Fatal("want not ready once shutdown began")
	}
}

func TestPprofIsServedOnlyWhenAskedFor(t *testing.T) {
	off := New(quiet())
	rec := httptest.NewRecorder()
	off.Mux.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("pprof served without HandlePprof: %d", rec.Code)
	}
	on := New(quiet())
	on.HandlePprof()
	rec = httptest.NewRecorder()
	on.Mux.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "goroutine") {
		t.Fatalf("pprof index: %d", rec.Code)
	}
}

func TestServesH2CAndHTTP1(t *testing.T) {
	s := New(quiet())
	s.Mux.HandleFunc("GET /proto", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})
	base, stop := serveOnLoopback(t, s, 10*time.Second)
	url := base + "/proto"
	for _, c := range []struct {
		name   string
		client *http.Client
		want   string
	}{{"H2CClient", H2CClient(5 * time.Second), "HTTP/2.0"}, {"RPCClient", RPCClient(5 * time.Second), "HTTP/1.1"}} {
		resp, err := c.client.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != c.want {
			t.Errorf("%s: served over %q; want %q", c.name, b, c.want)
		}
	}
	// An idle HTTP/2 connection must not hold shutdown up until the grace
	// ends: it gets a GOAWAY and is closed a second later (net/http waits that
	// long so the peer reads the GOAWAY before the close).
	start := time.Now()
	if err := <-stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v with an idle h2c connection open", d)
	}
}

// serveOnLoopback runs s on a loopback port and returns its base URL and stop,
// which begins the shutdown and returns where Serve's result will arrive.
func serveOnLoopback(t *testing.T, s *Server, grace time.Duration) (string, func() <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, grace) }()
	return "http://" + ln.Addr().String(), func() <-chan error { cancel(); return done }
}
