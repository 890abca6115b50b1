package room

import (
	"time"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// publish sends the current state as the tick of this term (its epoch) on the room's tick subject.
func (t *term) publish(now time.Time) error {
	tk := tickOf(t.room, t.lease.Epoch(), t.cfg.Node, now, t.cfg.Game, t.state)
	data, err := protocol.Encode(&tk)
	if err != nil {
		return err
	}
	m := wire.TickMsg(t.room, tk.Epoch, tk.Seq, data)
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

// tickOf encodes state as the tick message of an owner.
func tickOf(room string, epoch uint64, owner string, now time.Time, cfg game.Config, s *game.State) protocol.Tick {
	t := protocol.Tick{
		Room: room, Epoch: epoch, Seq: uint64(s.Tick), Owner: owner, Time: now.UnixMilli(),
		Width: float64(cfg.Width), Height: float64(cfg.Height),
		Players: make([]protocol.TickPlayer, len(s.Players)),
	}
	for i, p := range s.Players {
		tp := protocol.TickPlayer{
			ID: p.ID, Name: p.Name, X: float64(p.X), Y: float64(p.Y), VX: float64(p.VX), VY: float64(p.VY),
			Keys: uint8(p.Keys), Ack: p.Ack, Conn: p.Conn, Online: p.Online,
		}
		if !p.Online {
			tp.Away = uint64(p.AwaySince)
		}
		t.Players[i] = tp
	}
	return t
}
