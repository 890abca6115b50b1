package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Ways of acquiring a room's lease (the label of tickmesh_room_acquired_total).
const (
	howCreate   = "create"   // the key is absent: create it, for this node or for the node it is placed on
	howAdopt    = "adopt"    // the key names this node's session (a handoff, or a creation placed here): run it
	howTakeover = "takeover" // the holder is gone (its session ended, or a lease renewed by itself went silent)
	howReclaim  = "reclaim"  // a room of this node's previous session
)

// errHandoff asks an owner to hand its room over (balance); Dest is the node to give it to.
type errHandoff struct{ Dest string }

func (e errHandoff) Error() string { return "handing the room over to " + e.Dest }

// start runs an attempt to acquire room in its own goroutine, tracked in m.active until it ends.
func (m *Manager) startLocked(room string, how string, h holder) {
	if m.runCtx == nil || m.runCtx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancelCause(m.runCtx)
	a := &attempt{cancel: cancel, done: make(chan struct{})}
	m.active[room] = a
	go func() {
		defer close(a.done)
		defer cancel(nil)
		err := m.acquire(ctx, room, how, h)
		m.mu.Lock()
		if m.active[room] == a {
			delete(m.active, room)
		}
		if errors.Is(err, errNoTakeoverSnapshot) {
			// Let another node try first; try again here less and less often.
			b := min(max(2*m.backoff[room], m.cfg.RetryBackoff), maxRetryBackoff)
			m.backoff[room], m.retryAt[room] = b, time.Now().Add(b)
		} else if err != nil {
			delete(m.backoff, room)
			delete(m.retryAt, room)
		}
		m.forgetIfUnusedLocked(room)
		m.wakeLocked()
		m.mu.Unlock()
	}()
}

// maxRetryBackoff bounds the wait after terms that could not start.
const maxRetryBackoff = 30 * time.Second

// acquire takes room's lease the way how says (the control loop decided that the rules allow it), and runs the
// term while it holds it. It returns why the term ended, nil when it did not acquire the lease.
func (m *Manager) acquire(ctx context.Context, room, how string, h holder) error {
	sess := m.session()
	if sess == nil || !sess.Valid() {
		return nil
	}
	if how == howTakeover && (h.val.Session == "" || h.corrupt) && m.leadsPlaced() && m.otherCandidate(h.val.Node) {
		// This node leads an ownership stream: if it owned the room and died, nobody could take the room over
		// before a Raft election ends (4-9 s). Let another candidate try first; try only if nobody did. (Rooms
		// of a session that ended wait for this node last anyway: adoptDelayLocked; new rooms go elsewhere:
		// placeNew.)
		if !sleepCtx(ctx, m.cfg.LeaderDefer) {
			return nil
		}
		m.mu.Lock()
		now, held := m.holders[room]
		m.mu.Unlock()
		if held != (how != howCreate) || held && now.rev != h.rev {
			return nil
		}
	}
	if how == howAdopt {
		l, err := lease.Adopt(m.owners, room, h.val, h.rev, sess)
		if err != nil {
			return nil
		}
		m.metrics.acquired.WithLabelValues(room, how).Inc()
		m.log.Info("acquired room lease", "room", room, "epoch", h.val.Epoch, "how", how)
		return m.runTerm(ctx, room, l)
	}

	epoch := m.relay.Fence().Get(room).Epoch
	if how != howCreate && !h.corrupt {
		// A lease's epoch is at least its room's snapshot's (snapshots are written under it): no read on the
		// takeover's path. The term checks the snapshot it restores from all the same.
		epoch = max(epoch, h.val.Epoch)
	} else {
		snap, _, err := readSnapshot(ctx, m.snaps, room)
		if err != nil && !errors.Is(err, errCorruptSnapshot) {
			return nil
		}
		if snap != nil {
			epoch = max(epoch, snap.Epoch)
		}
	}
	if epoch >= lease.MaxEpoch {
		// Every source of epochs refuses values above MaxEpoch, so this takes 2^53 ownership changes: never wrap.
		m.log.Error("room epoch exhausted", "room", room, "epoch", epoch)
		return nil
	}
	val := lease.Value{Epoch: epoch + 1, Since: time.Now().UnixMilli()}
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if how == howCreate {
		// A new room goes to the node that owns the fewest (balance); that node adopts it.
		if dest, dsess := m.placeNew(room, ""); dest != m.cfg.Node && dsess != "" {
			val.Node, val.Session = dest, dsess
			b, _ := json.Marshal(val)
			if _, err := m.owners.Create(actx, room, b); err == nil {
				m.log.Info("created room lease for another node", "room", room, "node", dest, "epoch", val.Epoch)
			}
			return nil
		}
	}
	var l *lease.Lease
	var err error
	sent := time.Now()
	if how == howCreate {
		l, err = lease.AcquireIn(actx, m.owners, room, val, sess)
	} else {
		l, err = lease.TakeoverIn(actx, m.owners, room, val, h.rev, sess)
	}
	if err != nil {
		if !errors.Is(err, lease.ErrTaken) {
			m.log.Debug("acquire", "room", room, "how", how, "err", err)
		}
		return nil
	}
	m.live.confirmed(sent)
	m.metrics.acquired.WithLabelValues(room, how).Inc()
	m.log.Info("acquired room lease", "room", room, "epoch", l.Epoch(), "how", how)
	return m.runTerm(ctx, room, l)
}

// runTerm owns room while the lease holds, then hands it to another node (a balance handoff, or this node
// shutting down) or releases it, and returns why the term ended.
func (m *Manager) runTerm(ctx context.Context, room string, l *lease.Lease) error {
	tctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	m.mu.Lock()
	m.owned[room] = l.Epoch()
	m.ran[room] = max(m.ran[room], l.Epoch())
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
			t := m.newTerm(room, l)
			m.running.Store(room, t)
			err := t.run(wctx)
			m.running.CompareAndDelete(room, t)
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
	if m.handOver(rctx, room, l, cause) {
		return cause
	}
	if err := l.Release(rctx); err != nil {
		m.log.Debug("release lease", "room", room, "err", err)
	}
	return cause
}

// handOver gives room to another node when its term ended to be handed over (balance) or because this node is
// shutting down: the term wrote its final snapshot, and the lease is rewritten, by CAS, for the other node's
// session at the next epoch; that node adopts it and continues at the next tick. It reports whether it did.
func (m *Manager) handOver(ctx context.Context, room string, l *lease.Lease, cause error) bool {
	var dest string
	var h errHandoff
	switch {
	case errors.As(cause, &h):
		dest = h.Dest
	case errors.Is(cause, context.Canceled) && l.Session() != nil:
		dest, _ = m.placeNew(room, m.cfg.Node) // shutting down
	default:
		return false
	}
	m.mu.Lock()
	ds, ok := m.sessions[dest]
	m.mu.Unlock()
	if dest == "" || dest == m.cfg.Node || !ok || l.Session() == nil {
		return false
	}
	val := lease.Value{Node: dest, Epoch: l.Epoch() + 1, Since: time.Now().UnixMilli(), Session: ds.val.Session}
	if err := l.HandOver(ctx, val); err != nil {
		m.log.Warn("hand over room", "room", room, "to", dest, "err", err)
		return errors.Is(err, lease.ErrTaken) // lost anyway: nothing to release
	}
	m.metrics.handoffs.WithLabelValues(room).Inc()
	m.log.Info("handed room over", "room", room, "to", dest, "epoch", val.Epoch)
	_ = m.nc.Publish(wire.HandoffSubject(dest), []byte(room))
	return true
}

func causeLabel(err error) string {
	var h errHandoff
	switch {
	case err == nil:
		return "returned"
	case errors.As(err, &h):
		return "handoff"
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
