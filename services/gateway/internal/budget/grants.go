package budget

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/ledger/redisstore"
)

// grants lets the gateway admit requests itself, from blocks of lease parts
// the budget service granted it (LeaseGrant, ADR 2 "Leases"): a request with
// the same key, model group, end user, tags and candidates as the one that
// got the grant, and no more prompt tokens or max_tokens, has an estimate no
// larger, so a part reserving the granting request's estimate covers it.
// Such a request costs no call at all; the budget service sees it when its
// usage is settled or its part released.
//
// What it cannot see, it does not decide: anything unlike the granting
// request goes to the budget service, and a grant is handed out only for
// the time the service allowed (its lease's max age), so a budget change or a
// block reaches the gateway's admissions within that time.
type grants struct {
	// release returns what a grant did not hand out.
	release func(ctx context.Context, id string, counterKeys []string) error
	log     *slog.Logger
	now     func() time.Time
	// maxParts bounds what one request asks for.
	maxParts uint32

	mu        sync.Mutex
	shapes    map[string]*grantShape
	lastSweep time.Time
}

// grantShape is one kind of request: everything of an AdmitRequest but its
// id and token counts.
type grantShape struct {
	cur *grantBlock
	// asked is how many parts the next request of this kind asks for:
	// twice what the last block handed out, so blocks follow demand.
	asked uint32
	// ended is when its last block ended; a kind without a block for
	// forgetAfter is forgotten.
	ended time.Time
	// asking is closed when the one request asking for this kind's next
	// block has its answer; like requests that find no block wait for it
	// rather than each asking for a block of their own (blocks would pile
	// up, and each would end releasing most of its parts). askPrompt and
	// askMax are that request's token counts.
	asking            chan struct{}
	askPrompt, askMax int64
	// refused is when an ask last came back without a block (a denial,
	// an error, a lease with no room): for noGrantWait after it, like
	// requests ask on their own rather than queue behind one ask each.
	refused time.Time
}

// noGrantWait: see grantShape.refused.
const noGrantWait = 100 * time.Millisecond

// forgetAfter is how long a kind of request without a block is remembered
// (with what it asks for): end users and tags make kinds many.
const forgetAfter = time.Minute

type grantBlock struct {
	adm    *budgetv1.Admission // the granting request's
	lease  string
	first  uint64
	prompt int64
	max    int64
	next   uint64 // next part number
	end    uint64 // one past the last
	until  time.Time
	closed bool
}

const (
	defaultGrantParts = 256
	// grantTimeout bounds releasing a grant's rest.
	grantTimeout = 5 * time.Second
)

func newGrants(release func(context.Context, string, []string) error, log *slog.Logger) *grants {
	return &grants{release: release, log: log, now: time.Now, maxParts: defaultGrantParts, shapes: map[string]*grantShape{}}
}

// shapeOf is req's kind: its deterministic encoding without the id and the
// token counts.
func shapeOf(req *budgetv1.AdmitRequest) string {
	id, prompt, max, parts := req.RequestId, req.PromptTokens, req.MaxTokens, req.GrantParts
	req.RequestId, req.PromptTokens, req.MaxTokens, req.GrantParts = "", 0, 0, 0
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req) // an AdmitRequest always marshals
	req.RequestId, req.PromptTokens, req.MaxTokens, req.GrantParts = id, prompt, max, parts
	return string(b)
}

// covers reports whether a request with token counts prompt and max has an
// estimate no larger than one with refPrompt and refMax. max_tokens 0 means
// the configured cap, which only equals itself.
func covers(refPrompt, refMax, prompt, max int64) bool {
	if prompt > refPrompt {
		return false
	}
	if max == 0 || refMax == 0 {
		return max == refMax
	}
	return max <= refMax
}

// take admits req from a block of its kind, if one covers it. Otherwise it
// returns a channel to wait on when a block that would cover req is being
// asked for, or it sets req.GrantParts to what to ask the service for (a
// request asking for more than one part must call asked when answered).
func (g *grants) take(req *budgetv1.AdmitRequest) (*budgetv1.AdmitResponse, string, <-chan struct{}) {
	key := shapeOf(req)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	sh := g.shapes[key]
	if sh == nil {
		sh = &grantShape{asked: 2} // one more than itself: the demand that follows decides the rest
		g.shapes[key] = sh
	}
	b := sh.cur
	usable := b != nil && !b.closed && b.next < b.end && now.Before(b.until)
	if usable && covers(b.prompt, b.max, req.GetPromptTokens(), req.GetMaxTokens()) {
		// The granting admission's parts are shared, not cloned: nothing
		// downstream writes to an Admission.
		g0 := b.adm
		adm := &budgetv1.Admission{
			ReservationId: redisstore.LeasePart(b.lease, b.next, g0.GetReservedNanos()),
			ExpiresAt:     g0.GetExpiresAt(), ReservedNanos: g0.GetReservedNanos(),
			AllowedDeploymentIds: g0.GetAllowedDeploymentIds(), Budgets: g0.GetBudgets(),
			CounterKeys: g0.GetCounterKeys(), CandidateCounters: g0.GetCandidateCounters(),
		}
		b.next++
		return &budgetv1.AdmitResponse{Decision: &budgetv1.AdmitResponse_Admitted{Admitted: adm}}, key, nil
	}
	req.GrantParts = 1
	switch {
	case usable:
		// A request the block does not cover asks for no block of its own:
		// replacing a block still in use would only release and re-reserve.
	case sh.asking != nil:
		if covers(sh.askPrompt, sh.askMax, req.GetPromptTokens(), req.GetMaxTokens()) {
			return nil, key, sh.asking
		}
	case now.Sub(sh.refused) < noGrantWait:
	default:
		req.GrantParts = sh.asked
		sh.asking = make(chan struct{})
		sh.askPrompt, sh.askMax = req.GetPromptTokens(), req.GetMaxTokens()
	}
	return nil, key, nil
}

// asked ends the ask take started for a request of kind key with these
// token counts: the block in resp (if any) becomes the kind's, replacing
// one that ended (its rest is released), and the requests waiting for it go
// on. resp is nil when the ask failed.
func (g *grants) asked(key string, prompt, max int64, resp *budgetv1.AdmitResponse) {
	adm := resp.GetAdmitted()
	gr := adm.GetGrant()
	now := g.now()
	g.mu.Lock()
	if now.Sub(g.lastSweep) >= forgetAfter {
		g.lastSweep = now
		for k, s := range g.shapes {
			if k != key && s.cur == nil && now.Sub(s.ended) >= forgetAfter {
				delete(g.shapes, k)
			}
		}
	}
	var old *grantBlock
	if sh := g.shapes[key]; sh != nil {
		if sh.asking != nil {
			close(sh.asking)
			sh.asking = nil
		}
		if gr.GetParts() > 0 {
			// adm is shared with the caller, which only reads it; local
			// admissions copy its fields but the grant.
			b := &grantBlock{adm: adm, lease: gr.GetLeaseId(), first: gr.GetFirstPart(), prompt: prompt, max: max,
				next: gr.GetFirstPart(), end: gr.GetFirstPart() + uint64(gr.GetParts()),
				until: now.Add(gr.GetHandOutFor().AsDuration())}
			old, sh.cur = sh.cur, b
			time.AfterFunc(gr.GetHandOutFor().AsDuration(), func() { g.close(key, b) })
		} else {
			sh.refused = now
		}
	}
	g.mu.Unlock()
	if old != nil {
		g.close(key, old)
	}
}

// closeAll ends every block, releasing what they did not hand out: on
// shutdown, so that a stopped gateway does not hold budget until its
// blocks' leases expire.
func (g *grants) closeAll() {
	g.mu.Lock()
	open := map[*grantBlock]string{}
	for k, sh := range g.shapes {
		if sh.cur != nil {
			open[sh.cur] = k
		}
	}
	g.mu.Unlock()
	for b, k := range open {
		g.close(k, b)
	}
}

// close ends a block and releases the parts it did not hand out, in one
// release of a part id carrying their sum; the kind's next request asks for
// twice what this block handed out.
func (g *grants) close(key string, b *grantBlock) {
	g.mu.Lock()
	if b.closed {
		g.mu.Unlock()
		return
	}
	b.closed = true
	used := b.next - b.first
	if sh := g.shapes[key]; sh != nil {
		sh.asked = uint32(min(max(2*(used+1), 1), uint64(g.maxParts)))
		if sh.cur == b {
			sh.cur, sh.ended = nil, g.now()
			if used == 0 {
				delete(g.shapes, key) // idle: forget the kind
			}
		}
	}
	unused := b.end - b.next
	first := b.next
	g.mu.Unlock()
	if unused == 0 {
		return
	}
	id := redisstore.LeasePart(b.lease, first, int64(unused)*b.adm.GetReservedNanos())
	ctx, cancel := context.WithTimeout(context.Background(), grantTimeout)
	defer cancel()
	if err := g.release(ctx, id, b.adm.GetCounterKeys()); err != nil {
		g.log.Warn("releasing the unused rest of a grant failed; it expires with its lease", "reservation_id", id, "err", err)
	}
}
