package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/config"
	"github.com/spendledger/spendledger/services/gateway/internal/deploy"
	"github.com/spendledger/spendledger/services/gateway/internal/router"
	"github.com/spendledger/spendledger/services/gateway/internal/upstream"
)

// newLiveRig is newRig served through a Live.
func newLiveRig(t *testing.T, yaml string) (*rig, *Live) {
	t.Helper()
	env := func(string) string { return "" }
	cfg, err := config.Parse([]byte(yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	set, _, err := deploy.Build(cfg, cat, upstream.NewHTTPClient(), env)
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := deploy.RouterSettings(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	r := &rig{budget: newFakeBudget(), pub: &fakePub{}, reg: reg}
	s := New(Config{
		Set: set, Router: router.New(set.RouterDeployments(), rs, router.WithHooks(m.RouterHooks())), Budget: r.budget, Publisher: r.pub, Metrics: m,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MasterKey: cfg.GeneralSettings.MasterKey, GatewayID: "gw-test",
		Now: func() time.Time { return fixedNow },
	})
	live := NewLive(s, deploy.NewBuilder(cfg, cat, upstream.NewHTTPClient(), env))
	mux := http.NewServeMux()
	live.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r, live
}

func TestLiveServesARuntimeDeployment(t *testing.T) {
	r, live := newLiveRig(t, mockConfig)
	ask := `{"model":"runtime","messages":[{"role":"user","content":"hi"}]}`
	if resp, _ := r.post(t, userKey, ask); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown group: %d", resp.StatusCode)
	}
	cd, _, err := config.ParseDeployment([]byte(`{"model_name": "runtime", "litellm_params": {"model": "openai/gpt-4o", "mock_response": "from runtime",
		"input_cost_per_token": "0.000001", "output_cost_per_token": "0.000002"}, "model_info": {"id": "rt-1"}}`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	old := live.Current()
	var hooked string
	c, err := live.AddModel(cd, func(d *deploy.Deployment) error { hooked = d.ID(); return nil })
	if err != nil || !c.Changed || !c.Created || hooked != "rt-1" {
		t.Fatalf("add: %+v %v (hook saw %q)", c, err, hooked)
	}
	resp, body := r.post(t, userKey, ask)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "from runtime") || resp.Header.Get("X-Litellm-Model-Id") != "rt-1" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if a := r.budget.lastAdmit(); len(a.Candidates) != 1 || a.Candidates[0].DeploymentId != "rt-1" || a.Candidates[0].PriceOverrides["input_cost_per_token"] != "0.000001" {
		t.Fatalf("admission candidates %v", a.Candidates)
	}
	if _, ok := old.Set.Lookup("runtime"); ok {
		t.Fatal("the old server's set changed")
	}
	req, _ := http.NewRequest(http.MethodGet, r.url+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+masterKey)
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(mbody), `"id":"runtime"`) {
		t.Fatalf("models %s", mbody)
	}
	// A failing hook (the deployment budget could not be set) changes nothing.
	cd2 := cd
	cd2.ModelInfo.ID = "rt-2"
	cd2.Source = nil
	if _, err := live.AddModel(cd2, func(*deploy.Deployment) error { return io.ErrUnexpectedEOF }); err == nil || live.Current().Set.ByID("rt-2") != nil {
		t.Fatalf("failed hook: %v", err)
	}
}

// TestLiveSwapsUnderLoad: requests keep being served, race-free, while
// deployments are registered (run with -race).
func TestLiveSwapsUnderLoad(t *testing.T) {
	r, live := newLiveRig(t, mockConfig)
	done := make(chan struct{})
	errs := make(chan string, 64)
	go func() {
		defer close(done)
		for i := range 10 {
			cd, _, err := config.ParseDeployment([]byte(fmt.Sprintf(`{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "mock_response": "r%d"}}`, i)),
				func(string) string { return "" })
			if err == nil {
				_, err = live.AddModel(cd, nil)
			}
			if err != nil {
				errs <- err.Error()
			}
		}
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				req, _ := http.NewRequest(http.MethodPost, r.url+"/v1/chat/completions", strings.NewReader(hello))
				req.Header.Set("Authorization", "Bearer "+userKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- resp.Status
				}
			}
		})
	}
	wg.Wait()
	<-done
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := len(live.Current().Set.Groups["gpt-4o"]); n != 11 {
		t.Fatalf("%d deployments in gpt-4o; want 1 + 10", n)
	}
}
