package room

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// session is this node's current session, nil while none is open.
func (m *Manager) session() *lease.Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sess
}

// keepSession opens this node's session and renews it every RenewInterval until ctx ends, opening a new one when
// it is lost (fenced by a peer after this node went silent, or past its deadline): one replicated write per
// renewal period, whatever the number of rooms held. Run closes the last session after the terms ended.
func (m *Manager) keepSession(ctx context.Context) {
	for ctx.Err() == nil {
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		sent := time.Now()
		s, err := lease.OpenSession(octx, m.owners, m.js, wire.OwnersBucket, m.cfg.Node, m.lcfg)
		cancel()
		if err != nil {
			m.log.Debug("open session", "err", err)
			if !sleepCtx(ctx, 250*time.Millisecond) {
				return
			}
			continue
		}
		m.live.confirmed(sent)
		m.metrics.sessions.Inc()
		m.log.Info("session opened", "session", s.ID())
		m.mu.Lock()
		m.sess = s
		m.wakeLocked()
		m.mu.Unlock()
		cause := m.renewSession(ctx, s)
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("session lost: its rooms are stopped, a new session starts", "session", s.ID(), "cause", cause)
	}
}

// renewSession renews s every RenewInterval until ctx ends or s is lost, and returns why it was lost.
func (m *Manager) renewSession(ctx context.Context, s *lease.Session) error {
	t := time.NewTicker(m.cfg.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.Done():
			return s.Err()
		case <-t.C:
		}
		m.stallAll() // an injected freeze stalls renewals as it would in a frozen process
		rctx, cancel := context.WithTimeout(ctx, 2*m.cfg.RenewInterval)
		start := time.Now()
		err := s.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			m.live.confirmed(start)
			m.metrics.renewSeconds.WithLabelValues("").Observe(time.Since(start).Seconds())
		case errors.Is(err, lease.ErrLost):
			return err
		default:
			m.metrics.renewErrors.WithLabelValues("").Inc()
			m.noteTrouble()
			if !s.Valid() && ctx.Err() == nil {
				// Past its deadline the session guards nothing any more (its rooms stopped at the deadline):
				// start a new one, under which they can be reclaimed.
				s.Abandon(lease.ErrExpired)
				return lease.ErrExpired
			}
		}
	}
}

// fenceSilentLocked starts fencing the session of every node that holds rooms and has gone silent (see
// sessionSilentLocked), at most one fence per node at a time.
func (m *Manager) fenceSilentLocked(ctx context.Context, now time.Time, majority bool) {
	if !majority || m.nodeFault().NoFence {
		return
	}
	for node, s := range m.sessions {
		// The cheapest test first: most sessions renewed within StealAfter, the least silence that counts.
		if node == m.cfg.Node || now.Sub(s.seen) <= m.cfg.StealAfter || now.Before(m.fencing[node]) {
			continue
		}
		if !m.holdsRoomsLocked(node, s.val.Session) || !m.sessionSilentLocked(node, s, now) {
			continue
		}
		m.fencing[node] = now.Add(time.Hour) // in flight
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.fence(ctx, node, s)
		}()
	}
}

// holdsRoomsLocked reports whether node holds a room under session id, as the owners bucket shows it.
func (m *Manager) holdsRoomsLocked(node, id string) bool {
	for _, h := range m.holders {
		if h.val.Node == node && h.val.Session == id {
			return true
		}
	}
	return false
}

// sessionSilentLocked reports whether node, which holds rooms under session s, has been silent long enough for
// its session to be fenced: no renewal of it seen, and no tick of its rooms (those this node follows, and the
// tick count in its beacons), for StealAfter once its node is no longer routed and HangAfter while it still is.
// A stream-leader election stops renewals but not ticks; a crash, a freeze or a partition stops both.
func (m *Manager) sessionSilentLocked(node string, s peerSession, now time.Time) bool {
	routed := m.cluster.Routed(node)
	if now.Sub(s.seen) <= m.cfg.renewSilence(routed) {
		return false
	}
	quiet := m.cfg.tickSilence(routed)
	if _, ticks, ok := m.live.silence(node); ok && ticks <= quiet {
		return false
	}
	for room, h := range m.holders {
		if h.val.Node != node || h.val.Session != s.val.Session {
			continue
		}
		if d, following := m.relay.Silence(room); following && d <= quiet {
			return false
		}
	}
	return true
}

// fence ends node's silent session by deleting its key at the revision this node last saw: a CAS, which fails if
// the session renewed meanwhile (this node's view was behind). Its rooms are then orphans, which the survivors
// take over; this node tells them at once (wire.FencedSubject) rather than leave them to their owners watchers,
// which may lag. After a failed fence the key is read directly and the node left alone for a moment.
func (m *Manager) fence(ctx context.Context, node string, s peerSession) {
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	err := lease.FenceSession(fctx, m.owners, node, s.rev)
	cancel()
	retry := time.Time{}
	if err != nil {
		m.log.Debug("fence session", "node", node, "revision", s.rev, "err", err)
		retry = time.Now().Add(2 * controlInterval) // soon: a peer fenced it, and this node's view is a moment behind
		if errors.Is(err, lease.ErrTaken) {
			m.refreshSession(ctx, node)
		}
	} else {
		m.metrics.sessionsFenced.Inc()
		m.log.Info("fenced the session of a silent node", "node", node, "session", s.val.Session, "revision", s.rev)
	}
	m.mu.Lock()
	if retry.IsZero() {
		delete(m.fencing, node)
		if cur, ok := m.sessions[node]; ok && cur.rev == s.rev {
			delete(m.sessions, node) // gone: its rooms are orphans now, without waiting for the watcher
		}
	} else {
		m.fencing[node] = retry
	}
	m.wakeLocked()
	m.mu.Unlock()
	if err == nil {
		if perr := m.nc.Publish(wire.FencedSubject, []byte(node)); perr != nil {
			m.log.Debug("publish fence notice", "node", node, "err", perr)
		}
	}
}

// fenceNotices reads, until ctx ends, the notices of the nodes that fenced a session (wire.FencedSubject): for
// each node named that this node still sees a session of, it reads the session key directly (readFenced), so
// that a session gone from the bucket leaves this node's view at once and its rooms become orphans here too,
// without waiting for an owners watcher that may lag (its consumer's server may be the node that died). The
// survivors take a dead node's rooms over in hash order, 250 ms a rank, so a survivor that learnt of the fence
// late would see the next one take its rooms. A notice is trusted for the node's name only: the direct read
// decides. The notices wait in a bounded queue; one that does not fit is dropped (counted), and the watcher still
// delivers the fence.
func (m *Manager) fenceNotices(ctx context.Context) {
	valid := func(node string) bool {
		return node != m.cfg.Node && wire.ValidNode(node) // about this node: its own renewal fails, and it opens a new session
	}
	m.notices(ctx, "fence", wire.FencedSubject, maxFenceNotices, valid, m.metrics.fenceNoticeDrops.Inc, func(ctx context.Context, node string) {
		m.mu.Lock()
		s, known := m.sessions[node]
		m.mu.Unlock()
		if known { // else gone here already (this node fenced it, or its watcher was first)
			m.readFenced(ctx, node, s.val.Session)
		}
	})
}

// readFenced reads node's session key directly on a notice that its session was fenced, while this node's view
// shows session id, and wakes the control loop: the rooms of a session gone are orphans now. A fenced session
// never renews again, so a read that still shows id came from a replica that had not applied the fence yet (a
// direct get is answered by any replica, mostly this node's own): the key is read again after readAttempt, then
// twice as long each time, at most fenceRereads times; then the watcher tells. A read that shows another session
// of the node (it restarted) or none ends it.
func (m *Manager) readFenced(ctx context.Context, node, id string) {
	wait := readAttempt
	for i := 0; ; i++ {
		m.refreshSession(ctx, node)
		m.mu.Lock()
		s, still := m.sessions[node]
		m.wakeLocked()
		m.mu.Unlock()
		if !still || s.val.Session != id {
			return
		}
		if i == fenceRereads {
			m.log.Debug("fence notice: the session key still shows the session", "node", node, "session", id, "revision", s.rev)
			return
		}
		if !sleepCtx(ctx, wait) {
			return
		}
		wait *= 2
	}
}

// fenceRereads is how many times a fence notice's read is repeated while it shows the fenced session: 50, 100 and
// 200 ms after the one before, 350 ms in all, about a rank and a half of a takeover (rankStep).
const fenceRereads = 3

// maxFenceNotices bounds the fence notices waiting to be read: a session is fenced by one node only (a CAS), so
// there is one notice per dead node, a handful even when several die at once.
const maxFenceNotices = 64

// refreshSession reads node's session key directly after a fence failed against a newer revision than this
// node's watcher showed (a watcher that lags or is cut off), or on a peer's fence notice: a key gone removes the
// session from this node's view, and a newer revision counts as a renewal seen now.
func (m *Manager) refreshSession(ctx context.Context, node string) {
	e, err := readFresh(ctx, time.Second, func(gctx context.Context) (jetstream.KeyValueEntry, error) {
		return m.owners.Get(gctx, lease.SessionKey(node))
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		delete(m.sessions, node)
	case err == nil:
		v, perr := lease.ParseSession(e.Value())
		if s, ok := m.sessions[node]; perr == nil && (!ok || e.Revision() > s.rev) {
			m.sessions[node] = s.renewed(v, e.Revision(), time.Now())
		}
	}
}

// holderSilent reports whether the holder of a lease renewed by itself (an older version's) has been silent long
// enough for a takeover: no renewal of the lease seen and no tick of the room relayed here, for StealAfter once
// the holder's node is no longer routed and HangAfter while it still is. A room this node does not follow has no
// tick signal here and is not taken over on silence.
func (m *Manager) holderSilent(room string, h holder) bool {
	routed := m.cluster.Routed(h.val.Node)
	ticks, ok := m.relay.Silence(room)
	return ok && ticks > m.cfg.tickSilence(routed) && time.Since(h.seen) > m.cfg.renewSilence(routed)
}
