package room

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/lease"
)

// Observer is told what the manager observes of ownership, for the cluster view (pkg/clusterview through
// pkg/node). Its methods run on the owners watcher's goroutine and on the relay's delivery goroutines: they must
// not block. They are observations only: nothing an observer does changes who owns what.
type Observer interface {
	// LeaseChanged gets every room's entry of the owners bucket as the watcher delivers it, in order, a
	// restarted watcher's replay included (a replayed entry has a revision already seen); nodes' sessions are
	// not rooms and are left out.
	LeaseChanged(LeaseChange)
	// LeasesCurrent marks the end of a watcher's replay of the current leases.
	LeasesCurrent()
	// EpochChanged is the relay's first tick of a room at a higher epoch than the tick before it on this node,
	// with the time between their arrivals (RelayHooks.Epoch). The tick must not be modified.
	EpochChanged(room string, from fence.Position, to *Tick, gap time.Duration)
}

// LeaseChange is one entry of the owners bucket.
type LeaseChange struct {
	Room     string
	Revision uint64
	// Op is jetstream.KeyValuePut for a lease written (acquired, taken over or renewed), KeyValueDelete for a
	// release, and KeyValuePurge for a lease that expired (the bucket's TTL marker) or was purged.
	Op      jetstream.KeyValueOp
	Lease   lease.Value // for a put
	Corrupt bool        // a put whose value is not a lease
}

type observerBox struct{ o Observer }

// SetObserver makes o the manager's observer (nil removes it). Call it before Run to see the first replay.
func (m *Manager) SetObserver(o Observer) {
	if o == nil {
		m.obs.Store(nil)
		return
	}
	m.obs.Store(&observerBox{o})
}

// observeOwner passes an owners watcher entry (nil: the end of a replay) to the observer.
func (m *Manager) observeOwner(e jetstream.KeyValueEntry) {
	b := m.obs.Load()
	if b == nil {
		return
	}
	if e == nil {
		b.o.LeasesCurrent()
		return
	}
	if _, session := lease.SessionNode(e.Key()); session {
		return // a node's session, not a room
	}
	c := LeaseChange{Room: e.Key(), Revision: e.Revision(), Op: e.Operation()}
	if c.Op == jetstream.KeyValuePut {
		v, err := lease.Parse(e.Value())
		c.Lease, c.Corrupt = v, err != nil
	}
	b.o.LeaseChanged(c)
}

// observeEpoch is the relay's Epoch hook.
func (m *Manager) observeEpoch(room string, from fence.Position, to *Tick, gap time.Duration) {
	if b := m.obs.Load(); b != nil {
		b.o.EpochChanged(room, from, to, gap)
	}
}
