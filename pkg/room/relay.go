package room

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Tick is one tick the relay accepted: its position, its body (forwarded to sockets as it is) and its decoded
// contents, which are decoded at most once on this node, and only when someone asks (Decode): the hot path
// forwards bytes.
type Tick struct {
	Pos  fence.Position
	Data []byte
	// Applied is the tick's wire.HeaderApplied ("" when it has none): the players whose applied ack is above the
	// ack the body shows. A node restoring the room from this tick needs it; sockets never see it.
	Applied string

	once sync.Once
	dec  *protocol.Tick
	err  error
}

// NewTick wraps an accepted tick's body.
func NewTick(pos fence.Position, data []byte) *Tick { return &Tick{Pos: pos, Data: data} }

// Decode returns the tick's contents. The result is shared: callers must not modify it.
func (t *Tick) Decode() (*protocol.Tick, error) {
	t.once.Do(func() {
		msg, err := protocol.DecodeServer(t.Data)
		if err != nil {
			t.err = err
			return
		}
		tk, ok := msg.(*protocol.Tick)
		if !ok {
			t.err = &protocol.DecodeError{Code: protocol.CodeUnknownType, Message: "not a tick"}
			return
		}
		t.dec = tk
	})
	return t.dec, t.err
}

// TickFunc receives an accepted tick. It must not block and must not modify the tick (every listener gets the
// same one).
type TickFunc func(room string, t *Tick)

// Relay subscribes to the ticks of the rooms this node serves (one NATS subscription per room, whatever the
// number of sockets), fences them by (epoch, seq) and hands accepted ticks to listeners. It keeps the last
// accepted tick of each room for new sockets and for an owner restoring after a takeover.
type Relay struct {
	nc    *nats.Conn
	fence *fence.Fence
	hooks RelayHooks

	mu    sync.Mutex
	rooms map[string]*relayRoom // guarded by mu
	next  int                   // guarded by mu: the next listener id
}

type relayRoom struct {
	refs      int // guarded by Relay.mu
	sub       *nats.Subscription
	last      *Tick            // guarded by Relay.mu
	heardAt   time.Time        // guarded by Relay.mu: when the last tick was accepted, or the subscription began
	listeners map[int]TickFunc // guarded by Relay.mu
	lastAt    time.Time        // when the last accepted tick arrived; used by the delivery goroutine only
	lastPos   fence.Position   // the last accepted tick's position; used by the delivery goroutine only
}

// RelayHooks receive what the relay observes, for metrics. They run on the room's delivery goroutine and must
// not block; a nil hook is skipped.
type RelayHooks struct {
	// Fenced is called for every tick the fence refuses (or whose headers do not parse).
	Fenced func(room string)
	// Gap is the time since the room's previous accepted tick on this node (by this node's clock): one tick
	// period normally, the pause players saw at a failover. Not called for a room's first tick after the relay
	// subscribed to it.
	Gap func(room string, gap time.Duration)
	// Fanout is the age of an accepted tick that carries wire.HeaderTime once its listeners returned: the
	// owner's publish to the end of this node's fan-out (the listeners write to idle sockets at once). The age
	// crosses two clocks: skew between the owner's node and this one adds to it (a negative age counts as 0).
	Fanout func(room string, age time.Duration)
	// Epoch is called for a room's first tick of a higher epoch than its previous accepted tick on this node (a
	// new owner's first tick), with the previous tick's position, the new tick (not to be modified) and the time
	// between the two ticks' arrivals: the pause the players on this node saw at the handover. Not called for a
	// room's first tick after the relay subscribed.
	Epoch func(room string, from fence.Position, to *Tick, gap time.Duration)
}

// NewRelay makes a relay over nc that reports to hooks.
func NewRelay(nc *nats.Conn, f *fence.Fence, hooks RelayHooks) *Relay {
	if hooks.Fenced == nil {
		hooks.Fenced = func(string) {}
	}
	if hooks.Gap == nil {
		hooks.Gap = func(string, time.Duration) {}
	}
	if hooks.Fanout == nil {
		hooks.Fanout = func(string, time.Duration) {}
	}
	if hooks.Epoch == nil {
		hooks.Epoch = func(string, fence.Position, *Tick, time.Duration) {}
	}
	return &Relay{nc: nc, fence: f, rooms: map[string]*relayRoom{}, hooks: hooks}
}

// Fence is the relay's fence.
func (r *Relay) Fence() *fence.Fence { return r.fence }

// Listen registers fn for room's accepted ticks and subscribes to the room if this is its first user. The
// returned function unregisters it (and unsubscribes when nothing else uses the room).
func (r *Relay) Listen(room string, fn TickFunc) (stop func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr, err := r.acquireLocked(room)
	if err != nil {
		return nil, err
	}
	id := r.next
	r.next++
	if fn != nil {
		rr.listeners[id] = fn
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			delete(rr.listeners, id)
			r.releaseLocked(room, rr)
		})
	}, nil
}

func (r *Relay) acquireLocked(room string) (*relayRoom, error) {
	rr, ok := r.rooms[room]
	if ok {
		rr.refs++
		return rr, nil
	}
	if !wire.ValidRoom(room) {
		return nil, wire.ErrBadRoom
	}
	rr = &relayRoom{refs: 1, listeners: map[int]TickFunc{}, heardAt: time.Now()}
	sub, err := r.nc.Subscribe(wire.TickSubject(room), func(m *nats.Msg) { r.deliver(room, rr, m) })
	if err != nil {
		return nil, err
	}
	// Ticks are small and frequent: let the client buffer a few seconds of them before it calls us slow.
	_ = sub.SetPendingLimits(4096, 64<<20)
	rr.sub = sub
	r.rooms[room] = rr
	return rr, nil
}

func (r *Relay) releaseLocked(room string, rr *relayRoom) {
	rr.refs--
	if rr.refs > 0 {
		return
	}
	_ = rr.sub.Unsubscribe()
	delete(r.rooms, room)
}

func (r *Relay) deliver(room string, rr *relayRoom, m *nats.Msg) {
	epoch, seq, err := wire.ParseTickHeader(m.Header)
	if err != nil || !r.fence.Accept(room, epoch, seq) {
		r.hooks.Fenced(room)
		return
	}
	t := NewTick(fence.Position{Epoch: epoch, Seq: seq}, m.Data)
	t.Applied = m.Header.Get(wire.HeaderApplied)
	now := time.Now()
	if !rr.lastAt.IsZero() {
		r.hooks.Gap(room, now.Sub(rr.lastAt))
		if epoch > rr.lastPos.Epoch {
			r.hooks.Epoch(room, rr.lastPos, t, now.Sub(rr.lastAt))
		}
	}
	rr.lastAt, rr.lastPos = now, t.Pos
	r.mu.Lock()
	// The fence accepted (epoch, seq) above; another delivery of this room cannot interleave because NATS
	// delivers one subscription's messages on one goroutine, in order.
	rr.last = t
	rr.heardAt = now
	ls := make([]TickFunc, 0, len(rr.listeners))
	for _, fn := range rr.listeners {
		ls = append(ls, fn)
	}
	r.mu.Unlock()
	for _, fn := range ls {
		fn(room, t)
	}
	if sent, ok := wire.TickTime(m.Header); ok {
		r.hooks.Fanout(room, max(0, time.Since(sent)))
	}
}

// Last returns the last accepted tick of room, nil if none.
func (r *Relay) Last(room string) *Tick {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr, ok := r.rooms[room]
	if !ok {
		return nil
	}
	return rr.last
}

// Silence is how long room has had no accepted tick here (counted from when the relay began following it, if
// none came since); ok is false when the relay does not follow room.
func (r *Relay) Silence(room string) (d time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr, ok := r.rooms[room]
	if !ok {
		return 0, false
	}
	return time.Since(rr.heardAt), true
}

// Close unsubscribes from every room.
func (r *Relay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for room, rr := range r.rooms {
		_ = rr.sub.Unsubscribe()
		delete(r.rooms, room)
	}
}
