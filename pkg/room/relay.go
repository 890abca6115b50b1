package room

import (
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/fence"
)

// Tick headers: owners stamp every tick with its epoch and seq in NATS headers, so relays fence without
// parsing the JSON body, which they forward verbatim. HeaderTime is the owner's publish instant in Unix
// microseconds, from which relays measure a tick's delivery latency (a tick without it is relayed all the same).
const (
	HeaderEpoch = "Tm-Epoch"
	HeaderSeq   = "Tm-Seq"
	HeaderTime  = "Tm-Time"
)

// TickFunc receives an accepted tick: the frame to forward to sockets as is. It must not block and must not
// keep or modify data beyond the call (copy it if needed; the relay hands every listener the same slice).
type TickFunc func(room string, pos fence.Position, data []byte)

// Relay subscribes to the ticks of the rooms this node serves (one NATS subscription per room, whatever the
// number of sockets), fences them by (epoch, seq) and hands accepted ticks to listeners. It keeps the last
// accepted tick of each room for new sockets and for an owner restoring after a takeover.
type Relay struct {
	nc    *nats.Conn
	fence *fence.Fence

	mu    sync.Mutex
	rooms map[string]*relayRoom
	next  int
	hooks RelayHooks
}

// RelayHooks receive what the relay observes, for metrics. They run on the room's delivery goroutine and must
// not block; a nil hook is skipped.
type RelayHooks struct {
	// Fenced is called for every tick the fence refuses (or that has no valid epoch and seq).
	Fenced func(room string)
	// Gap is the time since the room's previous accepted tick on this node (by this node's clock): one tick
	// period normally, the pause players saw at a failover. Not called for a room's first tick after the relay
	// subscribed to it.
	Gap func(room string, gap time.Duration)
	// Fanout is the age of an accepted tick that carries HeaderTime once its listeners returned: the owner's
	// publish to the end of this node's fan-out (the listeners write to idle sockets at once). The age crosses
	// two clocks: skew between the owner's node and this one adds to it (a negative age counts as 0).
	Fanout func(room string, age time.Duration)
}

type relayRoom struct {
	refs      int
	sub       *nats.Subscription
	last      []byte
	lastPos   fence.Position
	lastAt    time.Time // when the last accepted tick arrived (monotonic)
	listeners map[int]TickFunc
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
	rr = &relayRoom{refs: 1, listeners: map[int]TickFunc{}}
	sub, err := r.nc.Subscribe(TickSubject(room), func(m *nats.Msg) { r.deliver(room, rr, m) })
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
	epoch, err1 := strconv.ParseUint(m.Header.Get(HeaderEpoch), 10, 64)
	seq, err2 := strconv.ParseUint(m.Header.Get(HeaderSeq), 10, 64)
	if err1 != nil || err2 != nil || epoch == 0 {
		r.hooks.Fenced(room)
		return
	}
	if !r.fence.Accept(room, epoch, seq) {
		r.hooks.Fenced(room)
		return
	}
	pos := fence.Position{Epoch: epoch, Seq: seq}
	now := time.Now()
	r.mu.Lock()
	// The fence accepted (epoch, seq) above; another delivery of this room cannot interleave because NATS
	// delivers one subscription's messages on one goroutine, in order.
	prevAt := rr.lastAt
	rr.last, rr.lastPos, rr.lastAt = m.Data, pos, now
	ls := make([]TickFunc, 0, len(rr.listeners))
	for _, fn := range rr.listeners {
		ls = append(ls, fn)
	}
	r.mu.Unlock()
	if !prevAt.IsZero() {
		r.hooks.Gap(room, now.Sub(prevAt))
	}
	for _, fn := range ls {
		fn(room, pos, m.Data)
	}
	if us, err := strconv.ParseInt(m.Header.Get(HeaderTime), 10, 64); err == nil {
		r.hooks.Fanout(room, max(0, time.Since(time.UnixMicro(us))))
	}
}

// Last returns the last accepted tick of room (nil if none) and its position.
func (r *Relay) Last(room string) ([]byte, fence.Position) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr, ok := r.rooms[room]
	if !ok {
		return nil, fence.Position{}
	}
	return rr.last, rr.lastPos
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
