package room

import (
	"context"
	"time"

	"github.com/tickmesh/tickmesh/pkg/wire"
)

// placementTarget picks the peer that should lead a stream now led by self: the current, routed peer that holds
// the fewest rooms, and only if it holds fewer than self. So a leader moves only to improve things, and never
// straight back: when every node owns rooms (two nodes each owning some, or a room on every node), the leaders
// stay where they are instead of changing every round, each change being an election that stalls the stream's
// writers. It returns "" for no move.
func placementTarget(self string, current []string, rooms map[string]int, routed func(string) bool) string {
	pick := ""
	for _, p := range current {
		if p == self || !routed(p) || rooms[p] >= rooms[self] {
			continue
		}
		if pick == "" || rooms[p] < rooms[pick] || rooms[p] == rooms[pick] && p < pick {
			pick = p
		}
	}
	return pick
}

// keepPlacement moves the leaders of the ownership streams (wire.PlacedStreams) off this node while it owns
// rooms, to a node that owns fewer (placementTarget). It also records whether this node leads the owners
// stream, which campaigns use to let other nodes win new rooms.
func (m *Manager) keepPlacement(ctx context.Context) {
	m.mu.Lock()
	// Only rooms the owners bucket also shows as ours: a superseded owner that has not noticed yet must not
	// move leaders around the real owner.
	owns := false
	for room, epoch := range m.owned {
		if h := m.holders[room]; h.val.Node == m.cfg.Node && h.val.Epoch == epoch {
			owns = true
		}
	}
	rooms := map[string]int{} // rooms held, by node, as the owners bucket shows them
	for _, h := range m.holders {
		rooms[h.val.Node]++
	}
	m.mu.Unlock()
	for _, stream := range wire.PlacedStreams {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		leader, current, err := m.cluster.StreamLeader(sctx, stream)
		cancel()
		if err != nil {
			continue
		}
		if stream == wire.KVStream(wire.OwnersBucket) {
			m.mu.Lock()
			m.leadsOwner = leader == m.cfg.Node
			m.mu.Unlock()
		}
		if leader != m.cfg.Node || !owns {
			continue
		}
		pick := placementTarget(m.cfg.Node, current, rooms, m.cluster.Routed)
		if pick == "" {
			continue
		}
		sctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		err = m.cluster.StepDownStreamLeader(sctx, stream, pick)
		cancel()
		m.log.Info("moved stream leader off the owner's node", "stream", stream, "to", pick, "err", err)
	}
}
