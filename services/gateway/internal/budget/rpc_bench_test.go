package budget

import (
	"context"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/services/internal/serve"
)

// admitHandler answers every Admit at once with an admission the size of a
// real one, so a benchmark measures the RPC's cost and nothing else.
type admitHandler struct {
	budgetv1connect.UnimplementedBudgetServiceHandler
	resp *budgetv1.AdmitResponse
}

func (h *admitHandler) Admit(context.Context, *connect.Request[budgetv1.AdmitRequest]) (*connect.Response[budgetv1.AdmitResponse], error) {
	return connect.NewResponse(h.resp), nil
}

// AdmitBatch answers every item with the same admission: the client's
// Admits go out coalesced, as against the real budget service.
func (h *admitHandler) AdmitBatch(_ context.Context, r *connect.Request[budgetv1.AdmitBatchRequest]) (*connect.Response[budgetv1.AdmitBatchResponse], error) {
	out := &budgetv1.AdmitBatchResponse{Results: make([]*budgetv1.AdmitBatchResult, len(r.Msg.Requests))}
	for i := range out.Results {
		out.Results[i] = &budgetv1.AdmitBatchResult{Outcome: &budgetv1.AdmitBatchResult_Response{Response: h.resp}}
	}
	return connect.NewResponse(out), nil
}

func benchAdmission() *budgetv1.AdmitResponse {
	return &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: &budgetv1.Admission{
		ReservationId:        "01890f3e-7c1a-7d3b-9a4e-2f6b8c0d1e2f",
		ExpiresAt:            timestamppb.Now(),
		ReservedNanos:        123_456,
		AllowedDeploymentIds: []string{"d-0123456789abcdef"},
		Budgets: []*budgetv1.BudgetStatus{{
			Scope:      &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY, Id: "key-0123456789"},
			LimitNanos: 1_000_000_000_000, SpentNanos: 42,
		}},
		CounterKeys: []string{"{sl}:c:key:key-0123456789:1d:20261122"},
	}}}
}

// BenchmarkAdmitRPC is one Admit over loopback through the gateway's client
// and a serve.Server, over kept-alive HTTP/1.1 (serve.RPCClient, what the
// gateway uses) and over h2c (serve.H2CClient). Both ends run in this process,
// so cpu-ns/op (user+system CPU of the process per call) is the whole RPC's
// CPU cost; wall time on a shared machine is noise.
//
// The handler here sets no compression threshold, so http1-gzip (Connect's
// default client, which asks for gzip) shows what RPCClientOptions save.
func BenchmarkAdmitRPC(b *testing.B) {
	srv := serve.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv.Mux.Handle(budgetv1connect.NewBudgetServiceHandler(&admitHandler{resp: benchAdmission()}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, time.Second) }()
	b.Cleanup(func() { cancel(); <-done })
	req := &budgetv1.AdmitRequest{
		RequestId: "01890f3e-7c1a-7d3b-9a4e-2f6b8c0d1e2f", KeyId: "key-0123456789", ModelGroup: "gpt-4o",
		Candidates:   []*budgetv1.Candidate{{DeploymentId: "d-0123456789abcdef", Provider: "openai", BackendModel: "gpt-4o"}},
		PromptTokens: 12, MaxTokens: 16,
	}
	base := "http://" + ln.Addr().String()
	for _, cc := range []struct {
		name string
		c    *Client
	}{
		{"http1", NewClient(serve.RPCClient(10*time.Second), base)},
		{"h2c", NewClient(serve.H2CClient(10*time.Second), base)},
		{"http1-gzip", clientOf(budgetv1connect.NewBudgetServiceClient(serve.RPCClient(10*time.Second), base))},
	} {
		name, c := cc.name, cc.c
		admit := func() {
			if _, err := c.Admit(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				admit()
			}
			cpu.report(b)
		})
		b.Run(name+"-parallel50", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(25) // x GOMAXPROCS 2 = 50 calls in flight
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					admit()
				}
			})
			cpu.report(b)
		})
	}
}

// cpuClock is the process's CPU time (user + system) since a start.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}
