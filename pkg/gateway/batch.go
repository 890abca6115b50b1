package gateway

import (
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
	flight  *batch   // the durable publish in flight or waiting to be sent again
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

// takeDurable returns the events of the next durable batch when it is due at now (no batch in flight, and a full
// batch waiting or the oldest waiting event's window passed), else nil.
func (q *roomQueue) takeDurable(now time.Time, b batching) []*event {
	if q.flight != nil || len(q.durable) == 0 || (len(q.durable) < b.max && now.Before(q.durable[0].at.Add(b.window))) {
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
	if q.flight == nil && len(q.durable) > 0 {
		earlier(q.durable[0].at.Add(b.window))
	}
	if q.flight != nil && !q.flight.retry.IsZero() {
		earlier(q.flight.retry)
	}
	return w
}

// idle reports whether q holds nothing.
func (q *roomQueue) idle() bool { return len(q.live) == 0 && len(q.durable) == 0 && q.flight == nil }

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

// due is what is due at now: the live groups to send, the batches to send (new ones, from newBatch, and failed
// ones whose retry time came; each becomes its room's flight), and the next instant something becomes due by
// time alone (zero: none). Rooms left holding nothing are forgotten.
func (c *collector) due(now time.Time, newBatch func(room string, evs []*event) *batch) (lives [][]*event, sends []*batch, next time.Time) {
	for room, q := range c.rooms {
		for {
			evs := q.takeLive(now, c.b)
			if evs == nil {
				break
			}
			lives = append(lives, evs)
		}
		if q.flight != nil && !q.flight.retry.IsZero() && !now.Before(q.flight.retry) {
			q.flight.retry = time.Time{}
			sends = append(sends, q.flight)
		} else if evs := q.takeDurable(now, c.b); evs != nil {
			q.flight = newBatch(room, evs)
			sends = append(sends, q.flight)
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

// stored ends room's flight: it was stored (or given up).
func (c *collector) stored(room string) {
	if q := c.rooms[room]; q != nil {
		q.flight = nil
	}
}

// failed schedules room's flight to be sent again at retry.
func (c *collector) failed(room string, retry time.Time) {
	if q := c.rooms[room]; q != nil && q.flight != nil {
		q.flight.retry = retry
	}
}

// held is every event c holds (waiting, in flight, or waiting to be sent again), for the shutdown's account.
func (c *collector) held() int {
	n := 0
	for _, q := range c.rooms {
		n += len(q.durable)
		if q.flight != nil {
			n += len(q.flight.events)
		}
	}
	return n
}
