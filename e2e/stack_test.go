package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spendledger/spendledger/e2e/harness"
)

func TestInfraStoresAnswer(t *testing.T) {
	t.Parallel()
	in := harness.StartInfra(t)
	t.Logf("infra backend: %s", in.Backend)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	nc, err := nats.Connect(in.NATSURL)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatalf("jetstream account info: %v", err)
	}
	t.Logf("jetstream: %d streams, storage %d bytes", info.Streams, info.Store)

	conn, err := pgx.Connect(ctx, in.PostgresURL)
	if err != nil {
		t.Fatalf("postgres connect: %v", err)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("postgres select 1: %d, %v", one, err)
	}

	rdb := in.Redis()
	defer rdb.Close()
	if pong, err := rdb.Ping(ctx).Result(); err != nil || pong != "PONG" {
		t.Fatalf("redis ping: %q, %v", pong, err)
	}
}

func TestStackStartsAndEveryServiceIsReady(t *testing.T) {
	t.Parallel()
	st := harness.StartStack(t)
	client := &http.Client{Timeout: 5 * time.Second}
	for _, name := range harness.Services {
		svc := st.Service(name)
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := get(t, client, svc.URL+path); code != http.StatusOK {
				t.Errorf("%s GET %s: %d %s", name, path, code, body)
			}
		}
		code, body := get(t, client, svc.URL+"/metrics")
		if code != http.StatusOK || !strings.Contains(body, "\ngo_") && !strings.HasPrefix(body, "go_") {
			t.Errorf("%s GET /metrics: %d, no go_ metric in %d bytes", name, code, len(body))
		}
	}
}

func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEveryServiceRestartsAfterKillAndStop: each service comes back ready on its
// port after kill -9 and after SIGTERM (which it must answer with a clean exit).
func TestEveryServiceRestartsAfterKillAndStop(t *testing.T) {
	t.Parallel()
	st := harness.StartStack(t)
	for _, name := range harness.Services {
		svc := st.Service(name)
		svc.Kill()
		if svc.Running() {
			t.Fatalf("%s still running after Kill", name)
		}
		svc.Start()
		svc.Stop()
		svc.Start()
	}
}
