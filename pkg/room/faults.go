package room

import "time"

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
}

// InjectFault sets a fault on room's owner on this node (Fault{} clears it).
func (m *Manager) InjectFault(room string, f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f == (Fault{}) {
		delete(m.faults, room)
		return
	}
	m.faults[room] = f
}

func (m *Manager) fault(room string) Fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.faults[room]
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
	m.mu.Lock()
	var until time.Time
	for _, f := range m.faults {
		if f.Until.After(until) {
			until = f.Until
		}
	}
	m.mu.Unlock()
	Fault{Until: until}.stall()
}
