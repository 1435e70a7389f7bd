package budget

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	"github.com/spendledger/spendledger/ledger/redisstore"
)

// grantingService admits every request with an estimate of 10 nanos per
// prompt token, granting what it is asked for from a lease of its own, and
// records releases.
type grantingService struct {
	budgetv1connect.UnimplementedBudgetServiceHandler
	handOutFor time.Duration

	mu       sync.Mutex
	admits   int
	asked    []uint32
	leases   int
	released map[string]bool
}

func (s *grantingService) AdmitBatch(_ context.Context, r *connect.Request[budgetv1.AdmitBatchRequest]) (*connect.Response[budgetv1.AdmitBatchResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &budgetv1.AdmitBatchResponse{}
	for _, req := range r.Msg.Requests {
		s.admits++
		s.asked = append(s.asked, req.GrantParts)
		s.leases++
		lease := redisstore.LeaseID(fmt.Sprint(s.leases))
		est := 10 * req.PromptTokens
		// Every field set, so that the test below notices a local admission
		// that lacks one.
		adm := &budgetv1.Admission{ReservationId: redisstore.LeasePart(lease, 1, est), ReservedNanos: est, CounterKeys: []string{"c1"},
			ExpiresAt: timestamppb.New(time.Unix(1_800_000_000, 0)), AllowedDeploymentIds: []string{"d"},
			Budgets:           []*budgetv1.BudgetStatus{{BudgetId: "b", LimitNanos: 5}},
			CandidateCounters: []*budgetv1.CandidateCounters{{DeploymentId: "d", CounterKeys: []string{"c2"}}}}
		if req.GrantParts > 1 {
			adm.Grant = &budgetv1.LeaseGrant{LeaseId: lease, FirstPart: 2, Parts: req.GrantParts - 1, HandOutFor: durationpb.New(s.handOutFor)}
		}
		out.Results = append(out.Results, &budgetv1.AdmitBatchResult{Outcome: &budgetv1.AdmitBatchResult_Response{
			Response: &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: adm}}}})
	}
	return connect.NewResponse(out), nil
}

func (s *grantingService) Release(_ context.Context, r *connect.Request[budgetv1.ReleaseRequest]) (*connect.Response[budgetv1.ReleaseResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released[r.Msg.ReservationId] = true
	return connect.NewResponse(&budgetv1.ReleaseResponse{Released: true}), nil
}

func (s *grantingService) stats() (admits int, asked []uint32, released map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := map[string]bool{}
	for k := range s.released {
		r[k] = true
	}
	return s.admits, append([]uint32(nil), s.asked...), r
}

// Requests like a granted one are admitted from the grant, each with a part
// id of its own reserving the granting estimate; unlike ones (another key,
// a larger prompt, max_tokens unset) go to the service; asks follow demand;
// what a grant did not hand out is released in one part when it ends.
func TestGrantsAdmitLikeRequestsLocally(t *testing.T) {
	svc := &grantingService{handOutFor: time.Second, released: map[string]bool{}}
	c := startBudget(t, svc)
	req := func(id, key string, prompt, maxTokens int64) *budgetv1.AdmitRequest {
		return &budgetv1.AdmitRequest{RequestId: id, KeyId: key, ModelGroup: "g", PromptTokens: prompt, MaxTokens: maxTokens,
			Candidates: []*budgetv1.Candidate{{DeploymentId: "d", Provider: "p", BackendModel: "m"}}}
	}
	admit := func(r *budgetv1.AdmitRequest) *budgetv1.Admission {
		t.Helper()
		resp, err := c.Admit(context.Background(), r)
		if err != nil || resp.GetAdmitted() == nil {
			t.Fatalf("admit %s: %v %v", r.RequestId, resp, err)
		}
		return resp.GetAdmitted()
	}

	first := admit(req("r1", "k", 100, 50))  // a new kind asks 2: one part granted
	second := admit(req("r2", "k", 100, 50)) // from the grant
	if n, asked, _ := svc.stats(); n != 1 || fmt.Sprint(asked) != "[2]" {
		t.Fatalf("%d calls asking %v; want 1 call asking [2]", n, asked)
	}
	if first.ReservationId == second.ReservationId {
		t.Fatalf("two admissions, one reservation: %v", first)
	}
	admit(req("r3", "k", 100, 50))             // the block is used up: asks 2 again (no block has ended yet)
	admit(req("r4", "k", 100, 50))             // from the new grant; r3's grant ended r1's block, which handed out 1
	granting := admit(req("r5", "k", 100, 50)) // so the kind asks 2 × (1 + 1) = 4: three parts
	if _, asked, _ := svc.stats(); fmt.Sprint(asked) != "[2 2 4]" {
		t.Fatalf("asked %v; want [2 2 4]", asked)
	}
	seen := map[string]bool{granting.ReservationId: true}
	// A local admission is the granting one but for its reservation id (and
	// the grant itself): every field of Admission, so a field added later
	// that the local copy misses fails here.
	fields := granting.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if f := fields.Get(i); !granting.ProtoReflect().Has(f) {
			t.Fatalf("the fake service leaves Admission.%s unset; set it so local admissions are checked for it", f.Name())
		}
	}

	for i, r := range []*budgetv1.AdmitRequest{req("r6", "k", 100, 50), req("r6b", "k", 60, 10), req("r6c", "k", 1, 1)} {
		a := admit(r)
		lease, amount, ok := redisstore.ParseLeasePart(a.ReservationId)
		if !ok || amount != 1000 || a.ReservedNanos != 1000 || seen[a.ReservationId] || a.CounterKeys[0] != "c1" {
			t.Fatalf("local admission %d: %v (lease %q)", i, a, lease)
		}
		seen[a.ReservationId] = true
		if i == 0 {
			got := proto.CloneOf(a)
			got.ReservationId, got.Grant = granting.ReservationId, granting.Grant
			if !proto.Equal(got, granting) {
				t.Fatalf("local admission %v differs from the granting %v beyond its reservation id", a, granting)
			}
		}
	}
	if n, _, _ := svc.stats(); n != 3 {
		t.Fatalf("%d calls; want the 3 like requests admitted locally", n)
	}
	// Unlike requests go to the service; while a block is in use, they ask
	// for no block of their own.
	admit(req("r7", "other-key", 100, 50)) // a new kind: asks 2
	admit(req("r8", "k", 101, 50))         // the block is used up: asks 4, a block for prompts up to 101
	admit(req("r9", "k", 100, 0))          // not covered (max_tokens unset), block in use: asks 1
	admit(req("r10", "k", 100, 50))        // covered by r8's block
	if n, asked, _ := svc.stats(); n != 6 || fmt.Sprint(asked) != "[2 2 4 2 4 1]" {
		t.Fatalf("%d calls asking %v; want 6 asking [2 2 4 2 4 1]", n, asked)
	}

	// A block nobody uses up is released, its rest as one part. r8's block
	// has parts 3 and 4 left: use them, then a new block of 7 (ask 8: the
	// used-up block handed out 3) of which one is used.
	admit(req("r11", "k", 100, 50))
	admit(req("r12", "k", 100, 50))
	g := admit(req("r13", "k", 100, 50))
	admit(req("r14", "k", 100, 50))
	if n, asked, _ := svc.stats(); n != 7 || asked[6] != 8 {
		t.Fatalf("%d calls asking %v; want the 7th asking 8", n, asked)
	}
	lease, _, _ := redisstore.ParseLeasePart(g.ReservationId)
	want := redisstore.LeasePart(lease, 3, 6*1000)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, rel := svc.stats(); rel[want] {
			break
		}
		if time.Now().After(deadline) {
			_, _, rel := svc.stats()
			t.Fatalf("released %v; want %s (parts 3..8 unused)", rel, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// After it ended, the kind asks for twice what it handed out (2).
	admit(req("r15", "k", 100, 50))
	if _, asked, _ := svc.stats(); asked[len(asked)-1] != 4 {
		t.Fatalf("asked %v after a block that handed out 2; want 4", asked)
	}
}

// Kinds of request without a block are forgotten after forgetAfter, so end
// users and tags cannot grow the table without bound; a kind in use is kept.
func TestGrantsForgetIdleKinds(t *testing.T) {
	now := time.Now()
	g := newGrants(func(context.Context, string, []string) error { return nil }, slog.Default())
	g.now = func() time.Time { return now }
	grant := func(user string) {
		req := &budgetv1.AdmitRequest{RequestId: "r", KeyId: "k", EndUserId: user, PromptTokens: 1}
		_, kind, _ := g.take(req)
		g.asked(kind, 1, 0, &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: &budgetv1.Admission{
			ReservationId: "lease:x/1/5", ReservedNanos: 5,
			Grant: &budgetv1.LeaseGrant{LeaseId: "lease:x", FirstPart: 2, Parts: 3, HandOutFor: durationpb.New(time.Hour)}}}})
	}
	grant("a")
	grant("b")
	g.mu.Lock()
	var blockA *grantBlock
	for _, sh := range g.shapes {
		if sh.cur != nil && blockA == nil {
			blockA = sh.cur
		}
	}
	g.mu.Unlock()
	for k, sh := range g.shapes {
		if sh.cur == blockA {
			sh.cur.next = sh.cur.end // used up
			g.close(k, blockA)
		}
	}
	now = now.Add(2 * forgetAfter)
	grant("c")
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.shapes) != 2 {
		t.Fatalf("%d kinds remembered; want 2 (the one with a block, and the new one)", len(g.shapes))
	}
}

// Like requests that find no block while one of them asks for it wait for
// its answer instead of asking too: a burst of them costs a few calls, and
// the block's parts go to the burst.
func TestGrantsOneAskPerKind(t *testing.T) {
	svc := &grantingService{handOutFor: time.Second, released: map[string]bool{}}
	c := startBudget(t, svc)
	c.grants.mu.Lock()
	c.grants.maxParts = 64
	c.grants.mu.Unlock()
	seed := &budgetv1.AdmitRequest{RequestId: "seed", KeyId: "k", ModelGroup: "g", PromptTokens: 10, MaxTokens: 10}
	_, kind, _ := c.grants.take(proto.CloneOf(seed))
	c.grants.mu.Lock()
	c.grants.shapes[kind].asked = 64
	c.grants.shapes[kind].asking = nil
	c.grants.mu.Unlock()

	var wg sync.WaitGroup
	ids := make([]string, 40)
	for i := range ids {
		wg.Go(func() {
			r := proto.CloneOf(seed)
			r.RequestId = fmt.Sprint("burst-", i)
			resp, err := c.Admit(context.Background(), r)
			if err != nil || resp.GetAdmitted() == nil {
				t.Errorf("admit: %v %v", resp, err)
				return
			}
			ids[i] = resp.GetAdmitted().GetReservationId()
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("reservation %s handed out twice", id)
		}
		seen[id] = true
	}
	if n, asked, _ := svc.stats(); n > 4 {
		t.Fatalf("%d calls (asking %v) for 40 like requests; want the burst served from one ask", n, asked)
	}
}

// Close gives back what a grant has not handed out.
func TestCloseReleasesGrants(t *testing.T) {
	svc := &grantingService{handOutFor: time.Hour, released: map[string]bool{}}
	c := startBudget(t, svc)
	req := &budgetv1.AdmitRequest{RequestId: "r1", KeyId: "k", ModelGroup: "g", PromptTokens: 100, MaxTokens: 10}
	resp, err := c.Admit(context.Background(), req) // a new kind asks 2: one part granted, none handed out
	if err != nil {
		t.Fatal(err)
	}
	lease, _, _ := redisstore.ParseLeasePart(resp.GetAdmitted().GetReservationId())
	c.Close()
	want := redisstore.LeasePart(lease, 2, 1000)
	if _, _, rel := svc.stats(); !rel[want] {
		t.Fatalf("released %v after Close; want %s", rel, want)
	}
}
