package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/e2e/bench/figures"
	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
)

// stubBody is an OpenAI chat completion with usage, as a provider returns it.
const stubBody = `{"id":"chatcmpl-stub","object":"chat.completion","created":1,"model":"gpt-4o",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}`

const chatBody = `{"model":"gpt-4o","max_tokens":16,"messages":[{"role":"user","content":"ping"}]}`

// startStub serves stubBody on loopback: the upstream both paths call.
func startStub(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, stubBody)
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// gatewayStack starts the stack with one deployment on the stub and returns
// it with a virtual key under a budget large enough never to deny.
func gatewayStack(b *testing.B, stub string) (*harness.Stack, string) {
	cfg := fmt.Sprintf(`
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: %s
      api_key: stub
general_settings:
  master_key: sk-bench-master
`, stub)
	st := harness.StartStack(b, append(profileArgs("gateway"), harness.WithGatewayConfigYAML(cfg), harness.WithLogLevel("warn"))...)
	budget := budgetv1connect.NewBudgetServiceClient(http.DefaultClient, st.BudgetURL)
	res, err := budget.CreateKey(context.Background(), connect.NewRequest(&budgetv1.CreateKeyRequest{
		Key:     &budgetv1.Key{KeyAlias: "bench", TeamId: ""},
		Budgets: []*budgetv1.BudgetSpec{{LimitUsd: "1000000", Duration: "1d"}},
	}))
	if err != nil {
		b.Fatal(err)
	}
	return st, res.Msg.GetClearKey()
}

type target struct {
	url string
	key string
}

func (t target) do(c *http.Client) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodPost, t.url, strings.NewReader(chatBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.key)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return time.Since(start), nil
}

func client(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}}
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// serial sends n requests one at a time and returns their latencies.
func serial(b *testing.B, t target, n int) []time.Duration {
	c := client(1)
	out := make([]time.Duration, 0, n)
	for range n {
		d, err := t.do(c)
		if err != nil {
			b.Fatalf("%s: %v", t.url, err)
		}
		out = append(out, d)
	}
	return out
}

// concurrent drives t from conc goroutines for dur and returns the rate and
// the latencies.
func concurrent(b *testing.B, t target, conc int, dur time.Duration) (float64, []time.Duration) {
	c := client(conc)
	var (
		mu   sync.Mutex
		all  []time.Duration
		fail atomic.Int64
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(dur)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stop) {
				d, err := t.do(c)
				if err != nil {
					fail.Add(1)
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := fail.Load(); f > 0 {
		b.Fatalf("%s: %d failed requests", t.url, f)
	}
	return float64(len(all)) / elapsed.Seconds(), all
}

// BenchmarkGatewayOverhead measures what the gateway adds to a call, with
// authentication, admission (Admit over Connect, reservation in Redis) and
// event publishing on, against direct calls to the same upstream stub in the
// same run: latency at concurrency 1 (3,000 calls each way), and throughput
// and p99 at 50 (10 s each way); a tenth of that in a smoke run.
func BenchmarkGatewayOverhead(b *testing.B) {
	stub := startStub(b)
	st, key := gatewayStack(b, stub)
	direct := target{url: stub + "/chat/completions", key: "stub"}
	gw := target{url: st.GatewayURL + "/v1/chat/completions", key: key}

	// Warm connections and caches on both paths.
	warm := scaled(200, 50)
	serial(b, direct, warm)
	serial(b, gw, warm)
	b.ResetTimer()

	n, dur := scaled(3000, 300), scaled(10*time.Second, 2*time.Second)
	d1, g1 := serial(b, direct, n), serial(b, gw, n)
	dp50, dp99 := percentile(d1, 0.50), percentile(d1, 0.99)
	gp50, gp99 := percentile(g1, 0.50), percentile(g1, 0.99)

	drate, dl := concurrent(b, direct, 50, dur)
	prof := startProfile(b, st, "gateway", int(min(dur, 5*time.Second)/time.Second))
	grate, gl := concurrent(b, gw, 50, dur)
	prof.stop(len(gl))
	// The same with pricing and the ledger stopped: the gateway still
	// admits and publishes every event durably, and the pipeline drains the
	// backlog afterwards (checked below), but it no longer shares these two
	// cores while the load runs, as it would not on a gateway host.
	for _, s := range []string{"pricing", "ledger"} {
		st.Service(s).Stop()
	}
	p1 := serial(b, gw, n)
	prate, pl := concurrent(b, gw, 50, dur)
	b.StopTimer()
	for _, s := range []string{"pricing", "ledger"} {
		st.Service(s).Start()
	}
	drained(b, st)

	serialNote := fmt.Sprintf("%d calls each way: direct p50 %.2f ms, p99 %.2f ms; gateway p50 %.2f ms, p99 %.2f ms",
		n, ms(dp50), ms(dp99), ms(gp50), ms(gp99))
	record(b, "gateway_added_p50_ms", ms(gp50-dp50), serialNote)
	record(b, "gateway_added_p99_ms", ms(gp99-dp99), serialNote)
	concNote := fmt.Sprintf("%v each way: direct %.0f req/s, p99 %.2f ms; gateway %.0f req/s, p99 %.2f ms",
		dur, drate, ms(percentile(dl, 0.99)), grate, ms(percentile(gl, 0.99)))
	record(b, "gateway_req_per_s_c50", grate, concNote)
	record(b, "gateway_p99_ms_c50", ms(percentile(gl, 0.99)), concNote)
	pausedNote := fmt.Sprintf("%v: %.0f req/s, p99 %.2f ms, with pricing and the ledger stopped; afterwards they drained every event into the ledger",
		dur, prate, ms(percentile(pl, 0.99)))
	record(b, "gateway_req_per_s_c50_pipeline_paused", prate, pausedNote)
	pausedSerial := fmt.Sprintf("%d calls with pricing and the ledger stopped: gateway p50 %.2f ms, p99 %.2f ms; direct as above",
		n, ms(percentile(p1, 0.50)), ms(percentile(p1, 0.99)))
	record(b, "gateway_added_p50_ms_pipeline_paused", ms(percentile(p1, 0.50)-dp50), pausedSerial)
	record(b, "gateway_added_p99_ms_pipeline_paused", ms(percentile(p1, 0.99)-dp99), pausedSerial)
	record(b, figures.LimitStubDirect, drate, concNote)
}

// drained waits until the ledger holds an entry for every usage event the
// gateway published, and fails the benchmark if it does not within two
// minutes: a figure bought by losing events is no figure.
func drained(b *testing.B, st *harness.Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := harness.JetStream(b, st.NATSURL)
	pool, err := pgxpool.New(ctx, st.PostgresURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	for {
		s, err := js.Stream(ctx, "USAGE")
		if err != nil {
			b.Fatal(err)
		}
		var n uint64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger_entries`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if want := s.CachedInfo().State.Msgs; n >= want {
			b.Logf("ledger holds all %d usage events", want)
			return
		}
		if ctx.Err() != nil {
			b.Fatalf("ledger holds %d entries of %d usage events after two minutes", n, s.CachedInfo().State.Msgs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
