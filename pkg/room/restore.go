package room

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Seed is the simulation seed of a room: derived from its name so every owner agrees.
func Seed(room string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("tickmesh-room:" + room))
	return h.Sum64()
}

// restore picks the newest state this node can prove: the snapshot, or the last fenced tick relayed here when
// it is newer (same or later epoch, later tick): ticks carry the full game state.
func (t *term) restore(snap *Snapshot, snapRev uint64) error {
	t.snapRev = snapRev
	var base *game.State
	if snap != nil {
		base = snap.State
		t.inputSeq = snap.InputSeq
		t.prevSnapIn = snap.InputSeq
		if err := base.Validate(t.cfg.Game); err != nil {
			return fmt.Errorf("restore snapshot of %s: %w", t.room, err)
		}
		t.state = base.Clone()
	} else {
		t.state = game.NewState(Seed(t.room))
	}
	last := t.relay.Last(t.room)
	if last == nil {
		return nil
	}
	snapEpoch, snapTick := uint64(0), int64(-1)
	if snap != nil {
		snapEpoch, snapTick = snap.Epoch, snap.State.Tick
	}
	if last.Pos.Epoch < snapEpoch || int64(last.Pos.Seq) <= snapTick {
		return nil
	}
	tk, err := last.Decode()
	if err != nil || tk.Room != t.room {
		return nil // not usable: keep the snapshot
	}
	s, err := stateFromTick(t.room, tk, base)
	if err != nil || s.Validate(t.cfg.Game) != nil {
		return nil
	}
	t.state = s
	t.met.restoredFromTick.WithLabelValues(t.room).Inc()
	return nil
}

// stateFromTick rebuilds the game state a tick describes. Tombstones are not in ticks: they come from base
// (the snapshot), plus one for every player of base that the tick no longer has.
func stateFromTick(room string, t *protocol.Tick, base *game.State) (*game.State, error) {
	s := game.NewState(Seed(room))
	s.Tick = int64(t.Seq)
	inTick := make(map[string]bool, len(t.Players))
	for _, p := range t.Players {
		inTick[p.ID] = true
		gp := game.Player{
			ID: p.ID, Name: p.Name, X: int(p.X), Y: int(p.Y), VX: int(p.VX), VY: int(p.VY),
			Keys: game.Keys(p.Keys), Ack: p.Ack, Conn: p.Conn, Online: p.Online,
		}
		if !p.Online {
			gp.AwaySince = int64(p.Away)
		}
		if float64(gp.X) != p.X || float64(gp.Y) != p.Y {
			return nil, fmt.Errorf("restore from tick: player %s has a non-integer position", p.ID)
		}
		s.Players = append(s.Players, gp)
	}
	if base != nil {
		for _, g := range base.Gone {
			if !inTick[g.ID] {
				s.Gone = append(s.Gone, g)
			}
		}
		for _, p := range base.Players {
			if !inTick[p.ID] {
				s.Gone = append(s.Gone, game.Tombstone{ID: p.ID, Ack: p.Ack, Tick: s.Tick})
			}
		}
	}
	sortState(s)
	return s, nil
}

func sortState(s *game.State) {
	slices.SortFunc(s.Players, func(a, b game.Player) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Gone, func(a, b game.Tombstone) int { return strings.Compare(a.ID, b.ID) })
	s.Gone = slices.CompactFunc(s.Gone, func(a, b game.Tombstone) bool { return a.ID == b.ID })
}
