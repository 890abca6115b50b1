package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/room"
)

// event is a player event bound for a room's owner.
type event struct {
	room  string
	ev    game.Event
	acked func(ok bool) // optional: called once the PubAck arrived (true) or retries gave up (false)
	m     *nats.Msg     // the durable publish, built once by send
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

func (p *publisher) msg(e event) (*nats.Msg, error) {
	data, err := json.Marshal(e.ev)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(room.InputSubject(e.room))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, e.room+":"+e.ev.MsgID())
	return m, nil
}

// send publishes e on the fast path and queues it for the durable path. It never blocks: when the durable
// queue is full it reports false (the event went out on the fast path, but will not be retried until acknowledged;
// the caller tells the client, which resends its latest input).
func (p *publisher) send(e event) bool {
	m, err := p.msg(e)
	if err != nil {
		return false
	}
	e.m = m
	if err := p.nc.Publish(room.LiveSubject(e.room), m.Data); err != nil {
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

// window bounds the durable publishes a worker has in flight.
const window = 512

// pending is a durable publish in flight.
type pending struct {
	e     event
	m     *nats.Msg
	f     jetstream.PubAckFuture // nil: not sent yet (retry due)
	start time.Time
	retry time.Time // when to send again after a failure
}

// work keeps up to window publishes of its queue in flight (asynchronously: a stream leader's round trip does
// not limit the rate) and retries failures with the same message id until acknowledged, ctx ends or giveUp.
func (p *publisher) work(ctx context.Context, q chan event) {
	var inflight []*pending
	retryTimer := time.NewTimer(time.Hour)
	defer retryTimer.Stop()
	recheck := time.NewTicker(100 * time.Millisecond) // drain deadline and due retries
	defer recheck.Stop()
	send := func(pd *pending) {
		f, err := p.js.PublishMsgAsync(pd.m)
		if err != nil {
			p.log.Warn("DIAG send err", "err", err)
			pd.f, pd.retry = nil, time.Now().Add(100*time.Millisecond)
			p.metrics.publishRetries.Inc()
			return
		}
		pd.f = f
	}
	fail := func(pd *pending, err error) bool {
		p.log.Warn("DIAG fail", "err", err, "age", time.Since(pd.start))
		p.metrics.publishRetries.Inc()
		if time.Since(pd.start) > p.giveUp || errors.Is(err, jetstream.ErrStreamNotFound) {
			p.log.Warn("giving up on an event", "room", pd.e.room, "player", pd.e.ev.Player, "kind", pd.e.ev.Kind, "err", err)
			if pd.e.acked != nil {
				pd.e.acked(false)
			}
			return false
		}
		pd.f, pd.retry = nil, time.Now().Add(100*time.Millisecond)
		return true
	}
	draining := false
	var drainUntil time.Time
	for {
		if draining && (len(inflight) == 0 && len(q) == 0 || time.Now().After(drainUntil)) {
			for _, pd := range inflight {
				p.log.Warn("event not acknowledged before shutdown", "room", pd.e.room, "player", pd.e.ev.Player, "kind", pd.e.ev.Kind)
			}
			return
		}
		// Resend what is due; wait on the oldest publish in flight.
		var okC <-chan *jetstream.PubAck
		var errC <-chan error
		var head *pending
		nextRetry := time.Time{}
		for _, pd := range inflight {
			if pd.f == nil {
				if !time.Now().Before(pd.retry) {
					send(pd)
				} else if nextRetry.IsZero() || pd.retry.Before(nextRetry) {
					nextRetry = pd.retry
				}
			}
			if pd.f != nil && head == nil {
				head = pd
			}
		}
		if head != nil {
			okC, errC = head.f.Ok(), head.f.Err()
		}
		if !nextRetry.IsZero() {
			retryTimer.Reset(time.Until(nextRetry))
		} else {
			retryTimer.Reset(time.Hour)
		}
		var in <-chan event
		if len(inflight) < window {
			in = q
		}
		done := ctx.Done()
		if draining {
			done = nil
		}
		select {
		case <-done:
			// Leave events of sockets closed by the drain come last: give them a moment.
			draining, drainUntil = true, time.Now().Add(time.Second)
		case e := <-in:
			pd := &pending{e: e, m: e.m, start: time.Now()}
			send(pd)
			inflight = append(inflight, pd)
		case <-okC:
			p.metrics.eventsAcked.Inc()
			if head.e.acked != nil {
				head.e.acked(true)
			}
			inflight = remove(inflight, head)
		case err := <-errC:
			if !fail(head, err) {
				inflight = remove(inflight, head)
			}
		case <-retryTimer.C:
		case <-recheck.C:
		}
	}
}

func remove(s []*pending, pd *pending) []*pending {
	for i, x := range s {
		if x == pd {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}
