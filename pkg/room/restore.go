package room

import (
	"slices"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// restore picks the newest state this node can prove: the snapshot, or the last fenced tick relayed here when
// it is newer (same or later epoch, later tick): ticks carry the roster and the game's whole View, and the relay
// keeps the state its keyframes and deltas (or an old owner's JSON ticks) make, with the headers of the tick that
// made it. The roster's acks are the applied ones (the tick's Tm-Applied header, or the snapshot's roster), so
// that an event applied before is not applied again when the stream brings it; the acks players see start at the
// durable ones the tick showed, or that the snapshot's "durable" member lists.
func (t *term) restore(snap *Snapshot, snapRev uint64) {
	notDurable := t.restoreState(snap, snapRev)
	t.acks.restored(t.state, notDurable)
}

// restoreState sets t.state to the newest state this node can prove and returns the durable acks of its players
// whose applied ack is above them.
func (t *term) restoreState(snap *Snapshot, snapRev uint64) (notDurable map[string]uint64) {
	t.snapRev = snapRev
	var base *sim.Room
	if snap != nil {
		r, from, err := sim.Decode(t.game, t.cfg.Sim, snap.State)
		switch {
		case err != nil:
			// A state no owner of this room could have written: like a snapshot that does not decode at all, it
			// is ignored, and the takeover snapshot replaces it.
			t.log.Error("ignoring a snapshot whose state does not decode; the takeover snapshot replaces it", "err", err)
			snap = nil
		case from != "":
			// The room's name now maps to another game: the roster is kept, the game starts over.
			t.log.Warn("room changed games: the roster is kept and the game starts over", "from", from, "to", t.game.Info().Name)
		}
		if snap != nil {
			t.inputSeq = snap.InputSeq
			t.prevSnapIn = snap.InputSeq
			base = r
			t.state = r
			notDurable = snap.Durable
		}
	}
	if base == nil {
		t.state = sim.New(t.game, t.cfg.Sim, sim.Seed(t.room))
	}
	pos, tk, header, ok := t.relay.LastTick(t.room)
	if !ok {
		return
	}
	snapEpoch, snapTick := uint64(0), int64(-1)
	if snap != nil {
		snapEpoch, snapTick = snap.Epoch, base.Tick()
	}
	if pos.Epoch < snapEpoch || int64(pos.Seq) <= snapTick {
		return
	}
	if tk.Room != t.room {
		return // not usable: keep the snapshot
	}
	applied, err := wire.ParseApplied(header)
	if err != nil {
		t.log.Warn("the last relayed tick is not usable; restoring the snapshot", "err", err)
		return notDurable
	}
	r, fromTick, err := t.fromTick(tk, base, applied)
	if err != nil {
		t.log.Debug("the last relayed tick is not usable; restoring the snapshot", "err", err)
		return notDurable
	}
	t.state = r
	t.met.restoredFromTick.WithLabelValues(t.room).Inc()
	return fromTick
}

// fromTick rebuilds the room a tick describes, with applied (its Tm-Applied header) as the acks of the players
// it lists; it also returns their durable acks (the acks the tick shows). Tombstones are not in ticks: they come
// from base (the snapshot), plus one for every player of base that the tick no longer has.
func (t *term) fromTick(tk *protocol.Tick, base *sim.Room, applied map[string]uint64) (*sim.Room, map[string]uint64, error) {
	info := t.game.Info()
	v, err := tk.View(&info.Schema)
	if err != nil {
		return nil, nil, err
	}
	players := make([]sim.Player, 0, len(tk.Players))
	inTick := make(map[string]bool, len(tk.Players))
	notDurable := map[string]uint64{}
	for _, p := range tk.Players {
		inTick[p.ID] = true
		sp := sim.Player{ID: p.ID, Name: p.Name, Ack: p.Ack, Conn: p.Conn, Online: p.Online}
		if a, ok := applied[p.ID]; ok && a > p.Ack {
			sp.Ack = a
			notDurable[p.ID] = p.Ack
		}
		if !p.Online {
			sp.AwaySince = int64(p.Away)
		}
		players = append(players, sp)
	}
	var gone []sim.Tombstone
	if base != nil {
		for _, g := range base.Gone() {
			if !inTick[g.ID] {
				gone = append(gone, g)
			}
		}
		for _, p := range base.Players() {
			if !inTick[p.ID] {
				gone = append(gone, sim.Tombstone{ID: p.ID, Ack: p.Ack, Tick: int64(tk.Seq)})
			}
		}
	}
	slices.SortFunc(players, func(a, b sim.Player) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(gone, func(a, b sim.Tombstone) int { return strings.Compare(a.ID, b.ID) })
	gone = slices.CompactFunc(gone, func(a, b sim.Tombstone) bool { return a.ID == b.ID })
	r, err := sim.Restore(t.game, t.cfg.Sim, sim.Seed(t.room), int64(tk.Seq), players, gone, v)
	return r, notDurable, err
}
