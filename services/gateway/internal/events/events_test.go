package events

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/spool"
)

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeJS is a JetStream that acks (or fails) publishes as told.
type fakeJS struct {
	mu        sync.Mutex
	connected bool
	fail      bool // ack with an error
	hold      bool // never ack (until release)
	published []*nats.Msg
	held      []*future
}

type future struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *future) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *future) Err() <-chan error            { return f.err }
func (f *future) Msg() *nats.Msg               { return f.msg }

func (j *fakeJS) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f := &future{msg: m, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	switch {
	case !j.connected:
		return nil, nats.ErrConnectionClosed
	case j.hold:
		j.held = append(j.held, f)
	case j.fail:
		f.err <- errors.New("no responders")
	default:
		j.published = append(j.published, m)
		f.ok <- &jetstream.PubAck{}
	}
	return f, nil
}

func (j *fakeJS) isConnected() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.connected
}

func (j *fakeJS) set(f func(*fakeJS)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(j)
}

func (j *fakeJS) ids() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var ids []string
	for _, m := range j.published {
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	return ids
}

func event(t *testing.T, key string) *eventsv1.UsageRecorded {
	t.Helper()
	ev, err := NewUsageRecorded(Call{
		RequestID: "req", Identity: &eventsv1.Identity{KeyId: key}, Route: &eventsv1.Route{ModelGroup: "g"},
		Usage: pricing.Usage{Input: 200, CacheRead: 800, Output: 5}, OccurredAt: time.Unix(100, 0), CompletedAt: time.Unix(101, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

type rig struct {
	js  *fakeJS
	sp  *spool.Spool
	pub *Publisher
	m   *Metrics
}

func newRig(t *testing.T, connected bool, dir string) *rig {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	sp, err := spool.Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	j := &fakeJS{connected: connected}
	m := NewMetrics(prometheus.NewRegistry(), sp)
	p := NewPublisher(j, j.isConnected, sp, m, quiet, Options{DrainInterval: 10 * time.Millisecond, AckWait: 200 * time.Millisecond})
	return &rig{js: j, sp: sp, pub: p, m: m}
}

func (r *rig) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewUsageRecordedMintsUUIDv7(t *testing.T) {
	ev := event(t, "k")
	id, err := uuid.Parse(ev.EventId)
	if err != nil || id.Version() != 7 {
		t.Fatalf("event id %q: version %v, err %v", ev.EventId, id.Version(), err)
	}
	if tk := ev.Tokens; tk.Input != 200 || tk.CacheRead != 800 || tk.Output != 5 {
		t.Fatalf("tokens %v", tk)
	}
	if _, err := NewUsageRecorded(Call{Usage: pricing.Usage{Input: -1}}); err == nil {
		t.Fatal("negative counts must be refused")
	}
}

func TestPublishDirectWithMsgIDOnKeySubject(t *testing.T) {
	r := newRig(t, true, "")
	ev := event(t, "key-1")
	r.pub.Publish(ev)
	r.close(t)
	if len(r.js.published) != 1 {
		t.Fatalf("published %d", len(r.js.published))
	}
	m := r.js.published[0]
	if m.Subject != js.UsageSubject("key-1") || m.Header.Get(jetstream.MsgIDHeader) != ev.EventId {
		t.Fatalf("subject %q msg id %q", m.Subject, m.Header.Get(jetstream.MsgIDHeader))
	}
	var back eventsv1.UsageRecorded
	if err := proto.Unmarshal(m.Data, &back); err != nil || back.EventId != ev.EventId {
		t.Fatalf("payload: %v", err)
	}
	if r.sp.Len() != 0 || value(r.m.Published.WithLabelValues("direct")) != 1 {
		t.Fatal("metrics/spool wrong")
	}
}

func TestNATSDownSpoolsThenDrainsInOrder(t *testing.T) {
	r := newRig(t, false, "")
	var want []string
	for i := 0; i < 5; i++ {
		ev := event(t, "k")
		want = append(want, ev.EventId)
		r.pub.Publish(ev)
	}
	if r.sp.Len() != 5 || len(r.js.ids()) != 0 {
		t.Fatalf("spool %d published %d; NATS is down", r.sp.Len(), len(r.js.ids()))
	}
	if got := value(r.m.Spooled.WithLabelValues("nats_disconnected")); got != 5 {
		t.Fatalf("spooled metric %v", got)
	}
	r.js.set(func(j *fakeJS) { j.connected = true })
	eventually(t, "the spool to drain", func() bool { return r.sp.Len() == 0 })
	got := r.js.ids()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("replayed %v; want %v", got, want)
		}
	}
	r.close(t)
}

func TestFailedAckIsSpooled(t *testing.T) {
	r := newRig(t, true, "")
	r.js.set(func(j *fakeJS) { j.fail = true })
	r.pub.Publish(event(t, "k"))
	eventually(t, "the failed ack to be spooled", func() bool { return value(r.m.Spooled.WithLabelValues("ack_failed")) == 1 })
	r.js.set(func(j *fakeJS) { j.fail = false })
	eventually(t, "the spool to drain", func() bool { return r.sp.Len() == 0 && len(r.js.ids()) == 1 })
	r.close(t)
}

func TestBacklogKeepsOrder(t *testing.T) {
	r := newRig(t, true, "")
	r.js.set(func(j *fakeJS) { j.fail = true })
	first := event(t, "k")
	r.pub.Publish(first)
	eventually(t, "spooled", func() bool { return r.sp.Len() == 1 })
	r.js.set(func(j *fakeJS) { j.connected = false; j.fail = false })
	second := event(t, "k")
	r.pub.Publish(second)
	r.js.set(func(j *fakeJS) { j.connected = true })
	eventually(t, "drained", func() bool { return len(r.js.ids()) == 2 })
	if ids := r.js.ids(); ids[0] != first.EventId || ids[1] != second.EventId {
		t.Fatalf("order %v", ids)
	}
	r.close(t)
}

func TestCloseSpoolsUnackedAndRestartReplays(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, true, dir)
	r.js.set(func(j *fakeJS) { j.hold = true })
	ev := event(t, "k")
	r.pub.Publish(ev)
	r.close(t) // the ack never comes: after AckWait it is spooled, then the spool is closed
	if r.sp.Len() != 1 {
		t.Fatalf("spool %d; the unacknowledged event must be kept", r.sp.Len())
	}
	// A new gateway process on the same spool directory.
	r2 := newRig(t, true, dir)
	eventually(t, "replay after restart", func() bool { return len(r2.js.ids()) == 1 })
	if r2.js.ids()[0] != ev.EventId {
		t.Fatal("replayed a different event")
	}
	r2.close(t)
}
