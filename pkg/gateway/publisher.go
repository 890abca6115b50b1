package gateway

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// event is a player event bound for a room's owner.
type event struct {
	room string
	ev   sim.Event
	m    *nats.Msg // the durable publish, built once by send
}

// publisher sends events on the fast path (core NATS, the room's live subject) at once, and durably (JetStream,
// the room's input subject, retried until acknowledged) through workers sharded by player so that each player's
// events stay in order.
type publisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	queues  []chan event
	giveUp  time.Duration
	metrics *metrics
}

func newPublisher(nc *nats.Conn, js jetstream.JetStream, workers, depth int, log *slog.Logger, m *metrics) *publisher {
	p := &publisher{nc: nc, js: js, log: log, giveUp: time.Minute, metrics: m}
	for range workers {
		p.queues = append(p.queues, make(chan event, depth))
	}
	return p
}

// send publishes e on the fast path and queues it for the durable path. It never blocks: when the durable
// queue is full it reports false (the event went out on the fast path, but will not be retried until acknowledged;
// the caller tells the client, which resends its latest input).
func (p *publisher) send(e event) bool {
	m, err := wire.EventMsg(e.room, e.ev)
	if err != nil {
		return false
	}
	e.m = m
	if err := p.nc.Publish(wire.LiveSubject(e.room), m.Data); err != nil {
		p.metrics.publishErrors.Inc()
	}
	h := fnv.New32a()
	h.Write([]byte(e.ev.Player))
	q := p.queues[int(h.Sum32())%len(p.queues)]
	select {
	case q <- e:
		return true
	default:
		p.metrics.publishDropped.Inc()
		return false
	}
}

// run works every queue until ctx ends, then flushes what is queued for a short while.
func (p *publisher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, q := range p.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, q)
		}()
	}
	wg.Wait()
}

// window bounds the durable publishes a worker has in flight or waiting to be sent again.
const window = 512

// retryAfter is how long a durable publish that failed waits before it is sent again.
const retryAfter = 100 * time.Millisecond

// pending is a durable publish in flight or waiting to be sent again.
type pending struct {
	e     event
	f     jetstream.PubAckFuture // set while in flight
	start time.Time
	retry time.Time // when to send again after a failure
}

// work keeps up to window publishes of its queue in flight (asynchronously: a stream leader's round trip does
// not limit the rate) and retries failures with the same message id until acknowledged, ctx ends or giveUp.
// Publishes in flight wait in send order (sent) and the oldest one's outcome is awaited; failed ones wait for
// their turn to be sent again in failure order (due), which is also the order of their retry times. So each
// event costs the same whatever the number in flight, also while the stream has no leader and the window
// fills up.
func (p *publisher) work(ctx context.Context, q chan event) {
	var sent, due []*pending
	retryTimer := time.NewTimer(time.Hour)
	defer retryTimer.Stop()
	retryArmed := time.Time{}            // the retry time retryTimer is set for (zero: none)
	drainEnd := time.NewTimer(time.Hour) // set when ctx ends: the last moment to wait for acks
	drainEnd.Stop()
	defer drainEnd.Stop()
	failed := func(pd *pending, err error) {
		p.metrics.publishRetries.Inc()
		if time.Since(pd.start) > p.giveUp || errors.Is(err, jetstream.ErrStreamNotFound) {
			p.log.Warn("giving up on an event", "room", pd.e.room, "player", pd.e.ev.Player, "kind", pd.e.ev.Kind, "err", err)
			return
		}
		pd.f, pd.retry = nil, time.Now().Add(retryAfter)
		due = append(due, pd)
	}
	send := func(pd *pending) {
		f, err := p.js.PublishMsgAsync(pd.e.m)
		if err != nil {
			failed(pd, err)
			return
		}
		pd.f = f
		sent = append(sent, pd)
	}
	draining, drained := false, false
	for {
		if draining && (len(sent)+len(due) == 0 && len(q) == 0 || drained) {
			for _, pd := range append(sent, due...) {
				p.log.Warn("event not acknowledged before shutdown", "room", pd.e.room, "player", pd.e.ev.Player, "kind", pd.e.ev.Kind)
			}
			return
		}
		// Send again what is due (a send that fails at once goes to the back of due, with a later time).
		for n := len(due); n > 0 && !time.Now().Before(due[0].retry); n-- {
			pd := due[0]
			due[0] = nil
			due = due[1:]
			send(pd)
		}
		var okC <-chan *jetstream.PubAck
		var errC <-chan error
		if len(sent) > 0 {
			okC, errC = sent[0].f.Ok(), sent[0].f.Err()
		}
		if len(due) > 0 && !due[0].retry.Equal(retryArmed) {
			retryArmed = due[0].retry
			retryTimer.Reset(time.Until(retryArmed))
		}
		var in <-chan event
		if len(sent)+len(due) < window {
			in = q
		}
		done := ctx.Done()
		if draining {
			done = nil
		}
		select {
		case <-done:
			// Leave events of sockets closed by the drain come last: give them a moment.
			draining = true
			drainEnd.Reset(time.Second)
		case e := <-in:
			send(&pending{e: e, start: time.Now()})
		case <-okC:
			p.metrics.eventsAcked.Inc()
			sent[0] = nil
			sent = sent[1:]
		case err := <-errC:
			pd := sent[0]
			sent[0] = nil
			sent = sent[1:]
			failed(pd, err)
		case <-retryTimer.C:
			retryArmed = time.Time{}
		case <-drainEnd.C:
			drained = true
		}
	}
}
