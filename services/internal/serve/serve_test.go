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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, 5*time.Second) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
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
