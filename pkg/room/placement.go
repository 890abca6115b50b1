package room

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

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

// Placement runs on every node: a stream leader elected anywhere (the JetStream advisory) wakes it at once, and it
// looks again every placementSettled (placementUnsettled until placement was seen settled once, and while it is
// not).
const (
	placementSettled   = 2 * time.Second
	placementUnsettled = 250 * time.Millisecond
	leaderElected      = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."
)

// placement keeps the leaders of the ownership streams off the nodes that own rooms until ctx ends.
func (m *Manager) placement(ctx context.Context) {
	for _, stream := range wire.PlacedStreams {
		sub, err := m.nc.Subscribe(leaderElected+stream, func(msg *nats.Msg) {
			var adv struct {
				Stream string `json:"stream"`
				Leader string `json:"leader"`
			}
			if json.Unmarshal(msg.Data, &adv) != nil || adv.Stream != stream {
				return
			}
			m.mu.Lock()
			m.leaders[stream] = adv.Leader
			m.noteTroubleLocked() // an election: the stream had no leader until now
			m.mu.Unlock()
			select {
			case m.placed <- struct{}{}:
			default:
			}
		})
		if err != nil {
			m.log.Warn("subscribe to stream leader advisories", "stream", stream, "err", err)
			continue
		}
		defer sub.Unsubscribe()
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.placed:
		case <-t.C:
		}
		m.keepPlacement(ctx)
		wait := placementSettled
		if !m.placementSettled() {
			wait = placementUnsettled
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// roomCounts is the number of rooms each node holds as the owners bucket shows them, with this node counted
// as holding at least the rooms it runs.
func (m *Manager) roomCountsLocked() map[string]int {
	rooms := map[string]int{}
	for _, h := range m.holders {
		rooms[h.val.Node]++
	}
	rooms[m.cfg.Node] = max(rooms[m.cfg.Node], len(m.owned))
	return rooms
}

// keepPlacement moves the leaders of the ownership streams (wire.PlacedStreams) off this node while it owns
// rooms, to a node that owns fewer (placementTarget), and records every placed stream's leader.
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
	rooms := m.roomCountsLocked()
	m.mu.Unlock()
	ownersLeader := ""
	for _, stream := range wire.PlacedStreams { // KV_owners first
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		leader, current, err := m.cluster.StreamLeader(sctx, stream)
		cancel()
		if err != nil {
			continue
		}
		m.mu.Lock()
		m.leaders[stream] = leader
		m.mu.Unlock()
		if stream == wire.KVStream(wire.OwnersBucket) {
			ownersLeader = leader
		}
		switch {
		case leader != m.cfg.Node:
		case owns:
			m.stepDown(ctx, stream, current, rooms)
		case ownersLeader != "" && ownersLeader != m.cfg.Node && rooms[ownersLeader] <= rooms[m.cfg.Node] &&
			slices.Contains(current, ownersLeader) && m.cluster.Routed(ownersLeader):
			// The other ownership streams join the owners stream's leader: one node leads them all and owns no
			// room, and every other node may own rooms (a node leading one of them owns none while others can).
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := m.cluster.StepDownStreamLeader(sctx, stream, ownersLeader)
			cancel()
			m.log.Info("moved stream leader to the owners stream's leader", "stream", stream, "to", ownersLeader, "err", err)
		}
	}
	m.noteSettled()
}

// stepDown hands the leadership of stream, led by this node, to placementTarget's pick, if any.
func (m *Manager) stepDown(ctx context.Context, stream string, current []string, rooms map[string]int) bool {
	pick := placementTarget(m.cfg.Node, current, rooms, m.cluster.Routed)
	if pick == "" {
		return false
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := m.cluster.StepDownStreamLeader(sctx, stream, pick)
	cancel()
	m.log.Info("moved stream leader off the owner's node", "stream", stream, "to", pick, "err", err)
	return err == nil
}

// placeBeforeTicking moves the ownership streams this node leads to a peer before a new term's first tick, and
// waits (at most placeWait) until they have moved. Whether this node leads a stream is its own server's Raft
// state: no request on the takeover's path unless there is something to move, and no lock either (a node taking
// 500 rooms over at once starts 500 terms together, and counting the rooms under the manager's lock for each
// made them wait for each other for 100-170 ms).
func (m *Manager) placeBeforeTicking(ctx context.Context) {
	began := time.Now()
	var locked time.Duration
	var moved []string
	checks := make([]time.Duration, len(wire.PlacedStreams)) // asking this node's server whether it leads each
	defer func() {
		if took := time.Since(began); took > 100*time.Millisecond {
			m.log.Warn("placement before the first tick was slow", "took", took.Round(time.Millisecond),
				"lock", locked.Round(time.Millisecond), "streams", wire.PlacedStreams, "leader_checks", checks, "moved", moved)
		}
	}()
	for i, stream := range wire.PlacedStreams {
		c := time.Now()
		leads := m.cluster.LeadsStream(stream)
		checks[i] = time.Since(c)
		if !leads {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		leader, current, err := m.cluster.StreamLeader(sctx, stream)
		cancel()
		if err != nil || leader != m.cfg.Node {
			continue
		}
		l := time.Now()
		m.mu.Lock()
		rooms := m.roomCountsLocked()
		m.mu.Unlock()
		locked += time.Since(l)
		if m.stepDown(ctx, stream, current, rooms) {
			moved = append(moved, stream)
		}
	}
	deadline := time.Now().Add(placeWait)
	for _, stream := range moved {
		for time.Now().Before(deadline) && ctx.Err() == nil && m.cluster.LeadsStream(stream) {
			sleepCtx(ctx, 10*time.Millisecond)
		}
	}
}

// placeWait bounds how long a new term waits for the stream leaders it moved away before its first tick.
const placeWait = time.Second

// placementSettled reports whether placement was seen settled once (see noteSettled).
func (m *Manager) placementSettled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settled
}

// noteSettled records, once, that ownership has settled as this node sees it: the owners watcher delivered its
// first replay, the lobby has a holder, every ownership stream has a known leader, and no leader holds a room
// while a node heard from holds fewer (the nodes move leaders only to such a node). Readiness waits for it, so
// that a node reports ready only once a kill of the lobby's owner is as fast as any later one.
func (m *Manager) noteSettled() {
	nodes := append(m.live.heard(m.cfg.contactLoss()), m.cfg.Node)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.settled || !m.replayed {
		return
	}
	if _, ok := m.holders[Lobby]; !ok {
		return
	}
	rooms := m.roomCountsLocked()
	for _, stream := range wire.PlacedStreams {
		leader := m.leaders[stream]
		if leader == "" {
			return
		}
		for _, n := range nodes {
			if n != leader && rooms[n] < rooms[leader] {
				return
			}
		}
	}
	m.settled = true
}

// Settled reports whether ownership was seen settled once on this node (noteSettled): the startup part of the
// node's readiness.
func (m *Manager) Settled() bool { return m.placementSettled() }
