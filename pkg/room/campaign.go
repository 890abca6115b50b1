package room

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// campaign competes for room until ctx ends or the room is no longer wanted and not owned here.
func (m *Manager) campaign(ctx context.Context, room string, c *campaign) {
	// Follow the room's ticks: the relay's last tick is what a takeover restores from.
	stop, err := m.relay.Listen(room, nil)
	if err == nil {
		defer stop()
	}
	defer func() {
		m.mu.Lock()
		if m.campaigns[room] == c {
			delete(m.campaigns, room)
		}
		m.mu.Unlock()
		// This node no longer serves the room: its series go (the owners watcher recreates the epoch gauge if
		// the room lives on elsewhere and changes owner).
		m.metrics.forget(room)
	}()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if !m.isWanted(room) {
			return
		}
		if err := m.tryOwn(ctx, room); errors.Is(err, errNoTakeoverSnapshot) {
			// Let another node try first; keep trying here less and less often.
			backoff = min(max(2*backoff, m.cfg.RetryBackoff), maxRetryBackoff)
			if !sleepCtx(ctx, backoff) {
				return
			}
		} else if err != nil {
			backoff = 0
		}
		select {
		case <-ctx.Done():
		case <-c.wake:
		case <-poll.C:
		}
	}
}

func (m *Manager) isWanted(room string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return room == Lobby || m.wanted[room] > 0
}

// maxRetryBackoff bounds a campaign's wait after terms that could not start.
const maxRetryBackoff = 30 * time.Second

// tryOwn acquires or takes over room's lease when the rules allow, and runs the term while it holds it. It
// returns why the term ended, nil when it did not acquire the lease.
func (m *Manager) tryOwn(ctx context.Context, room string) error {
	how, h, ok := m.shouldAcquire(ctx, room)
	if !ok {
		return nil
	}
	if m.leadsPlaced() && m.otherCandidate(h.val.Node) {
		// This node leads an ownership stream: if it owned the room and died, nobody could take the room over
		// before a Raft election ends (4-9 s). Let another candidate try first; try only if nobody did.
		if !sleepCtx(ctx, m.cfg.LeaderDefer) {
			return nil
		}
		how2, h2, ok := m.shouldAcquire(ctx, room)
		if !ok || how2 != how || h2.rev != h.rev {
			return nil
		}
	}

	snap, _, err := readSnapshot(ctx, m.snaps, room)
	if err != nil && !errors.Is(err, errCorruptSnapshot) {
		return nil
	}
	epoch := m.relay.Fence().Get(room).Epoch
	if how != "create" && !h.corrupt {
		epoch = max(epoch, h.val.Epoch)
	}
	if snap != nil {
		epoch = max(epoch, snap.Epoch)
	}
	if epoch >= lease.MaxEpoch {
		// Every source of epochs refuses values above MaxEpoch, so this takes 2^53 ownership changes: never wrap.
		m.log.Error("room epoch exhausted", "room", room, "epoch", epoch)
		return nil
	}
	val := lease.Value{Node: m.cfg.Node, Epoch: epoch + 1, Since: time.Now().UnixMilli()}
	actx, cancel := context.WithTimeout(ctx, time.Second)
	var l *lease.Lease
	sent := time.Now()
	if how == "create" {
		l, err = lease.Acquire(actx, m.owners, room, val, m.lcfg)
	} else {
		l, err = lease.Takeover(actx, m.owners, room, val, h.rev, m.lcfg)
	}
	cancel()
	if err != nil {
		if !errors.Is(err, lease.ErrTaken) {
			m.log.Debug("campaign", "room", room, "how", how, "err", err)
		}
		return nil
	}
	m.live.confirmed(sent)
	m.metrics.acquired.WithLabelValues(room, how).Inc()
	m.log.Info("acquired room lease", "room", room, "epoch", val.Epoch, "how", how)
	return m.runTerm(ctx, room, l)
}

// shouldAcquire applies the takeover rule to room as this node sees it now: how to acquire its lease ("create",
// "takeover" or "reclaim") and the holder it replaces, or ok false.
//
// The rule (docs/FAILOVER.md): create when the key is absent; take over when the holder has been silent for the
// players and for the owners bucket alike (no renewal seen for StealAfter, no tick for tickSilence: StealAfter
// once its routes are gone, HangAfter while they are up) while this node is in contact with a majority of the
// cluster. A stream-leader election stops renewals but not ticks; a crash, a freeze or a partition stops both.
// The CAS on the holder's revision then fails if it renewed after all.
func (m *Manager) shouldAcquire(ctx context.Context, room string) (how string, h holder, ok bool) {
	m.mu.Lock()
	h, held := m.holders[room]
	m.mu.Unlock()

	if held && time.Since(h.seen) > 2*time.Second {
		// No renewal seen for long: the holder is gone or our watcher stalls. Look directly (a hint only; the
		// CAS decides).
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		e, err := m.owners.Get(gctx, room)
		cancel()
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			held = false
		} else if err == nil && e.Revision() != h.rev {
			return "", h, false // changed: the watcher will catch up
		}
	}
	majority := func() bool { return m.cluster.HasMajority() && m.live.contact() }
	switch {
	case !held:
		return "create", holder{}, true
	case h.corrupt:
		if time.Since(h.seen) <= m.cfg.StealAfter || !majority() {
			return "", h, false
		}
		return "takeover", h, true
	case h.val.Node == m.cfg.Node:
		return "reclaim", h, true // our own lease from before a restart
	case m.holderSilent(room, h) && majority():
		return "takeover", h, true
	}
	return "", h, false
}

// holderSilent reports whether room's holder has been silent long enough for a takeover: no renewal of its
// lease seen, and no tick of the room relayed here, for StealAfter once the holder's node is no longer routed (a
// crash closes its routes at once), for HangAfter while it still is (a stall of a live process, a long GC pause or
// a saturated host, must not cost it its rooms; a freeze or a fresh partition waits that little longer). A room
// this node does not follow has no tick signal here and is not taken over on silence.
func (m *Manager) holderSilent(room string, h holder) bool {
	routed := m.cluster.Routed(h.val.Node)
	ticks, ok := m.relay.Silence(room)
	return ok && ticks > m.cfg.tickSilence(routed) && time.Since(h.seen) > m.cfg.renewSilence(routed)
}

// leadsPlaced reports whether this node leads the owners or snapshots stream (as last learnt).
func (m *Manager) leadsPlaced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaders[wire.KVStream(wire.OwnersBucket)] == m.cfg.Node || m.leaders[wire.KVStream(wire.SnapshotsBucket)] == m.cfg.Node
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

// runTerm owns room while the lease holds, then releases it, and returns why the term ended.
func (m *Manager) runTerm(ctx context.Context, room string, l *lease.Lease) error {
	tctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	m.mu.Lock()
	m.owned[room] = l.Epoch()
	m.stopTerm[room] = stop
	m.mu.Unlock()
	m.relay.Fence().Observe(room, l.Epoch())
	m.metrics.owned.WithLabelValues(room).Set(1)
	m.metrics.epoch.WithLabelValues(room).Set(float64(l.Epoch()))
	defer func() {
		m.mu.Lock()
		delete(m.owned, room)
		delete(m.stopTerm, room)
		m.mu.Unlock()
		m.metrics.owned.WithLabelValues(room).Set(0)
	}()

	hc := lease.HoldConfig{
		Quorum:      m.cluster.HasMajority,
		QuorumGrace: 0,
		BeforeRenew: func() { m.fault(room).stall() },
		OnRenew: func(err error, took time.Duration) {
			if err != nil {
				m.metrics.renewErrors.WithLabelValues(room).Inc()
				return
			}
			m.live.confirmed(time.Now().Add(-took))
			m.metrics.renewSeconds.WithLabelValues(room).Observe(took.Seconds())
		},
	}
	cause := l.Hold(tctx, hc, func(wctx context.Context) error {
		// The streams this node leads go to a peer before the first tick: if this node died while leading the
		// owners or snapshots stream, nobody could take the room over before a Raft election ends.
		m.placeBeforeTicking(wctx)
		for {
			err := m.newTerm(room, l).run(wctx)
			if errors.Is(err, errRestoreConflict) && wctx.Err() == nil && l.Valid() {
				continue
			}
			return err
		}
	})
	m.metrics.stepDowns.WithLabelValues(room, causeLabel(cause)).Inc()
	m.log.Info("room owner stopped", "room", room, "epoch", l.Epoch(), "cause", fmt.Sprint(cause))
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := l.Release(rctx); err != nil {
		m.log.Debug("release lease", "room", room, "err", err)
	}
	return cause
}

func causeLabel(err error) string {
	switch {
	case err == nil:
		return "returned"
	case errors.Is(err, lease.ErrLost):
		return "lost"
	case errors.Is(err, lease.ErrExpired):
		return "expired"
	case errors.Is(err, lease.ErrNoQuorum):
		return "no_quorum"
	case errors.Is(err, ErrSuperseded):
		return "superseded"
	case errors.Is(err, errNoTakeoverSnapshot):
		return "no_snapshot"
	case errors.Is(err, errRoomEmpty):
		return "empty"
	case errors.Is(err, context.Canceled):
		return "shutdown"
	}
	return "error"
}
