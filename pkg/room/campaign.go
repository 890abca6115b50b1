package room

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/lease"
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
	m.mu.Lock()
	h, held := m.holders[room]
	leads := m.leadsOwner
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
			return nil // changed: the watcher will catch up
		}
	}

	var how string
	switch {
	case !held:
		how = "create"
		if leads {
			// Let a node that does not lead the owners stream win: an owner on the stream leader's node waits
			// out a full Raft election if it dies.
			if !sleepCtx(ctx, 150*time.Millisecond) {
				return nil
			}
		}
	case h.corrupt:
		if time.Since(h.seen) <= m.cfg.StealAfter || !m.cluster.HasMajority() {
			return nil
		}
		how = "takeover"
	case h.val.Node == m.cfg.Node:
		how = "reclaim" // our own lease from before a restart
	case time.Since(h.seen) > m.cfg.StealAfter && !m.cluster.Routed(h.val.Node) && m.cluster.HasMajority():
		how = "takeover"
	default:
		return nil
	}

	snap, _, err := readSnapshot(ctx, m.snaps, room)
	if err != nil && !errors.Is(err, errCorruptSnapshot) {
		return nil
	}
	epoch := m.relay.Fence().Get(room).Epoch
	if held && !h.corrupt {
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
	m.metrics.acquired.WithLabelValues(room, how).Inc()
	m.log.Info("acquired room lease", "room", room, "epoch", val.Epoch, "how", how)
	return m.runTerm(ctx, room, l)
}

// runTerm owns room while the lease holds, then releases it, and returns why the term ended.
func (m *Manager) runTerm(ctx context.Context, room string, l *lease.Lease) error {
	m.mu.Lock()
	m.owned[room] = l.Epoch()
	m.mu.Unlock()
	m.relay.Fence().Observe(room, l.Epoch())
	m.metrics.owned.WithLabelValues(room).Set(1)
	m.metrics.epoch.WithLabelValues(room).Set(float64(l.Epoch()))
	defer func() {
		m.mu.Lock()
		delete(m.owned, room)
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
			m.metrics.renewSeconds.WithLabelValues(room).Observe(took.Seconds())
		},
	}
	cause := l.Hold(ctx, hc, func(wctx context.Context) error {
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
