package room

import (
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// acks is what the owner tells players: for each player, the highest seq of its events that are both applied
// (the room's roster: sim.Player.Ack) and durable, so that no later owner can lose them (docs/FAILOVER.md,
// "Acknowledged means applied and durable"). An event is durable once the owner has seen it in INPUTS (the
// stream's follower, or the replay at the start of a term), or once it was restored: a snapshot and a relayed
// tick carry what their owner knew durable, and the durable acks of a state restored from them start there.
//
// The owner applies an event as soon as either path brings it (core NATS is usually first), and the tick's
// roster is built with acks.of; the players whose applied ack is above their durable one go, with the applied
// ack, into the tick's Tm-Applied header and the snapshot's "durable" member, which is what a node restoring
// from either needs to tell the two apart.
//
// Owned by the owner loop (term.run); not safe for concurrent use. Its size is bounded by the room's players.
type acks struct {
	durable map[string]uint64 // player → highest seq known applied and durable (absent: none yet)
}

func newAcks() *acks { return &acks{durable: map[string]uint64{}} }

// of is the ack a tick shows for p: the highest seq both applied and durable. The call site is the one place a
// tick's roster takes an ack.
func (a *acks) of(p sim.Player) uint64 { return min(p.Ack, a.durable[p.ID]) }

// stored takes an event that INPUTS stored, after the room applied it (or ignored it as already applied): when
// the player's applied ack covers it, the player's durable ack reaches its seq.
//
// An event covered by the applied ack but ignored (a seq overtaken by a later one of the same player) counts too:
// acknowledging it tells the client nothing it could act on, and a new owner replaying the stream reaches at
// least that ack (the events a gateway sends for one room are stored in the order it received them, one batch
// at a time, so the join that made this event count is stored before it).
func (a *acks) stored(r *sim.Room, ev sim.Event) {
	if ev.Kind == sim.KindLeave {
		return // a leave carries no seq: it never moves an ack
	}
	p, ok := r.Player(ev.Player)
	if !ok || ev.Seq > p.Ack {
		return
	}
	if ev.Seq > a.durable[p.ID] {
		a.durable[p.ID] = ev.Seq
	}
}

// restored sets the durable acks of a room just restored: notDurable lists the players whose applied ack is
// above their durable one, with the durable one (a snapshot's "durable" member), and every other player's events
// up to its applied ack are durable (they were, for the owner that wrote the snapshot, or they were written before
// acks meant durable).
func (a *acks) restored(r *sim.Room, notDurable map[string]uint64) {
	clear(a.durable)
	for _, p := range r.Players() {
		d, ok := notDurable[p.ID]
		if !ok || d > p.Ack {
			d = p.Ack
		}
		a.durable[p.ID] = d
	}
}

// pending lists the players whose applied ack is above the durable one, sorted by id, with their applied ack:
// the tick's Tm-Applied header. It also forgets the durable acks of players the room no longer has.
func (a *acks) pending(r *sim.Room) []wire.Applied {
	players := r.Players()
	if len(a.durable) > len(players) {
		for id := range a.durable {
			if _, ok := r.Player(id); !ok {
				delete(a.durable, id)
			}
		}
	}
	var out []wire.Applied
	for _, p := range players {
		if p.Ack > a.durable[p.ID] {
			out = append(out, wire.Applied{Player: p.ID, Seq: p.Ack})
		}
	}
	return out // players are sorted by id
}

// notDurable is the snapshot's "durable" member: the players whose applied ack is above their durable one, with
// the durable one (nil when there are none).
func (a *acks) notDurable(r *sim.Room) map[string]uint64 {
	var out map[string]uint64
	for _, p := range r.Players() {
		if d := a.durable[p.ID]; p.Ack > d {
			if out == nil {
				out = map[string]uint64{}
			}
			out[p.ID] = d
		}
	}
	return out
}
