package room

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Tick is one tick the relay accepted and applied to the room's state. It carries what sockets get, each made at
// most once on this node: the delta that takes a socket from the relay's previous tick of the room to this one
// (Delta), the tick's keyframe (Keyframe) and its protocol 1 JSON (JSON). The delta and, when the owner sent
// them, the keyframe and the JSON are the owner's bytes, forwarded as they came; the others are encoded here from
// the room's state, on the first call.
//
// Keyframe, JSON, State and Decode read the room's state as of this tick: they may be called only while the
// relay holds the room, that is from a TickFunc or inside Relay.With. Pos, Serial, Applied and Delta may be read
// at any time.
type Tick struct {
	Pos fence.Position
	// Serial numbers the ticks this relay accepted of the room, one after the other. A socket that last got
	// tick n can take Delta of tick n+1 (when Chained).
	Serial uint64

	applied string // the owner's Tm-Applied
	delta   []byte // nil unless chained
	key     []byte
	json    []byte
	rr      *relayRoom
}

// Applied is the tick's wire.HeaderApplied ("" when it has none): the players whose applied ack is above the
// ack the state shows, with the applied one. It is what a node restoring the room from this tick needs besides
// the state; sockets never see it.
func (t *Tick) Applied() string { return t.applied }

// Chained reports whether Delta takes the relay's previous tick of the room (Serial-1) to this one.
func (t *Tick) Chained() bool { return t.delta != nil }

// Delta is the frame that takes a socket that got tick Serial-1 to this tick; nil unless Chained.
func (t *Tick) Delta() []byte { return t.delta }

// Keyframe is the tick's keyframe: the owner's, or encoded here once.
func (t *Tick) Keyframe() []byte {
	if t.key == nil {
		t.key = compact.AppendKeyframe(make([]byte, 0, 256), t.rr.state())
	}
	return t.key
}

// JSON is the tick as protocol 1 JSON: the owner's, or encoded here once.
func (t *Tick) JSON() []byte {
	if t.json == nil {
		t.rr.state().Tick(&t.rr.jsonTick)
		b, err := protocol.Encode(&t.rr.jsonTick)
		if err != nil {
			b = nil // unreachable: a decoded state has integer values only
		}
		t.json = b
	}
	return t.json
}

// State is the room's state at this tick. It is the relay's: not to be modified or kept.
func (t *Tick) State() *compact.State { return t.rr.state() }

// Decode returns the tick as a protocol 1 tick of its own (the caller may keep it).
func (t *Tick) Decode() (*protocol.Tick, error) {
	tk := new(protocol.Tick)
	t.rr.state().Tick(tk)
	return tk, nil
}

// TickFunc receives an accepted tick. It runs while the relay holds the room: it must not block, must not call
// the relay, and must not modify the tick (every listener gets the same one).
type TickFunc func(room string, t *Tick)

// Relay follows the ticks of the rooms this node serves, fences them by (epoch, seq), keeps each room's state
// and hands accepted ticks to listeners. The state is what new sockets start from and what an owner restoring
// after a takeover continues.
//
// Ticks come as protocol 2 frames in the owners' tick bundles (wire.BundleSubject): the relay subscribes to each
// bundle shard once, whatever the number of rooms and sockets, and takes the entries of the rooms it serves. A
// delta that does not apply (a tick missed, a room just joined) makes the relay ask the owner for a keyframe
// (wire.SyncSubject, at most every syncEvery per room) and wait for it. When a room's frames stay silent for
// jsonAfter while it is served, the relay also follows its protocol 1 JSON ticks (wire.TickSubject): during a
// rolling upgrade, an owner from before bundles (or from before protocol 2) publishes them while something
// listens there. The relay serves protocol 2 from them (encoding deltas itself) and stops following them as soon
// as a bundle brings the room's frames again. (It does not follow a room's own frames subject, which owners
// publish for tools and relays from before bundles: a new owner publishes there too while anything listens, and
// the copies would reach the fence twice.)
//
// Goroutines: NATS delivers each subscription's messages on its own goroutine (one per bundle shard, one per
// room whose JSON ticks it follows); a room's deliveries and With are serialised by the room's lock. The only
// timers are each room's JSON fallback (time.AfterFunc), stopped when the room is released.
type Relay struct {
	nc    *nats.Conn
	fence *fence.Fence
	hooks RelayHooks
	born  time.Time // when the relay was made (the origin of relayRoom.heard)

	mu      sync.Mutex
	rooms   map[string]*relayRoom                 // guarded by mu
	bundles [wire.BundleShards]*nats.Subscription // guarded by mu: made with the first room
	next    int                                   // guarded by mu: the next listener id
	serials atomic.Uint64                         // the serial range of the next room (rooms number their ticks from it)
}

// Tunables of the relay.
const (
	// jsonAfter: a room silent this long while it is served → follow its JSON ticks too.
	jsonAfter = time.Second
	// syncEvery: the shortest time between two keyframe requests of one room.
	syncEvery = 100 * time.Millisecond
)

type relayRoom struct {
	room  string
	hooks RoomHooks // made by RelayHooks.Room when the relay started serving the room

	// Guarded by Relay.mu.
	refs      int
	listeners map[int]TickFunc
	json      *nats.Subscription // while following JSON ticks
	fallback  *time.Timer
	released  bool
	following atomic.Bool // json != nil, readable without Relay.mu
	// heard is when the last tick of the room was accepted here, or the relay began following the room if none
	// was since (Relay.since): read without any lock by Silence, a takeover signal of the control loop.
	heard atomic.Int64

	// Guarded by mu: the room's state. Held across a delivery (apply and listeners) and With.
	mu       sync.Mutex
	fromJSON bool             // the state comes from JSON ticks (enc), else from frames (dec)
	dec      compact.Decoder  // the owner's frames
	enc      *compact.Encoder // JSON ticks, as an owner would encode them
	schema   *compact.Schema  // the names of the last JSON tick
	last     *Tick
	serial   uint64
	lastAt   time.Time      // when the last accepted tick arrived
	lastPos  fence.Position // and its position
	lastSync time.Time      // when a keyframe was last asked for
	jsonTick protocol.Tick
}

func (rr *relayRoom) state() *compact.State {
	if rr.fromJSON {
		return rr.enc.Current()
	}
	return rr.dec.State()
}

// RelayHooks receive what the relay observes, for metrics. They run on the room's delivery goroutine and must
// not block; a nil hook is skipped.
type RelayHooks struct {
	// Fenced is called for every tick the fence refuses (or whose headers do not parse).
	Fenced func(room string)
	// Malformed is called for every bundle that does not decode (its entries before the bad one are taken).
	Malformed func()
	// Room is called once when the relay starts serving a room, for the room's per-tick reports (RoomHooks):
	// they run for every tick, and looking up a room's metric series on every tick costs more than the rest of
	// the relay's bookkeeping of a tick.
	Room func(room string) RoomHooks
	// Lost is called for every accepted tick the relay could not apply: a delta whose base it does not have
	// (a missed tick, a room it just started serving) or a frame that does not decode. A keyframe was asked
	// for.
	Lost func(room string)
	// Epoch is called for a room's first tick of a higher epoch than its previous accepted tick on this node (a
	// new owner's first tick), with the previous tick's position, the new tick (not to be modified; its state
	// may be read during the call, as in a TickFunc) and the time
	// between the two ticks' arrivals: the pause the players on this node saw at the handover. Not called for a
	// room's first tick after the relay subscribed.
	Epoch func(room string, from fence.Position, to *Tick, gap time.Duration)
}

// RoomHooks are one room's per-tick reports (RelayHooks.Room); a nil hook is skipped.
type RoomHooks struct {
	// Gap is the time since the room's previous accepted tick on this node (by this node's clock): one tick
	// period normally, the pause players saw at a failover. Not called for a room's first tick after the relay
	// subscribed to it.
	Gap func(gap time.Duration)
	// Fanout is the age of an accepted tick that carries wire.HeaderTime once its listeners returned: the
	// owner's publish to the end of this node's fan-out (the listeners write to idle sockets at once). The age
	// crosses two clocks: skew between the owner's node and this one adds to it (a negative age counts as 0).
	Fanout func(age time.Duration)
}

// NewRelay makes a relay over nc that reports to hooks.
func NewRelay(nc *nats.Conn, f *fence.Fence, hooks RelayHooks) *Relay {
	if hooks.Fenced == nil {
		hooks.Fenced = func(string) {}
	}
	if hooks.Room == nil {
		hooks.Room = func(string) RoomHooks { return RoomHooks{} }
	}
	if hooks.Lost == nil {
		hooks.Lost = func(string) {}
	}
	if hooks.Malformed == nil {
		hooks.Malformed = func() {}
	}
	if hooks.Epoch == nil {
		hooks.Epoch = func(string, fence.Position, *Tick, time.Duration) {}
	}
	return &Relay{nc: nc, fence: f, rooms: map[string]*relayRoom{}, hooks: hooks, born: time.Now()}
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

// pendingLimits: ticks are small and frequent: a subscription buffers a few seconds of them before the client
// calls it slow.
func pendingLimits(sub *nats.Subscription) { _ = sub.SetPendingLimits(4096, 64<<20) }

func (r *Relay) acquireLocked(room string) (*relayRoom, error) {
	rr, ok := r.rooms[room]
	if ok {
		rr.refs++
		return rr, nil
	}
	if !wire.ValidRoom(room) {
		return nil, wire.ErrBadRoom
	}
	rr = &relayRoom{room: room, refs: 1, listeners: map[int]TickFunc{}, enc: compact.NewEncoder(),
		serial: r.serials.Add(1) << 32, hooks: r.hooks.Room(room)}
	if rr.hooks.Gap == nil {
		rr.hooks.Gap = func(time.Duration) {}
	}
	if rr.hooks.Fanout == nil {
		rr.hooks.Fanout = func(time.Duration) {}
	}
	rr.heard.Store(r.since())
	if err := r.subscribeBundlesLocked(); err != nil {
		return nil, err
	}
	rr.fallback = time.AfterFunc(jsonAfter, func() { r.followJSON(rr) })
	r.rooms[room] = rr
	// A room this node just started serving: ask for a keyframe rather than wait for the periodic one.
	r.requestSync(rr, time.Now())
	return rr, nil
}

func (r *Relay) releaseLocked(room string, rr *relayRoom) {
	rr.refs--
	if rr.refs > 0 {
		return
	}
	r.closeLocked(rr)
	delete(r.rooms, room)
}

// subscribeBundlesLocked subscribes to every bundle shard, if the relay does not yet.
func (r *Relay) subscribeBundlesLocked() error {
	for shard := range r.bundles {
		if r.bundles[shard] != nil {
			continue
		}
		sub, err := r.nc.Subscribe(wire.AllBundles(shard), r.deliverBundle)
		if err != nil {
			return err
		}
		// A bundle holds a window of many rooms' ticks: the same seconds of buffer as a room's subscription.
		_ = sub.SetPendingLimits(4096, 256<<20)
		r.bundles[shard] = sub
	}
	return nil
}

func (r *Relay) closeLocked(rr *relayRoom) {
	rr.released = true
	rr.fallback.Stop()
	if rr.json != nil {
		_ = rr.json.Unsubscribe()
		rr.json = nil
		rr.following.Store(false)
	}
}

// followJSON starts following the room's JSON ticks: its frames have been silent for jsonAfter.
func (r *Relay) followJSON(rr *relayRoom) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rr.released || rr.json != nil {
		return
	}
	sub, err := r.nc.Subscribe(wire.TickSubject(rr.room), func(m *nats.Msg) { r.deliverJSON(rr, m) })
	if err != nil {
		rr.fallback.Reset(jsonAfter)
		return
	}
	pendingLimits(sub)
	rr.json = sub
	rr.following.Store(true)
}

// framesCame stops following JSON ticks and restarts the fallback's clock.
func (r *Relay) framesCame(rr *relayRoom) {
	rr.fallback.Reset(jsonAfter)
	if !rr.following.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rr.json != nil {
		_ = rr.json.Unsubscribe()
		rr.json = nil
		rr.following.Store(false)
	}
}

// requestSync asks the owner for a keyframe, at most every syncEvery. rr.mu must be held, or rr not yet shared.
func (r *Relay) requestSync(rr *relayRoom, now time.Time) {
	if now.Sub(rr.lastSync) < syncEvery {
		return
	}
	rr.lastSync = now
	_ = r.nc.Publish(wire.SyncSubject(rr.room), nil)
}

var errNotTick = errors.New("not a tick of this room")

// incoming is a tick as it came, in a bundle or as a JSON tick.
type incoming struct {
	pos     fence.Position
	sent    int64  // the owner's publish instant, Unix microseconds; 0 for none
	applied string // the owner's Tm-Applied
	json    bool   // data is a JSON tick, else first and key are frames
	data    []byte
	first   []byte
	key     []byte
}

// deliverBundle takes the entries of a bundle that belong to rooms this relay serves.
func (r *Relay) deliverBundle(m *nats.Msg) {
	err := wire.ReadBundle(m.Data, func(bt *wire.BundledTick) {
		rr := r.room(bt.Room)
		if rr == nil {
			return
		}
		r.framesCame(rr)
		first, key := bt.Frames()
		r.take(rr, &incoming{pos: fence.Position{Epoch: bt.Epoch, Seq: bt.Seq}, sent: bt.Time, applied: bt.Applied,
			first: first, key: key})
	})
	if err != nil {
		r.hooks.Malformed()
	}
}

// deliverJSON takes a JSON tick of an owner from before bundles (or protocol 2).
func (r *Relay) deliverJSON(rr *relayRoom, m *nats.Msg) {
	epoch, seq, err := wire.ParseTickHeader(m.Header)
	if err != nil {
		r.hooks.Fenced(rr.room)
		return
	}
	if m.Header.Get(wire.HeaderFrames) != "" {
		// The owner publishes frames too: take those (JSON is published because something listens, maybe this
		// very subscription, until the frames come).
		return
	}
	in := incoming{pos: fence.Position{Epoch: epoch, Seq: seq}, applied: m.Header.Get(wire.HeaderApplied), json: true, data: m.Data}
	if sent, ok := wire.TickTime(m.Header); ok {
		in.sent = sent.UnixMicro()
	}
	r.take(rr, &in)
}

// take fences a tick of rr, applies it to the room's state and hands it to the listeners.
func (r *Relay) take(rr *relayRoom, in *incoming) {
	room := rr.room
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if !r.fence.Accept(room, in.pos.Epoch, in.pos.Seq) {
		r.hooks.Fenced(room)
		return
	}
	now := time.Now()
	// The room's owner is ticking, whether or not this tick applies here.
	rr.heard.Store(r.since())
	t := &Tick{Pos: in.pos, applied: in.applied, rr: rr}
	var err error
	switch {
	case in.json:
		err = r.applyJSON(rr, t, in.data)
	default:
		err = r.applyFrames(rr, t, in.first, in.key)
	}
	if err != nil {
		r.hooks.Lost(room)
		r.requestSync(rr, now)
		return
	}
	if !rr.lastAt.IsZero() {
		rr.hooks.Gap(now.Sub(rr.lastAt))
		if in.pos.Epoch > rr.lastPos.Epoch {
			r.hooks.Epoch(room, rr.lastPos, t, now.Sub(rr.lastAt))
		}
	}
	rr.lastAt, rr.lastPos = now, t.Pos
	rr.serial++
	t.Serial = rr.serial
	rr.last = t
	r.mu.Lock()
	ls := make([]TickFunc, 0, len(rr.listeners))
	for _, fn := range rr.listeners {
		ls = append(ls, fn)
	}
	r.mu.Unlock()
	for _, fn := range ls {
		fn(room, t)
	}
	if in.sent != 0 {
		rr.hooks.Fanout(max(0, time.Since(time.UnixMicro(in.sent))))
	}
}

// applyFrames applies an owner's frames to the room's state: the first (a delta or a keyframe) when the state is
// the delta's base, else the keyframe after it, if there is one.
func (r *Relay) applyFrames(rr *relayRoom, t *Tick, first, key []byte) error {
	info, err := compact.Peek(first)
	if err != nil {
		return err
	}
	if info.Epoch != t.Pos.Epoch || info.Seq != t.Pos.Seq {
		return errNotTick
	}
	applied := false
	if info.Kind == compact.Delta {
		// While the state comes from JSON ticks the decoder has none (it was reset): only a keyframe applies.
		if err = rr.dec.Apply(first); err == nil {
			// The decoder's state was the relay's last tick of the room (it changes only with the ticks the
			// relay accepts), so the delta takes a socket from that tick to this one.
			applied = true
			t.delta = first
		} else if key == nil {
			return err // the state is unchanged: still the last tick's
		}
	} else {
		key = first
	}
	if !applied {
		if err := rr.dec.Apply(key); err != nil {
			return err
		}
	}
	t.key = key
	if s := rr.dec.State(); s.Room != rr.room {
		rr.dec.Reset()
		if !rr.fromJSON {
			rr.last = nil // its state is gone
		}
		return errNotTick
	}
	if rr.fromJSON {
		rr.fromJSON = false
		rr.enc.Reset()
	}
	return nil
}

// applyJSON applies an old owner's JSON tick: the state is encoded as an owner would, so that sockets of
// protocol 2 get deltas and keyframes from it.
func (r *Relay) applyJSON(rr *relayRoom, t *Tick, data []byte) error {
	msg, err := protocol.DecodeServer(data)
	if err != nil {
		return err
	}
	tk, ok := msg.(*protocol.Tick)
	if !ok || tk.Room != rr.room || tk.Epoch != t.Pos.Epoch || tk.Seq != t.Pos.Seq {
		return errNotTick
	}
	wasJSON := rr.fromJSON
	if !wasJSON {
		rr.enc.Reset() // unused while the state comes from frames
	}
	if rr.schema == nil || !rr.schema.Equal(compact.SchemaOfTick(tk)) {
		rr.schema = compact.SchemaOfTick(tk)
	}
	if err := rr.enc.FillTick(tk, rr.schema); err != nil {
		rr.enc.Reset()
		if wasJSON {
			rr.last = nil // its state, the encoder's, is gone
		}
		return err
	}
	if !wasJSON {
		rr.fromJSON = true
		rr.dec.Reset()
	}
	if rr.enc.CanDelta() && rr.last != nil {
		t.delta = rr.enc.AppendDelta(make([]byte, 0, 64))
	}
	rr.enc.Commit()
	t.json = data
	return nil
}

// Last returns the last accepted tick of room, nil if none. Its Pos, Serial, Header and Delta may be read; the
// rest only inside With.
func (r *Relay) Last(room string) *Tick {
	rr := r.room(room)
	if rr == nil {
		return nil
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.last
}

func (r *Relay) room(room string) *relayRoom {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rooms[room]
}

// With calls fn with the last accepted tick of room (nil if none) while holding the room: fn may read the
// tick's state and encodings, and must return quickly.
func (r *Relay) With(room string, fn func(t *Tick)) {
	rr := r.room(room)
	if rr == nil {
		fn(nil)
		return
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	fn(rr.last)
}

// LastTick returns the last accepted tick of room decoded, with its Tm-Applied header (Tick.Applied), for an
// owner that restores from it; ok is false when there is none.
func (r *Relay) LastTick(room string) (pos fence.Position, tk *protocol.Tick, applied string, ok bool) {
	r.With(room, func(t *Tick) {
		if t == nil {
			return
		}
		tk, _ = t.Decode()
		pos, applied, ok = t.Pos, t.Applied(), true
	})
	return pos, tk, applied, ok
}

// Silence is how long room has had no accepted tick here (counted from when the relay began following it, if
// none came since); ok is false when the relay does not follow room. The frames count, and an old owner's JSON
// ticks while the relay follows them; so does a tick accepted but not applied (a delta whose base this node
// missed): its owner is alive. It does not wait for the room's delivery in progress.
func (r *Relay) Silence(room string) (d time.Duration, ok bool) {
	rr := r.room(room)
	if rr == nil {
		return 0, false
	}
	return time.Duration(r.since() - rr.heard.Load()), true
}

// since is the time since the relay was made, by the monotonic clock: the unit of relayRoom.heard.
func (r *Relay) since() int64 { return int64(time.Since(r.born)) }

// Close unsubscribes from the bundles and every room.
func (r *Relay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for shard, sub := range r.bundles {
		if sub != nil {
			_ = sub.Unsubscribe()
			r.bundles[shard] = nil
		}
	}
	for room, rr := range r.rooms {
		r.closeLocked(rr)
		delete(r.rooms, room)
	}
}
