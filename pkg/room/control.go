package room

import (
	"context"
	"hash/fnv"
	"slices"
	"time"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Timing of the control loop.
const (
	controlInterval = 50 * time.Millisecond // the rules are evaluated this often, and at every change seen
	rankStep        = 250 * time.Millisecond
	balanceInterval = time.Second
	balanceSettle   = 5 * time.Second // a peer's session this young gets no room by balance (settledLocked)
	balanceCalm     = 3 * time.Second // no balance this soon after a sign of stream trouble (calmLocked)
	maxHandoffs     = 8               // rooms handed over per balance round
)

// control evaluates the ownership rules for every room this node knows until ctx ends: one loop for all rooms,
// woken by every change the owners watcher sees and every Want. The rooms are looked at again every
// controlInterval while a decision waits on time (a silence to last, an orphan's rank, a retry), and otherwise
// every sweepInterval only: a room whose holder's session is live needs nothing, and a node holding a thousand
// of them should not pay for looking at them twenty times a second. Silent sessions are looked for every
// controlInterval (per node, not per room). The per-room work it decides on (an acquisition and the term that
// follows) runs in its own goroutine (startLocked); sessions to fence in another.
func (m *Manager) control(ctx context.Context) {
	t := time.NewTicker(controlInterval)
	defer t.Stop()
	var swept time.Time
	pending := true
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			full = pending || now.Sub(swept) >= sweepInterval
		case <-m.kick:
			full = true
		}
		now := time.Now()
		if full {
			swept = now
		}
		pending = m.evaluate(ctx, now, full)
	}
}

// sweepInterval is how often every room is looked at when no decision waits on time.
const sweepInterval = 500 * time.Millisecond

// evaluate applies the rules once: to sessions always, to rooms when full. It reports whether a decision waits
// on time. Nothing is decided before the owners watcher's first replay is complete: the replay delivers keys in
// the order of their last writes, so rooms' leases (written when they changed hands) come before the sessions
// (renewed every RenewInterval) that hold them, and a node that just started would see live owners' rooms as
// orphans for as long as its replay takes.
func (m *Manager) evaluate(ctx context.Context, now time.Time, full bool) (pending bool) {
	majority := m.cluster.HasMajority() && m.live.contact()
	m.mu.Lock()
	defer m.mu.Unlock()
	sess := m.sess
	if sess == nil || !sess.Valid() || !m.replayed || ctx.Err() != nil {
		return true
	}
	m.fenceSilentLocked(ctx, now, majority)
	m.balanceLocked(now, majority)
	if !full {
		return false
	}
	for room := range m.wanted {
		pending = m.decideLocked(room, now, sess, majority) || pending
	}
	for room := range m.holders {
		if m.wanted[room] == nil {
			pending = m.decideLocked(room, now, sess, majority) || pending
		}
	}
	return pending
}

// decideLocked starts an acquisition of room when the rules allow one now (docs/FAILOVER.md):
//   - nobody holds it and this node serves it: create it (for the node that owns the fewest rooms);
//   - its lease names this node's session but no term runs it here: adopt it (a handoff, a placed creation);
//   - its holder's session is gone (fenced, expired or replaced): take it over, this node first if it follows
//     the room's ticks, the others in the order of a hash of the room and their names (so that the rooms of a
//     dead node spread over the survivors), nodes leading an ownership stream last;
//   - a lease renewed by itself (an older version's) that has gone silent, or a corrupt one: take it over, as
//     that version did.
func (m *Manager) decideLocked(room string, now time.Time, sess *lease.Session, majority bool) (pending bool) {
	if m.active[room] != nil {
		return false
	}
	if now.Before(m.retryAt[room]) {
		return true
	}
	wanted := m.wanted[room] != nil
	h, held := m.holders[room]
	switch {
	case !held:
		if !wanted {
			return false
		}
		if !majority {
			return true
		}
		m.startLocked(room, howCreate, h)
	case h.corrupt:
		if !wanted {
			return false
		}
		if !majority || now.Sub(h.seen) <= m.cfg.StealAfter {
			return true
		}
		m.startLocked(room, howTakeover, h)
	case h.val.Session == "":
		switch {
		case h.val.Node == m.cfg.Node:
			if wanted {
				m.startLocked(room, howReclaim, h)
			}
		case !wanted:
		case majority && m.holderSilent(room, h):
			m.startLocked(room, howTakeover, h)
		default:
			return true // its silence may last
		}
	case h.val.Node == m.cfg.Node && h.val.Session == sess.ID():
		if h.val.Epoch > m.ran[room] {
			m.startLocked(room, howAdopt, h)
		} else {
			// A term of this very lease ended here and could not release it: never run an epoch twice (its tick
			// numbers would start over), take it again at the next one.
			m.startLocked(room, howReclaim, h)
		}
	case m.sessionLiveLocked(h.val.Node, h.val.Session):
		if !h.orphanAt.IsZero() {
			h.orphanAt = time.Time{}
			m.holders[room] = h
		}
	default:
		if h.orphanAt.IsZero() {
			h.orphanAt = now
			m.holders[room] = h
		}
		if !majority || now.Before(h.orphanAt.Add(m.adoptDelayLocked(room))) {
			return true
		}
		how := howTakeover
		if h.val.Node == m.cfg.Node {
			how = howReclaim
		}
		m.startLocked(room, how, h)
	}
	return false
}

// sessionLiveLocked reports whether node's session id is its current one as the owners bucket shows it.
func (m *Manager) sessionLiveLocked(node, id string) bool {
	if node == m.cfg.Node && m.sess != nil && m.sess.ID() == id {
		return m.sess.Err() == nil
	}
	s, ok := m.sessions[node]
	return ok && s.val.Session == id
}

// adoptDelayLocked is how long after seeing room orphaned this node waits before taking it over: 0 when it
// follows the room's ticks (it has the freshest state, and its players are there), or when it is the only
// candidate; otherwise rankStep times its rank among the candidates in the room's hash order (one rank ahead of
// nothing: the followers); and the nodes leading an ownership stream come after every other candidate.
func (m *Manager) adoptDelayLocked(room string) time.Duration {
	leader := m.leadsPlacedLocked()
	_, following := m.relay.Silence(room)
	cands := m.candidatesLocked(true)
	n := len(cands)
	if n == 1 && len(m.candidatesLocked(false)) < 2 {
		n = 2 // it knows of no other live session (a node just started, its view incomplete): not "the only candidate"
	}
	return adoptDelay(following, leader, hrwRank(room, m.cfg.Node, cands), n, m.cfg.LeaderDefer)
}

// adoptDelay is adoptDelayLocked's rule for a node at rank among n candidates (rank n: not a candidate). The
// head start a non-follower gives the followers is for another candidate: the only candidate waits for no one
// (with three nodes, the one survivor that leads no stream, whatever room it follows).
func adoptDelay(following, leader bool, rank, n int, leaderDefer time.Duration) time.Duration {
	switch {
	case following && !leader:
		return 0
	case leader && n > 0:
		return time.Duration(n+1)*rankStep + leaderDefer
	case n == 1 && rank == 0:
		return 0
	}
	return time.Duration(rank+1) * rankStep
}

// candidatesLocked lists the nodes that may own rooms now as this node sees them: those with a session that
// were heard from within ContactLoss, this node included while its session is valid; without the nodes that
// lead an ownership stream when others remain (noLeaders).
func (m *Manager) candidatesLocked(noLeaders bool) []string {
	heard := map[string]bool{m.cfg.Node: m.sess != nil && m.sess.Valid()}
	for _, n := range m.live.heard(m.cfg.contactLoss()) {
		_, ok := m.sessions[n]
		heard[n] = ok
	}
	var all, nonLeaders []string
	for n, ok := range heard {
		if !ok {
			continue
		}
		all = append(all, n)
		if !m.leadsPlacedNodeLocked(n) {
			nonLeaders = append(nonLeaders, n)
		}
	}
	slices.Sort(all)
	slices.Sort(nonLeaders)
	if noLeaders && len(nonLeaders) > 0 {
		return nonLeaders
	}
	return all
}

// hrwRank is self's position (0 first) among nodes in room's rendezvous-hash order (highest hash first), or
// len(nodes) when self is not among them.
func hrwRank(room, self string, nodes []string) int {
	mine, ok := uint64(0), false
	for _, n := range nodes {
		if n == self {
			mine, ok = hrw(room, n), true
		}
	}
	if !ok {
		return len(nodes)
	}
	rank := 0
	for _, n := range nodes {
		if h := hrw(room, n); n != self && (h > mine || h == mine && n < self) {
			rank++
		}
	}
	return rank
}

func hrw(room, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(room))
	h.Write([]byte{0})
	h.Write([]byte(node))
	return h.Sum64()
}

// leadsPlacedLocked reports whether this node leads the owners or snapshots stream (as last learnt).
func (m *Manager) leadsPlacedLocked() bool { return m.leadsPlacedNodeLocked(m.cfg.Node) }

func (m *Manager) leadsPlacedNodeLocked(node string) bool {
	return m.leaders[wire.KVStream(wire.OwnersBucket)] == node || m.leaders[wire.KVStream(wire.SnapshotsBucket)] == node
}

// leadsPlaced reports whether this node leads the owners or snapshots stream (as last learnt).
func (m *Manager) leadsPlaced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leadsPlacedLocked()
}

// otherCandidate reports whether another node than this one and holder could own a room now: it was heard from
// within ContactLoss and is routed.
func (m *Manager) otherCandidate(holder string) bool {
	for _, n := range m.live.heard(m.cfg.contactLoss()) {
		if n != holder && n != m.cfg.Node && m.cluster.Routed(n) {
			return true
		}
	}
	return false
}

// placeNew picks the node a room should be owned by now: among the candidates (nodes leading an ownership
// stream only when no other is left) but except, the one holding the fewest rooms, this node on a tie, else the
// first in the room's hash order. It returns the node and its session id ("" for this node; "", "" for none).
func (m *Manager) placeNew(room, except string) (string, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cands := slices.DeleteFunc(m.candidatesLocked(false), func(n string) bool { return n == except })
	if others := slices.DeleteFunc(slices.Clone(cands), m.leadsPlacedNodeLocked); len(others) > 0 {
		cands = others
	}
	if len(cands) == 0 {
		if except == m.cfg.Node {
			return "", ""
		}
		return m.cfg.Node, ""
	}
	counts := m.countsLocked()
	best := ""
	for _, n := range cands {
		switch {
		case best == "":
			best = n
		case counts[n] < counts[best]:
			best = n
		case counts[n] == counts[best] && (n == m.cfg.Node || best != m.cfg.Node && hrw(room, n) > hrw(room, best)):
			best = n
		}
	}
	if best == m.cfg.Node {
		return best, ""
	}
	return best, m.sessions[best].val.Session
}

// calmLocked reports whether the ownership streams take writes steadily enough for a handoff: this node's session
// was renewed within the last two renewal periods, and nothing went wrong with them for balanceCalm (no failed
// renewal or snapshot batch, no leader elected). A handoff stops the room's ticks until its final snapshot is
// written and the lease rewritten; in the seconds after a node comes back from a freeze or a partition the
// streams can lose their leaders for a while, and a handoff then leaves the room without ticks until the writes
// give up.
func (m *Manager) calmLocked(now time.Time) bool {
	if m.sess == nil || now.Sub(m.sess.Confirmed()) > 2*m.cfg.RenewInterval {
		return false
	}
	return now.Sub(m.trouble) >= balanceCalm
}

// noteTrouble records a sign that the ownership streams take no writes now (see calmLocked).
func (m *Manager) noteTrouble() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.noteTroubleLocked()
}

func (m *Manager) noteTroubleLocked() { m.trouble = time.Now() }

// settledLocked reports whether node's current session has been known here for balanceSettle. A node that has
// just started, or come back from a freeze or a partition, gets no room by balance before that: its return
// comes with route churn that can leave the ownership streams without a leader for a second or two, and its
// owners watcher may still be catching up, while a handoff stops the room's ticks until the final snapshot is
// written and the receiver adopts the lease.
func (m *Manager) settledLocked(node string, now time.Time) bool {
	s, ok := m.sessions[node]
	return ok && now.Sub(s.opened) >= balanceSettle
}

// countsLocked is the number of rooms each node holds under a live session, as the owners bucket shows them.
func (m *Manager) countsLocked() map[string]int {
	counts := map[string]int{}
	for _, h := range m.holders {
		if h.val.Session == "" || m.sessionLiveLocked(h.val.Node, h.val.Session) {
			counts[h.val.Node]++
		}
	}
	return counts
}

// balanceLocked hands rooms over to other nodes, every balanceInterval, while this node owns more than its fair
// share: the rooms of the cluster divided by the candidates (nodes with a session, heard from, not leading an
// ownership stream while others remain), rounded up; a node that leads such a stream, with others left, has a
// share of none. A node that joins thus takes rooms from the others. Each handoff ends the term with
// errHandoff: the owner writes its final snapshot and rewrites the lease for the other node, which continues at
// the next tick. At most maxHandoffs rooms per round, and only to nodes whose session has settled.
func (m *Manager) balanceLocked(now time.Time, majority bool) {
	if !majority || now.Sub(m.balanced) < balanceInterval || !m.calmLocked(now) {
		return
	}
	m.balanced = now
	cands := m.candidatesLocked(true)
	if len(cands) < 2 {
		return
	}
	counts := m.countsLocked()
	share := (len(m.holders) + len(cands) - 1) / len(cands)
	if !slices.Contains(cands, m.cfg.Node) {
		share = 0 // this node leads an ownership stream: it owns nothing while others can
	}
	excess := len(m.owned) - share
	rooms := make([]string, 0, len(m.owned))
	for room := range m.owned {
		rooms = append(rooms, room)
	}
	slices.Sort(rooms)
	self := slices.Contains(cands, m.cfg.Node)
	handed := 0
	for _, room := range rooms {
		if excess <= 0 || handed >= maxHandoffs {
			break
		}
		dest := ""
		for _, n := range cands {
			if n != m.cfg.Node && m.settledLocked(n, now) && (dest == "" || counts[n] < counts[dest]) {
				dest = n
			}
		}
		if dest == "" || self && counts[dest]+1 > share {
			break // nobody below its share
		}
		stop := m.stopTerm[room]
		if stop == nil {
			continue
		}
		counts[dest]++
		excess--
		handed++
		m.log.Info("handing room over for balance", "room", room, "to", dest, "share", share, "owned", len(m.owned))
		stop(errHandoff{Dest: dest})
	}
}
