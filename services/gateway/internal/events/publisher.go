package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/services/gateway/internal/spool"
)

// JetStream is the part of jetstream.JetStream the publisher uses.
type JetStream interface {
	PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Publisher publishes events without making a request wait for NATS.
//
// The fast path is PublishMsgAsync with the event id as Nats-Msg-Id and a
// bounded number of publishes awaiting their ack; one goroutine collects the
// acks. An event goes to the spool instead (fsynced before Publish returns)
// when NATS is disconnected, when the in-flight bound is reached, when the
// publish or its ack fails, and while the spool still holds older events (so
// events reach the stream in the order they happened). A drainer goroutine
// publishes the spool whenever NATS is connected.
//
// The one window where an event can be lost is a gateway killed with -9 while
// its publish is in flight (sent, ack not yet received; bounded by MaxInFlight
// and milliseconds long). Closing the publisher on shutdown waits for every
// in-flight ack and spools what was not acknowledged.
type Publisher struct {
	js        JetStream
	connected func() bool
	spool     *spool.Spool
	log       *slog.Logger
	m         *Metrics
	ackWait   time.Duration

	slots    chan struct{}
	inflight chan inflight
	wake     chan struct{}

	mu     sync.RWMutex
	closed bool

	collected chan struct{}
	cancel    context.CancelFunc
	drained   chan struct{}
}

type inflight struct {
	fut jetstream.PubAckFuture
	rec spool.Record
}

// Metrics are the publisher's counters.
type Metrics struct {
	Published *prometheus.CounterVec // by path: direct, spool
	Spooled   *prometheus.CounterVec // by reason
	Lost      prometheus.Counter
}

// NewMetrics registers the publisher's metrics, and the spool depth gauge.
func NewMetrics(reg prometheus.Registerer, sp *spool.Spool) *Metrics {
	m := &Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_events_published_total", Help: "UsageRecorded events acknowledged by JetStream, by path (direct, or from the spool)."}, []string{"path"}),
		Spooled:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_events_spooled_total", Help: "UsageRecorded events written to the local spool, by reason."}, []string{"reason"}),
		Lost:      prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_events_lost_total", Help: "UsageRecorded events that could be neither published nor spooled (disk failure). Each is also logged at error level with the event id."}),
	}
	reg.MustRegister(m.Published, m.Spooled, m.Lost,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_spool_depth", Help: "UsageRecorded events waiting in the local spool."}, func() float64 { return float64(sp.Len()) }))
	return m
}

// Options tune a Publisher.
type Options struct {
	// MaxInFlight bounds async publishes awaiting an ack (default 2048, under
	// nats.go's default async max pending of 4000, so publishing never stalls).
	MaxInFlight int
	// AckWait bounds the wait for one ack before the event is spooled (default
	// 15s; the JetStream context's own async timeout normally fires first).
	AckWait time.Duration
	// DrainInterval is how often the drainer looks at the spool (default 500ms).
	DrainInterval time.Duration
}

// NewPublisher starts a publisher; Close stops it.
func NewPublisher(stream JetStream, connected func() bool, sp *spool.Spool, m *Metrics, log *slog.Logger, o Options) *Publisher {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 2048
	}
	if o.AckWait <= 0 {
		o.AckWait = 15 * time.Second
	}
	if o.DrainInterval <= 0 {
		o.DrainInterval = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		js: stream, connected: connected, spool: sp, log: log, m: m, ackWait: o.AckWait,
		slots: make(chan struct{}, o.MaxInFlight), inflight: make(chan inflight, o.MaxInFlight),
		wake: make(chan struct{}, 1), collected: make(chan struct{}), drained: make(chan struct{}), cancel: cancel,
	}
	go p.collect()
	go p.drainLoop(ctx, o.DrainInterval)
	return p
}

// Publish publishes ev, or spools it. It never fails the request: an event
// that can be neither published nor spooled is logged with its id and counted.
func (p *Publisher) Publish(ev *eventsv1.UsageRecorded) {
	data, err := proto.Marshal(ev)
	if err != nil {
		p.m.Lost.Inc()
		p.log.Error("usage event lost: encode", "event_id", ev.GetEventId(), "err", err)
		return
	}
	p.PublishRecord(spool.Record{Subject: js.UsageSubject(ev.GetIdentity().GetKeyId()), MsgID: ev.GetEventId(), Data: data})
}

// PublishRecord publishes an encoded event.
func (p *Publisher) PublishRecord(rec spool.Record) {
	switch {
	case !p.connected():
		p.toSpool(rec, "nats_disconnected")
		return
	case p.spool.Len() > 0:
		p.toSpool(rec, "spool_backlog")
		return
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		p.toSpool(rec, "shutting_down")
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		p.mu.RUnlock()
		p.toSpool(rec, "in_flight_full")
		return
	}
	fut, err := p.js.PublishMsgAsync(message(rec))
	if err != nil {
		<-p.slots
		p.mu.RUnlock()
		p.toSpool(rec, "publish_error")
		return
	}
	p.inflight <- inflight{fut: fut, rec: rec} // never blocks: capacity == slots
	p.mu.RUnlock()
}

func message(rec spool.Record) *nats.Msg {
	return &nats.Msg{Subject: rec.Subject, Data: rec.Data, Header: nats.Header{jetstream.MsgIDHeader: []string{rec.MsgID}}}
}

func (p *Publisher) toSpool(rec spool.Record, reason string) {
	if err := p.spool.Append(rec); err != nil {
		p.m.Lost.Inc()
		p.log.Error("usage event lost: NATS unavailable and the spool failed", "event_id", rec.MsgID, "subject", rec.Subject, "reason", reason, "err", err)
		return
	}
	p.m.Spooled.WithLabelValues(reason).Inc()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// wait waits for fut's ack; nil when acknowledged.
func (p *Publisher) wait(fut jetstream.PubAckFuture, t *time.Timer) error {
	t.Reset(p.ackWait)
	defer t.Stop()
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		if err == nil {
			err = errors.New("publish failed")
		}
		return err
	case <-t.C:
		return errors.New("no ack within the ack wait")
	}
}

func (p *Publisher) collect() {
	defer close(p.collected)
	t := time.NewTimer(time.Hour)
	for it := range p.inflight {
		if err := p.wait(it.fut, t); err != nil {
			p.log.Warn("usage event not acknowledged; spooled", "event_id", it.rec.MsgID, "err", err)
			p.toSpool(it.rec, "ack_failed")
		} else {
			p.m.Published.WithLabelValues("direct").Inc()
		}
		<-p.slots
	}
}

func (p *Publisher) drainLoop(ctx context.Context, every time.Duration) {
	defer close(p.drained)
	tick := time.NewTicker(every)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-tick.C:
		}
		if p.spool.Len() == 0 || !p.connected() {
			continue
		}
		err := p.spool.Drain(func(recs []spool.Record) error { return p.publishBatch(ctx, recs) })
		switch {
		case err != nil && !failing:
			failing = true
			p.log.Warn("spool drain paused; will retry", "pending", p.spool.Len(), "err", err)
		case err == nil && failing:
			failing = false
			p.log.Info("spool drained", "pending", p.spool.Len())
		}
	}
}

// publishBatch publishes recs in order and returns once all are acknowledged.
func (p *Publisher) publishBatch(ctx context.Context, recs []spool.Record) error {
	futs := make([]jetstream.PubAckFuture, 0, len(recs))
	for _, r := range recs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f, err := p.js.PublishMsgAsync(message(r))
		if err != nil {
			return fmt.Errorf("publish spooled event %s: %w", r.MsgID, err)
		}
		futs = append(futs, f)
	}
	t := time.NewTimer(time.Hour)
	var first error
	for i, f := range futs {
		if err := p.wait(f, t); err != nil && first == nil {
			first = fmt.Errorf("spooled event %s: %w", recs[i].MsgID, err)
		}
	}
	if first != nil {
		return first
	}
	p.m.Published.WithLabelValues("spool").Add(float64(len(recs)))
	return nil
}

// Close stops accepting fast-path publishes, waits (up to ctx) for every
// in-flight ack, spooling what was not acknowledged, stops the drainer and
// closes the spool. Events still in the spool are published after the next start.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.inflight)
	p.mu.Unlock()
	var err error
	select {
	case <-p.collected:
	case <-ctx.Done():
		err = fmt.Errorf("events: close: %d publishes still awaiting ack: %w", len(p.inflight), ctx.Err())
	}
	p.cancel()
	<-p.drained
	return errors.Join(err, p.spool.Close())
}
