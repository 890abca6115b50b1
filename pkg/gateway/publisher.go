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
}

// publisher sends events on the fast path (core NATS) at once, and durably (JetStream, retried until
// acknowledged) through workers sharded by player so that each player's events stay in order.
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
// queue is full it reports false (the caller answers with an error; the client resends).
func (p *publisher) send(e event) bool {
	m, err := p.msg(e)
	if err != nil {
		return false
	}
	if err := p.nc.PublishMsg(m); err != nil {
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

func (p *publisher) work(ctx context.Context, q chan event) {
	for {
		select {
		case <-ctx.Done():
			// Leave events of sockets closed by the drain come last: give them a moment.
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			for {
				select {
				case e := <-q:
					p.durable(flush, e)
					continue
				default:
				}
				break
			}
			cancel()
			return
		case e := <-q:
			p.durable(ctx, e)
		}
	}
}

// durable publishes e to JetStream until it is acknowledged, ctx ends or giveUp passes.
func (p *publisher) durable(ctx context.Context, e event) {
	m, err := p.msg(e)
	if err != nil {
		return
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := p.js.PublishMsg(actx, m)
		cancel()
		if err == nil {
			p.metrics.eventsAcked.Inc()
			if e.acked != nil {
				e.acked(true)
			}
			return
		}
		p.metrics.publishRetries.Inc()
		if ctx.Err() != nil || time.Since(start) > p.giveUp || errors.Is(err, jetstream.ErrStreamNotFound) {
			p.log.Warn("giving up on an event", "room", e.room, "player", e.ev.Player, "kind", e.ev.Kind, "err", err)
			if e.acked != nil {
				e.acked(false)
			}
			return
		}
		t := time.NewTimer(min(50*time.Millisecond<<min(attempt, 4), time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}
