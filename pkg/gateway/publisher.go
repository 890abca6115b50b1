package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// publisher sends every player event of this node to its room's owner twice: on the fast path (core NATS, the
// room's live subject) and durably (JetStream, the room's input subject, stored by INPUTS, sent again until
// acknowledged). It groups a room's events on both paths: an event waits at most BatchWindow for others of its
// room, and a group holds at most BatchMax events (wire.EncodeBatch). On the durable path a room has one batch in
// flight at a time, so that its events from this node are stored in the order they came (docs/FAILOVER.md
// relies on it), and the next batch fills up meanwhile; one PubAck settles every event of a batch, and a batch
// whose attempt fails is sent again whole, with the same message id, which INPUTS stores once. With a batch size
// of 1 (the form before batches, for rolling upgrades) every event is its own message with its own id, and a
// room's are pipelined (legacyFlights) as before batches.
//
// Back-pressure: the node holds at most MaxPending inputs that INPUTS has not stored yet (waiting, in flight or
// waiting to be sent again). An input beyond that is refused at once (send reports false; the socket answers
// not_ready, and the client resends its latest input later), before anything is sent on either path, so a
// refused input is never applied. Joins and leaves are always taken: one of each per socket, bounded by the
// node's sockets.
//
// Rooms are sharded over Config.Workers goroutines (work), each with its rooms' queues (collector) and one
// goroutine per batch in flight, which work waits for.
type publisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *metrics
	b       batching
	shards  []*shard

	maxPending int
	pending    atomic.Int64 // events accepted and not yet stored or given up (inputs, joins and leaves)
	inputs     atomic.Int64 // inputs among them: what MaxPending bounds

	idPrefix string        // "<node>:<process>:": batch ids are unique in the cluster across restarts
	nextID   atomic.Uint64 // the batch counter
	loseAcks atomic.Int32  // fault injection (LosePubAcks): PubAcks still to treat as lost

	// Set by newPublisher. An attempt's wait for its PubAck is js's async publish timeout (pkg/mesh: 2 s).
	retryAfter time.Duration // a failed batch waits this long before it is sent again
	giveUp     time.Duration // a batch not stored this long after its first attempt is given up
	drainFor   time.Duration // how long run keeps sending after its context ends
}

// shard is one worker's part of the rooms.
type shard struct {
	mu   sync.Mutex
	c    *collector    // guarded by mu
	kick chan struct{} // an event was added: look at the rooms again
}

// outcome is the end of one attempt to store a batch.
type outcome struct {
	b   *batch
	err error // nil: stored (a PubAck, also one for a duplicate of a batch stored before)
}

// errLostAck is a PubAck dropped on purpose (LosePubAcks): the batch is stored, and the publisher does not know.
var errLostAck = errors.New("PubAck lost (fault injected)")

func newPublisher(nc *nats.Conn, js jetstream.JetStream, cfg Config, log *slog.Logger, m *metrics) *publisher {
	boot := make([]byte, 4)
	_, _ = rand.Read(boot)
	p := &publisher{nc: nc, js: js, log: log, metrics: m,
		b:          newBatching(cfg.BatchWindow, cfg.BatchMax),
		maxPending: cfg.MaxPending, idPrefix: cfg.Node + ":" + hex.EncodeToString(boot) + ":",
		retryAfter: 100 * time.Millisecond, giveUp: time.Minute, drainFor: time.Second,
	}
	for range cfg.Workers {
		p.shards = append(p.shards, &shard{c: newCollector(p.b), kick: make(chan struct{}, 1)})
	}
	return p
}

// send queues e for both paths and reports whether it took it. It never blocks. An input is refused (false)
// when the node already holds MaxPending inputs not yet stored, or when it cannot be encoded; then it went
// nowhere.
func (p *publisher) send(e event) bool {
	if !wire.ValidRoom(e.room) {
		return false
	}
	data, err := wire.EncodeEvent(e.ev)
	if err != nil {
		return false
	}
	e.data, e.at = data, time.Now()
	if e.ev.Kind == sim.KindInput {
		if p.inputs.Add(1) > int64(p.maxPending) {
			p.inputs.Add(-1)
			p.metrics.publishDropped.Inc()
			return false
		}
	}
	p.pending.Add(1)
	h := fnv.New32a()
	h.Write([]byte(e.room))
	s := p.shards[int(h.Sum32()%uint32(len(p.shards)))]
	s.mu.Lock()
	s.c.add(&e)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return true
}

// settled takes events off the pending counts (stored or given up).
func (p *publisher) settled(evs []*event) {
	inputs := 0
	for _, e := range evs {
		if e.ev.Kind == sim.KindInput {
			inputs++
		}
	}
	p.inputs.Add(-int64(inputs))
	p.pending.Add(-int64(len(evs)))
}

// run works every shard until ctx ends and, for drainFor after it, sends what is queued (the leaves of sockets
// closed by a drain come last).
func (p *publisher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range p.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, s)
		}()
	}
	wg.Wait()
}

// newBatch makes the durable publish of evs, events of room: a batch message with a new id, or, with a batch size
// of 1, the event's own message as nodes wrote it before batches.
func (p *publisher) newBatch(room string, evs []*event) *batch {
	var m *nats.Msg
	if p.b.max == 1 {
		m, _ = wire.EventMsg(room, evs[0].ev) // encoded once already by send: cannot fail
	} else {
		m, _ = wire.BatchMsg(room, p.idPrefix+strconv.FormatUint(p.nextID.Add(1), 36), p.liveData(evs))
	}
	return &batch{room: room, events: evs, msg: m}
}

// liveData is the message data of a group of events: a batch, or the event alone with a batch size of 1.
func (p *publisher) liveData(evs []*event) []byte {
	if p.b.max == 1 {
		return evs[0].data
	}
	data := make([][]byte, len(evs))
	for i, e := range evs {
		data[i] = e.data
	}
	return wire.EncodeBatch(data)
}

// work is one shard's loop: it sends live groups and batches as they fall due (asynchronous publishes, in the
// order of each room's queue), waits for each PubAck on a goroutine of its own, and handles the outcomes, until
// ctx ends and the drain is over.
func (p *publisher) work(ctx context.Context, s *shard) {
	done := make(chan outcome, 64)
	var attempts sync.WaitGroup
	defer func() {
		// Attempts end within js's async publish timeout; their outcomes no longer matter.
		go func() {
			attempts.Wait()
			close(done)
		}()
		for range done {
		}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var drainEnd time.Time
	for {
		now := time.Now()
		s.mu.Lock()
		lives, sends, next := s.c.due(now, p.newBatch)
		s.mu.Unlock()
		for _, evs := range lives {
			if err := p.nc.Publish(wire.LiveSubject(evs[0].room), p.liveData(evs)); err != nil {
				p.metrics.publishErrors.Inc()
			}
		}
		for _, b := range sends {
			if b.first.IsZero() {
				b.first = now
			}
			b.attempts++
			f, err := p.js.PublishMsgAsync(b.msg)
			if err != nil {
				p.settle(s, outcome{b: b, err: err})
				continue
			}
			attempts.Add(1)
			go func() {
				defer attempts.Done()
				done <- p.await(b, f)
			}()
		}
		doneC := ctx.Done()
		if !drainEnd.IsZero() {
			doneC = nil
			s.mu.Lock()
			left := s.c.held()
			s.mu.Unlock()
			if left == 0 || !now.Before(drainEnd) {
				if left > 0 {
					p.log.Warn("events not stored before shutdown", "events", left)
				}
				return
			}
			if next.IsZero() || drainEnd.Before(next) {
				next = drainEnd
			}
		}
		// Reset and Stop leave no stale expiry in timer.C (Go 1.23 timers).
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(max(0, next.Sub(now)))
		}
		select {
		case <-doneC:
			drainEnd = time.Now().Add(p.drainFor)
		case <-s.kick:
		case <-timer.C:
		case o := <-done:
			p.settle(s, o)
		}
	}
}

// await waits for the PubAck of one attempt to store b (or its error: js's async publish timeout ends the wait).
func (p *publisher) await(b *batch, f jetstream.PubAckFuture) outcome {
	select {
	case <-f.Ok():
		if p.loseAcks.Load() > 0 && p.loseAcks.Add(-1) >= 0 {
			return outcome{b: b, err: errLostAck}
		}
		return outcome{b: b}
	case err := <-f.Err():
		return outcome{b: b, err: err}
	}
}

// settle handles the outcome of an attempt: a stored batch frees its room for the next one; a failed one is sent
// again after retryAfter, or given up after giveUp (or when the stream is gone), and the sockets whose events it
// held are told.
func (p *publisher) settle(s *shard, o outcome) {
	b := o.b
	if o.err == nil {
		s.mu.Lock()
		s.c.stored(b)
		s.mu.Unlock()
		p.settled(b.events)
		p.metrics.eventsAcked.Add(float64(len(b.events)))
		p.metrics.batchesStored.Inc()
		return
	}
	p.metrics.publishRetries.Inc()
	if time.Since(b.first) < p.giveUp && !errors.Is(o.err, jetstream.ErrStreamNotFound) {
		s.mu.Lock()
		s.c.failed(b, time.Now().Add(p.retryAfter))
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.c.stored(b)
	s.mu.Unlock()
	p.settled(b.events)
	p.metrics.eventsGivenUp.Add(float64(len(b.events)))
	p.log.Warn("giving up on a batch of events", "room", b.room, "events", len(b.events), "attempts", b.attempts, "err", o.err)
	for _, e := range b.events {
		if e.from != nil {
			e.from.notStored(e.ev)
		}
	}
}

// notStored tells the socket that its event was given up: an input may be sent again (not_ready, and the
// reader takes its seq again); a join cannot, so the socket is closed with a retryable code and the client joins
// again. A leave's socket is gone already.
func (c *conn) notStored(ev sim.Event) {
	switch ev.Kind {
	case sim.KindInput:
		for {
			f := c.forwarded.Load()
			if f < ev.Seq || c.forwarded.CompareAndSwap(f, ev.Seq-1) {
				break
			}
		}
		c.sendError(protocol.CodeNotReady, "your input could not be stored; resend your latest input")
	case sim.KindJoin:
		c.closeWith(protocol.CloseNoOwner, "join could not be stored")
	}
}
