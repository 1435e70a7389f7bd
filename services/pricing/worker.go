package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	js "github.com/spendledger/spendledger/ledger/jetstream"
	"github.com/spendledger/spendledger/services/internal/pricer"
)

// worker prices batches of UsageRecorded and publishes their CostComputed.
type worker struct {
	js      jetstream.JetStream
	pricer  *pricer.Pricer
	log     *slog.Logger
	metrics *metrics
}

type metrics struct {
	priced      *prometheus.CounterVec
	deadLetters prometheus.Counter
	retries     prometheus.Counter
	batch       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		priced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pricing_events_priced_total", Help: "UsageRecorded events priced and published, by pricing status.",
		}, []string{"status"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pricing_dead_letters_total", Help: "Events rejected to the dead-letter stream.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pricing_redeliveries_requested_total", Help: "Events nacked for redelivery after a publish failure.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pricing_batch_seconds", Help: "Time to price and publish one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	reg.MustRegister(m.priced, m.deadLetters, m.retries, m.batch)
	return m
}

// pending is one input message whose output publish is in flight.
type pending struct {
	msg    jetstream.Msg
	status string
	ack    jetstream.PubAckFuture
}

// handle prices a batch. Outputs are published asynchronously, all at once;
// each input is acked only after its output's publish is acknowledged by the
// stream, and nacked (for redelivery) when it is not. The output's message id
// derives from the event id, so a redelivered input re-publishes a duplicate
// that JetStream drops.
func (w *worker) handle(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	defer func() { w.metrics.batch.Observe(time.Since(start).Seconds()) }()

	inflight := make([]pending, 0, len(msgs))
	for _, m := range msgs {
		out, err := w.price(m)
		if err != nil {
			w.deadLetter(ctx, m, err.Error())
			continue
		}
		data, err := proto.Marshal(out)
		if err != nil {
			w.deadLetter(ctx, m, "encode CostComputed: "+err.Error())
			continue
		}
		pub := &nats.Msg{
			Subject: js.CostSubject(out.GetUsage().GetIdentity().GetKeyId()),
			Data:    data,
			Header:  nats.Header{},
		}
		fut, err := w.js.PublishMsgAsync(pub, jetstream.WithMsgID(js.CostMsgID(out.GetEventId())))
		if err != nil {
			w.log.Warn("publish failed; will be redelivered", "event_id", out.GetEventId(), "err", err)
			w.nak(m)
			continue
		}
		inflight = append(inflight, pending{msg: m, status: out.GetStatus().String(), ack: fut})
	}
	for _, p := range inflight {
		select {
		case <-p.ack.Ok():
			if err := p.msg.Ack(); err != nil {
				// The output is durable; a lost ack only causes a deduplicated redelivery.
				w.log.Warn("ack failed", "err", err)
			}
			w.metrics.priced.WithLabelValues(p.status).Inc()
		case err := <-p.ack.Err():
			w.log.Warn("publish not acknowledged; will be redelivered", "err", err)
			w.nak(p.msg)
		}
	}
}

func (w *worker) price(m jetstream.Msg) (*eventsv1.CostComputed, error) {
	var u eventsv1.UsageRecorded
	if err := proto.Unmarshal(m.Data(), &u); err != nil {
		return nil, &pricer.InvalidEventError{Reason: "undecodable UsageRecorded: " + err.Error()}
	}
	return w.pricer.Price(&u, time.Now())
}

func (w *worker) deadLetter(ctx context.Context, m jetstream.Msg, reason string) {
	if err := js.DeadLetter(ctx, w.js, m, consumerName, reason); err != nil {
		w.log.Error("dead-letter failed; will be redelivered", "reason", reason, "err", err)
		w.nak(m)
		return
	}
	w.metrics.deadLetters.Inc()
	w.log.Warn("event dead-lettered", "reason", reason, "subject", m.Subject())
}

func (w *worker) nak(m jetstream.Msg) {
	w.metrics.retries.Inc()
	// A short delay keeps a failing publish from spinning.
	if err := m.NakWithDelay(time.Second); err != nil {
		w.log.Warn("nak failed; redelivery after ack wait", "err", err)
	}
}
