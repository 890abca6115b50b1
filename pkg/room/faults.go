package room

import (
	"maps"
	"time"
)

// Fault is an injected fault for tests and drills.
type Fault struct {
	// Until: the owner of the room (loop and lease renewals) stalls until this time, as a frozen process would.
	Until time.Time
	// IgnoreDeadline makes the owner skip its local deadline and pause checks (a broken clock): only fencing
	// (relays by epoch, snapshots by CAS) then stands between a superseded owner and the game.
	IgnoreDeadline bool
	// HideLeases makes this node's owners watcher skip the room's lease, as a watcher that lags would: the node
	// learns of the room's holders only by reading the lease directly (a handoff notice, a failed CAS).
	HideLeases bool
	// HideSessions makes this node's owners watcher skip every node's session key (its renewals, its deletion),
	// as a watcher that lags would: the node learns that a session ended only by reading its key directly (a
	// fence notice, a fence of its own that fails). Sessions belong to no room: set on any room, it applies to
	// all of them.
	HideSessions bool
	// NoFence makes this node fence no session, as a node would that judges a dead peer silent later than the
	// others (its watcher still delivering the peer's last renewals, its route to it not yet closed): it learns
	// of the peer's fence from the node that fenced. Set on any room, it applies to every session.
	NoFence bool
}

// InjectFault sets a fault on room's owner on this node (Fault{} clears it).
func (m *Manager) InjectFault(room string, f Fault) {
	m.mu.Lock() // serialises the writers; readers load the map without it
	defer m.mu.Unlock()
	next := map[string]Fault{}
	if cur := m.faults.Load(); cur != nil {
		maps.Copy(next, *cur)
	}
	if f == (Fault{}) {
		delete(next, room)
	} else {
		next[room] = f
	}
	m.faults.Store(&next)
}

// fault is the fault injected on room, if any. Every owner loop asks before each tick, so it takes no lock: the
// faults are a map replaced whole by InjectFault.
func (m *Manager) fault(room string) Fault {
	if cur := m.faults.Load(); cur != nil {
		return (*cur)[room]
	}
	return Fault{}
}

// nodeFault is what the injected faults ask of the node as a whole (HideSessions, NoFence), whatever room they
// were set on.
func (m *Manager) nodeFault() Fault {
	var f Fault
	if cur := m.faults.Load(); cur != nil {
		for _, g := range *cur {
			f.HideSessions = f.HideSessions || g.HideSessions
			f.NoFence = f.NoFence || g.NoFence
		}
	}
	return f
}

// stall blocks while the fault's stall lasts, as a frozen process would.
func (f Fault) stall() {
	if d := time.Until(f.Until); d > 0 {
		time.Sleep(d)
	}
}

// stallAll blocks while any room's injected stall lasts: node-wide work (the session's renewals) stalls as it
// would in a frozen process.
func (m *Manager) stallAll() {
	var until time.Time
	if cur := m.faults.Load(); cur != nil {
		for _, f := range *cur {
			if f.Until.After(until) {
				until = f.Until
			}
		}
	}
	Fault{Until: until}.stall()
}
