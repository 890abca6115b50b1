package room

import (
	"time"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// publish sends the current state as the tick of this term (its epoch) on the room's tick subject. The players
// see the acks that are applied and durable (acks.of); the players whose applied ack is above that go in the
// Tm-Applied header, for a node that restores the room from this tick.
func (t *term) publish(now time.Time) error {
	t.tick.fill(t.room, t.lease.Epoch(), t.cfg.Node, now, t.state, t.acks)
	data, err := protocol.Encode(&t.tick.msg)
	if err != nil {
		return err
	}
	m := wire.TickMsg(t.room, t.tick.msg.Epoch, t.tick.msg.Seq, data)
	if pending := t.acks.pending(t.state); len(pending) > 0 {
		m.Header[wire.HeaderApplied] = []string{wire.EncodeApplied(pending)}
	}
	sent := time.Now()
	wire.StampTickTime(m, sent)
	if err := t.nc.PublishMsg(m); err != nil {
		return err // the events stay waiting for the next tick, which carries them too
	}
	h := t.met.inputToTick.WithLabelValues(t.room)
	for _, at := range t.waiting {
		h.Observe(sent.Sub(at).Seconds())
	}
	t.waiting = t.waiting[:0]
	return nil
}

// tickBuf builds a room's tick messages, reusing its storage from one tick to the next (the owner loop's only).
type tickBuf struct {
	view   game.View
	schema game.Schema
	msg    protocol.Tick
	nums   []float64
}

// fill makes b.msg the tick of room r: the roster's members, each player's ack as a says, and the game's View,
// with the names of its schema.
func (b *tickBuf) fill(room string, epoch uint64, owner string, now time.Time, r *sim.Room, a *acks) {
	r.View(&b.view)
	b.schema = r.Game().Info().Schema
	v := &b.view
	n := len(v.Globals)
	for _, p := range v.Players {
		n += len(p.Fields)
	}
	for _, l := range v.Objects {
		for _, o := range l {
			n += len(o.Fields)
		}
	}
	if cap(b.nums) < n {
		b.nums = make([]float64, n)
	}
	nums := b.nums[:n]
	take := func(vals []int64) []float64 {
		out := nums[:len(vals):len(vals)]
		for i, x := range vals {
			out[i] = float64(x)
		}
		nums = nums[len(vals):]
		return out
	}
	m := &b.msg
	*m = protocol.Tick{Room: room, Epoch: epoch, Seq: uint64(r.Tick()), Owner: owner, Time: now.UnixMilli(),
		Schema: &b.schema, Globals: take(v.Globals), Players: m.Players[:0], Objects: m.Objects[:0]}
	for i, p := range r.Players() {
		tp := protocol.TickPlayer{ID: p.ID, Name: p.Name, Ack: a.of(p), Conn: p.Conn, Online: p.Online}
		if !p.Online {
			tp.Away = uint64(p.AwaySince)
		}
		if i < len(v.Players) {
			tp.Fields = take(v.Players[i].Fields)
		}
		m.Players = append(m.Players, tp)
	}
	for k, l := range v.Objects {
		if k < cap(m.Objects) {
			m.Objects = m.Objects[:k+1]
			m.Objects[k] = m.Objects[k][:0]
		} else {
			m.Objects = append(m.Objects, nil)
		}
		for _, o := range l {
			m.Objects[k] = append(m.Objects[k], protocol.TickObject{ID: o.ID, Fields: take(o.Fields)})
		}
	}
}
