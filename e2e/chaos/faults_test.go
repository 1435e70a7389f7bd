package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spendledger/spendledger/e2e/harness"
	js "github.com/spendledger/spendledger/ledger/jetstream"
)

// duplicatesPerFault is how many stored messages a duplicate fault
// republishes, each twice (same message id, new message id).
const duplicatesPerFault = 25

// injector applies the faults of the catalog to a stack.
type injector struct {
	t    *testing.T
	st   *harness.Stack
	seed uint64
	js   jetstream.JetStream
}

func newInjector(t *testing.T, st *harness.Stack, seed uint64) *injector {
	t.Helper()
	return &injector{t: t, st: st, seed: seed, js: connectJetStream(t, st)}
}

// connectJetStream connects to the stack's NATS for the rest of the test,
// reconnecting forever: NATS restarts are among the faults.
func connectJetStream(t *testing.T, st *harness.Stack) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(st.NATSURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("chaos: connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	stream, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

// restartNote says what a store's restart costs it.
var restartNote = map[string]string{
	"restart redis":    ", back empty (no persistence)",
	"restart postgres": " (fast shutdown)",
}

// inject applies one fault and says what it did. A store or service is kept
// down for a drawn outage of up to 1.5s, so requests meet it down, not just
// restarted.
func (inj *injector) inject(fault string, rng *rand.Rand, n int) string {
	inj.t.Helper()
	outage := time.Duration(rng.Int64N(int64(1500 * time.Millisecond))).Round(time.Millisecond)
	st := inj.st
	if name, ok := strings.CutPrefix(fault, "kill "); ok {
		if name, store, ok := strings.Cut(name, " while "); ok {
			return inj.killWhileDown(st.Service(name), strings.TrimSuffix(store, " down"), outage)
		}
		svc := st.Service(name)
		pid := svc.PID()
		svc.Kill()
		time.Sleep(outage)
		svc.Start()
		return fmt.Sprintf("SIGKILL pid %d, down %v, restarted as pid %d", pid, outage, svc.PID())
	}
	switch fault {
	case "flush redis":
		st.FlushRedis()
		return "FLUSHALL: every counter and reservation gone"
	case "flush redis while pricing down":
		// Usage piles up in USAGE meanwhile: admitted, answered, not yet in
		// the ledger that counters are reseeded from.
		// Long enough for keys to be answered to their limits on either side.
		pricing, lag := st.Service("pricing"), 3*time.Second+outage
		pricing.Stop()
		time.Sleep(lag)
		st.FlushRedis()
		time.Sleep(lag)
		pricing.Start()
		return fmt.Sprintf("pricing stopped, FLUSHALL %v later, pricing started %v after that", lag, lag)
	case "restart redis", "restart nats", "restart postgres":
		stop, start := inj.storeControls(strings.TrimPrefix(fault, "restart "))
		stop()
		time.Sleep(outage)
		start()
		return fmt.Sprintf("down %v", outage) + restartNote[fault]
	case "duplicate usage":
		return inj.duplicate(js.UsageStream, rng, n)
	case "duplicate costs":
		return inj.duplicate(js.CostsStream, rng, n)
	}
	inj.t.Fatalf("chaos: unknown fault %q", fault)
	return ""
}

// killWhileDown stops a store, lets the load meet it down, SIGKILLs the
// service, then brings the store back and the service after it.
func (inj *injector) killWhileDown(svc *harness.Service, store string, outage time.Duration) string {
	inj.t.Helper()
	stop, start := inj.storeControls(store)
	stop()
	time.Sleep(outage)
	pid := svc.PID()
	svc.Kill()
	time.Sleep(200 * time.Millisecond)
	start()
	svc.Start()
	return fmt.Sprintf("%s down %v, then SIGKILL pid %d; %s back, restarted as pid %d", store, outage, pid, store, svc.PID())
}

func (inj *injector) storeControls(store string) (stop, start func()) {
	st := inj.st
	switch store {
	case "nats":
		return st.StopNATS, st.StartNATS
	case "redis":
		return st.StopRedis, st.StartRedis
	case "postgres":
		return st.StopPostgres, st.StartPostgres
	}
	inj.t.Fatalf("chaos: unknown store %q", store)
	return nil, nil
}

// duplicate republishes messages already in a stream, as a producer that
// retried would: each with its own Nats-Msg-Id, which JetStream's duplicate
// window must drop, and again under a new message id, which only the
// consumers' idempotency by event id can catch (as after the window).
func (inj *injector) duplicate(streamName string, rng *rand.Rand, n int) string {
	inj.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := inj.js.Stream(ctx, streamName)
	if err != nil {
		inj.t.Fatalf("chaos: stream %s: %v", streamName, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		inj.t.Fatalf("chaos: stream %s info: %v", streamName, err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return streamName + " empty: nothing to duplicate"
	}
	var sameDropped, sameStored, newStored int
	for i := range duplicatesPerFault {
		seq := first + rng.Uint64N(last-first+1)
		orig, err := stream.GetMsg(ctx, seq)
		if err != nil {
			inj.t.Fatalf("chaos: get %s message %d: %v", streamName, seq, err)
		}
		msg := &nats.Msg{Subject: orig.Subject, Data: orig.Data, Header: nats.Header{}}
		for k, v := range orig.Header {
			msg.Header[k] = v
		}
		ack, err := inj.js.PublishMsg(ctx, msg)
		if err != nil {
			inj.t.Fatalf("chaos: republish %s message %d: %v", streamName, seq, err)
		}
		if ack.Duplicate {
			sameDropped++
		} else {
			sameStored++
		}
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("chaos-dup-%d-%d-%d", inj.seed, n, i))
		if ack, err = inj.js.PublishMsg(ctx, msg); err != nil {
			inj.t.Fatalf("chaos: republish %s message %d under a new id: %v", streamName, seq, err)
		}
		if !ack.Duplicate {
			newStored++
		}
	}
	return fmt.Sprintf("%d %s messages republished with their own msg id (%d dropped by the duplicate window, %d stored: older than it) and with a new msg id (%d stored)",
		duplicatesPerFault, streamName, sameDropped, sameStored, newStored)
}
