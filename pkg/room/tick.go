package room

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Interest reports whether anything in the cluster subscribes to a subject (pkg/mesh implements it with the
// server's own subscription interest, which includes the other nodes' through the routes). An owner publishes a
// room's protocol 1 JSON ticks only while something listens.
type Interest interface {
	Interest(subject string) bool
}

// publish sends the current state as the tick of this term (its epoch): as frames (a keyframe at the term's
// first tick, every second after it and when a relay asks; a delta every tick but the first) in the node's tick
// bundles (bundler.go), which relays follow, and on the room's frames subject while something subscribes there;
// and as JSON on its tick subject while something listens there. The players see the acks that are
// applied and durable (acks.of), in every encoding; the players whose applied ack is above that go in the
// tick's Tm-Applied (a field of the bundle entry, a header of the other messages), for a node that restores the
// room from this tick (its relay keeps it with the state the frames make).
func (t *term) publish(now time.Time) error {
	b := &t.tick
	h := compact.Header{Room: t.room, Owner: t.cfg.Node, Epoch: t.lease.Epoch(), Seq: uint64(t.state.Tick()), Time: now.UnixMilli()}
	if err := b.fill(h, t.state, t.acks); err != nil {
		return err
	}
	applied := ""
	pending := t.acks.pending(t.state)
	if len(pending) > 0 {
		applied = wire.EncodeApplied(pending)
	}
	t.noteUnstored(len(pending) > 0, now)
	enc := b.enc
	keyAt := 0
	b.data = b.data[:0]
	switch {
	case !enc.CanDelta():
		b.data = enc.AppendKeyframe(b.data)
	default:
		b.data = enc.AppendDelta(b.data)
		if b.sync.Swap(false) || h.Seq >= b.keySeq+uint64(t.cfg.TickRate) {
			keyAt = len(b.data)
			b.data = enc.AppendKeyframe(b.data)
		}
	}
	sent := time.Now()
	t.bundles.add(&wire.BundledTick{Room: t.room, Epoch: h.Epoch, Seq: h.Seq, Time: sent.UnixMicro(), KeyAt: keyAt, Applied: applied, Data: b.data})
	enc.Commit()
	if keyAt > 0 || b.data[0] == compact.Keyframe {
		b.keySeq = h.Seq
	}
	b.lookInterest(t, sent)
	if b.framesHeard {
		// A tool, or a relay from before bundles, follows the room's own frames subject.
		m := wire.FramesMsg(t.room, h.Epoch, h.Seq, b.data, keyAt)
		if applied != "" {
			m.Header[wire.HeaderApplied] = []string{applied}
		}
		wire.StampTickTime(m, sent)
		if err := t.nc.PublishMsg(m); err != nil {
			return err
		}
	}
	// The bundler and the NATS client copied the data: the next tick may reuse it.
	if b.jsonHeard {
		if err := t.publishJSON(sent, applied); err != nil {
			return err
		}
		t.series.jsonTicks.Inc()
	}
	hist := t.series.inputToTick
	for _, at := range t.waiting {
		hist.Observe(sent.Sub(at).Seconds())
	}
	t.waiting = t.waiting[:0]
	return nil
}

// publishJSON publishes the tick just published as frames as protocol 1 JSON, marked so that relays speaking
// protocol 2 leave it for the frames, with the same Tm-Applied value (applied; "" for none): a relay from before
// protocol 2 keeps it for a takeover.
func (t *term) publishJSON(sent time.Time, applied string) error {
	b := &t.tick
	b.enc.Current().Tick(&b.msg)
	data, err := protocol.Encode(&b.msg)
	if err != nil {
		return err
	}
	m := wire.TickMsg(t.room, b.msg.Epoch, b.msg.Seq, data)
	m.Header[wire.HeaderFrames] = []string{"1"}
	if applied != "" {
		m.Header[wire.HeaderApplied] = []string{applied}
	}
	wire.StampTickTime(m, sent)
	return t.nc.PublishMsg(m)
}

// keyframeRequested makes a relay's request for a keyframe (wire.SyncSubject) add one to the next tick of the
// room's term, if this node runs one. One subscription per node (Run) serves every room: requests are rare, and
// a subscription of each room's own would cost a goroutine and the cluster's interest in a subject per room.
func (m *Manager) keyframeRequested(msg *nats.Msg) {
	room, ok := wire.SyncRoom(msg.Subject)
	if !ok {
		return
	}
	if t, ok := m.running.Load(room); ok {
		t.(*term).tick.sync.Store(true)
	}
}

// tickBuf builds a room's ticks, reusing its storage from one tick to the next (the owner loop's only, but for
// sync, which the sync subscription sets).
type tickBuf struct {
	enc    *compact.Encoder // one per term: its first tick is a keyframe, its slots the term's
	schema *compact.Schema
	game   string
	view   game.View
	roster []compact.Roster
	data   []byte
	msg    protocol.Tick
	keySeq uint64 // the last tick published with a keyframe
	// Whether something subscribes to the room's own frames subject and to its JSON tick subject, as looked up
	// at heardAt: the lookups cost more than a tick's frames, so they are made every interestEvery.
	framesHeard, jsonHeard bool
	heardAt                time.Time
	sync                   atomic.Bool // a relay asked for a keyframe
}

// interestEvery is how often an owner looks up who listens to its room's own frames and JSON subjects: a
// subscriber there (a relay from before bundles, a tool) gets them from at most this long after it subscribed.
const interestEvery = 250 * time.Millisecond

// lookInterest refreshes framesHeard and jsonHeard when the last lookup is interestEvery old at now (a term's
// first tick looks them up: heardAt is zero).
func (b *tickBuf) lookInterest(t *term, now time.Time) {
	if now.Sub(b.heardAt) < interestEvery {
		return
	}
	b.heardAt = now
	b.framesHeard = t.interest == nil || t.interest.Interest(wire.FramesSubject(t.room))
	b.jsonHeard = t.interest == nil || t.interest.Interest(wire.TickSubject(t.room))
}

// fill makes the encoder's current state the tick of room r: the roster's members, each player's ack as a says,
// and the game's View.
func (b *tickBuf) fill(h compact.Header, r *sim.Room, a *acks) error {
	if b.enc == nil {
		b.enc = compact.NewEncoder()
	}
	info := r.Game().Info()
	if b.schema == nil || b.game != info.Name {
		b.schema, b.game = compact.SchemaOf(info.Name, &info.Schema), info.Name
	}
	r.View(&b.view)
	b.roster = b.roster[:0]
	for _, p := range r.Players() {
		rp := compact.Roster{ID: p.ID, Name: p.Name, Ack: a.of(p), Conn: p.Conn, Online: p.Online}
		if !p.Online {
			rp.Away = uint64(p.AwaySince)
		}
		b.roster = append(b.roster, rp)
	}
	return b.enc.Fill(h, b.schema, b.roster, &b.view)
}
