package gateway

import (
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/sim"
)

// event is a player event bound for a room's owner.
type event struct {
	room string
	ev   sim.Event
	from *conn     // the socket whose event it is, told when the event is given up; nil for none
	data []byte    // ev's JSON (wire.EncodeEvent), made once by send
	at   time.Time // when send accepted it
}

// batching is how a node groups a room's events (Config.BatchWindow, Config.BatchMax).
type batching struct {
	window time.Duration // an event waits at most this long for others to join it
	max    int           // a batch holds at most this many events; 1: one event per message, the form before batches
	// flights is how many durable publishes of one room may be in flight at once: 1 for batches, so that a
	// room's batches are stored in order; in the form before batches (max 1) every event has its own message id
	// and they are pipelined as nodes without batches did (legacyFlights), or a room would get one event per
	// round trip.
	flights int
}

// legacyFlights is the flights of one room in the form before batches.
const legacyFlights = 64

func newBatching(window time.Duration, max int) batching {
	b := batching{window: window, max: max, flights: 1}
	if max == 1 {
		b.flights = legacyFlights
	}
	return b
}

// batch is one durable publish: events of one room in one INPUTS message, sent again whole, with the same message
// id, until INPUTS acknowledges it.
type batch struct {
	room     string
	events   []*event
	msg      *nats.Msg // built once: every attempt sends the same message id
	first    time.Time // the first attempt
	retry    time.Time // when to send it again after a failure; zero while an attempt is in flight
	attempts int
}

// roomQueue is one room's events on their way: to the owner's fast path (live, sent as a group once the window
// passed or the group is full) and to INPUTS (durable, one batch in flight at a time, so that a room's events
// from this node are stored in the order the node received them: a batch is stored only after the one before
// it). While a batch is in flight the next one fills up: a busy room's batches are as large as the round trip
// lets them be, an idle room's event waits at most the window.
type roomQueue struct {
	room    string
	live    []*event // not yet sent on the live subject
	durable []*event // not yet in a durable publish, in arrival order
	flights []*batch // durable publishes in flight or waiting to be sent again (at most batching.flights)
}

// add queues e for both paths.
func (q *roomQueue) add(e *event) {
	q.live = append(q.live, e)
	q.durable = append(q.durable, e)
}

// takeLive returns the live group when it is due at now (full, or its first event's window passed), else nil.
func (q *roomQueue) takeLive(now time.Time, b batching) []*event {
	if len(q.live) == 0 || (len(q.live) < b.max && now.Before(q.live[0].at.Add(b.window))) {
		return nil
	}
	n := min(len(q.live), b.max)
	out := q.live[:n:n]
	q.live = q.live[n:]
	if len(q.live) == 0 {
		q.live = nil
	}
	return out
}

// takeDurable returns the events of the next durable batch when it is due at now (room for a flight, and a full
// batch waiting or the oldest waiting event's window passed), else nil.
func (q *roomQueue) takeDurable(now time.Time, b batching) []*event {
	if len(q.flights) >= b.flights || len(q.durable) == 0 || (len(q.durable) < b.max && now.Before(q.durable[0].at.Add(b.window))) {
		return nil
	}
	n := min(len(q.durable), b.max)
	out := q.durable[:n:n]
	q.durable = q.durable[n:]
	if len(q.durable) == 0 {
		q.durable = nil
	}
	return out
}

// wake is the next instant something of q becomes due by time alone (zero: nothing waits on time).
func (q *roomQueue) wake(b batching) time.Time {
	var w time.Time
	earlier := func(t time.Time) {
		if w.IsZero() || t.Before(w) {
			w = t
		}
	}
	if len(q.live) > 0 {
		earlier(q.live[0].at.Add(b.window))
	}
	if len(q.flights) < b.flights && len(q.durable) > 0 {
		earlier(q.durable[0].at.Add(b.window))
	}
	for _, f := range q.flights {
		if !f.retry.IsZero() {
			earlier(f.retry)
		}
	}
	return w
}

// idle reports whether q holds nothing.
func (q *roomQueue) idle() bool {
	return len(q.live) == 0 && len(q.durable) == 0 && len(q.flights) == 0
}

// collector is the rooms of one publisher shard with events on their way. Its methods take the time as an
// argument and do no I/O: the shard's loop (publisher.work) does that around them.
type collector struct {
	b     batching
	rooms map[string]*roomQueue // only rooms that hold something
}

func newCollector(b batching) *collector { return &collector{b: b, rooms: map[string]*roomQueue{}} }

// add queues e in its room.
func (c *collector) add(e *event) {
	q := c.rooms[e.room]
	if q == nil {
		q = &roomQueue{room: e.room}
		c.rooms[e.room] = q
	}
	q.add(e)
}

// due is what is due at now: the live groups to send, the batches to send (failed ones whose retry time came,
// and new ones, from newBatch, each becoming one of its room's flights), and the next instant something becomes
// due by time alone (zero: none). Rooms left holding nothing are forgotten.
func (c *collector) due(now time.Time, newBatch func(room string, evs []*event) *batch) (lives [][]*event, sends []*batch, next time.Time) {
	for room, q := range c.rooms {
		for {
			evs := q.takeLive(now, c.b)
			if evs == nil {
				break
			}
			lives = append(lives, evs)
		}
		for _, f := range q.flights {
			if !f.retry.IsZero() && !now.Before(f.retry) {
				f.retry = time.Time{}
				sends = append(sends, f)
			}
		}
		for {
			evs := q.takeDurable(now, c.b)
			if evs == nil {
				break
			}
			f := newBatch(room, evs)
			q.flights = append(q.flights, f)
			sends = append(sends, f)
		}
		if w := q.wake(c.b); !w.IsZero() && (next.IsZero() || w.Before(next)) {
			next = w
		}
		if q.idle() {
			delete(c.rooms, room)
		}
	}
	return lives, sends, next
}

// stored ends the flight f: it was stored (or given up).
func (c *collector) stored(f *batch) {
	if q := c.rooms[f.room]; q != nil {
		if i := slices.Index(q.flights, f); i >= 0 {
			q.flights = slices.Delete(q.flights, i, i+1)
		}
	}
}

// failed schedules the flight f to be sent again at retry.
func (c *collector) failed(f *batch, retry time.Time) { f.retry = retry }

// held is every event c holds (waiting, in flight, or waiting to be sent again), for the shutdown's account.
func (c *collector) held() int {
	n := 0
	for _, q := range c.rooms {
		n += len(q.durable)
		for _, f := range q.flights {
			n += len(f.events)
		}
	}
	return n
}
