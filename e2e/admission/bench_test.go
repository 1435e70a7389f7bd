package admission_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/e2e/harness"
	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/services/budget/budgetsvc"
)

// BenchmarkAdmitInProcess is BenchmarkAdmitConnect (e2e/bench) with the
// service in this process, for CPU profiles of admission and its Connect
// client together (-cpuprofile): 64 concurrent callers, six budgets per
// request. The headline figure is e2e/bench's, against the binary.
func BenchmarkAdmitInProcess(b *testing.B) {
	for name, tune := range map[string]func(*budgetsvc.AdmissionConfig){"group_commit": nil, "one_by_one": oneByOne} {
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			in := e.newInstance(tune)
			mux := http.NewServeMux()
			mux.Handle(in.svc.Routes())
			srv := httptest.NewUnstartedServer(mux)
			srv.Config.Protocols = new(http.Protocols)
			srv.Config.Protocols.SetHTTP1(true)
			srv.Config.Protocols.SetUnencryptedHTTP2(true)
			srv.Start()
			b.Cleanup(srv.Close)
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			if os.Getenv("H2C") != "" {
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetUnencryptedHTTP2(true)
			}
			c := budgetv1connect.NewBudgetServiceClient(&http.Client{Transport: tr}, srv.URL)
			_, err := c.CreatePrincipal(harness.Context(b), connect.NewRequest(&budgetv1.CreatePrincipalRequest{
				Principal: &budgetv1.Principal{Kind: budgetv1.PrincipalKind_PRINCIPAL_KIND_ORG, Id: "o"}}))
			if err != nil {
				b.Fatal(err)
			}
			createKey(b, c, "seed", "t")
			for i := range 16 {
				_, err := c.CreateKey(harness.Context(b), connect.NewRequest(&budgetv1.CreateKeyRequest{
					Key:     &budgetv1.Key{KeyId: fmt.Sprintf("k%d", i), TeamId: "t", UserId: "u", OrgId: "o", Tags: []string{"tag"}},
					Budgets: []*budgetv1.BudgetSpec{{LimitUsd: "100000", Duration: "1d"}}}))
				if err != nil {
					b.Fatal(err)
				}
				setBudget(b, c, &budgetv1.BudgetSpec{Scope: scopeOf(eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, fmt.Sprintf("k%d", i), "gpt-4o"), LimitUsd: "100000", Duration: "1d"})
			}
			for _, s := range []*eventsv1.Scope{
				scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TEAM, "t", ""), scopeOf(eventsv1.ScopeKind_SCOPE_KIND_USER, "u", ""),
				scopeOf(eventsv1.ScopeKind_SCOPE_KIND_ORG, "o", ""), scopeOf(eventsv1.ScopeKind_SCOPE_KIND_TAG, "tag", ""),
			} {
				setBudget(b, c, &budgetv1.BudgetSpec{Scope: s, LimitUsd: "100000", Duration: "1d"})
			}
			var seq atomic.Int64
			var failed atomic.Value
			run := func(n int) time.Duration {
				var left atomic.Int64
				left.Store(int64(n))
				var wg sync.WaitGroup
				start := time.Now()
				for range 64 {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							i := seq.Add(1)
							r, err := c.Admit(context.Background(), connect.NewRequest(admitReq(fmt.Sprintf("b%d", i), fmt.Sprintf("k%d", i%16), 1_000, 500)))
							if err != nil || len(r.Msg.GetAdmitted().GetCounterKeys()) != 6 {
								failed.CompareAndSwap(nil, fmt.Errorf("%v %v", r, err))
								return
							}
						}
					})
				}
				wg.Wait()
				return time.Since(start)
			}
			run(1000)
			b.ResetTimer()
			d := run(b.N)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/d.Seconds(), "admits/s")
		})
	}
}
