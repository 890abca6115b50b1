// Package fence keeps, per room, the highest (epoch, seq) a receiver has accepted, and decides whether a tick
// may pass: a tick with a lower epoch than one already seen is stale (from a superseded owner), and within an
// epoch only a strictly higher seq passes. Observing a new lease raises the floor before the new owner's first
// tick, so a frozen or cut-off old owner is fenced out even if its tick arrives first.
//
// A Fence is safe for concurrent use and owns no goroutines.
package fence

import "sync"

// Position is a point in a room's tick history.
type Position struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Fence tracks positions per room.
type Fence struct {
	mu    sync.Mutex
	rooms map[string]Position
}

// New returns an empty fence.
func New() *Fence { return &Fence{rooms: map[string]Position{}} }

// Accept reports whether a tick at (epoch, seq) may pass for room, and records it when it does.
func (f *Fence) Accept(room string, epoch, seq uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.rooms[room]
	if epoch < cur.Epoch || (epoch == cur.Epoch && seq <= cur.Seq) {
		return false
	}
	f.rooms[room] = Position{Epoch: epoch, Seq: seq}
	return true
}

// Observe raises room's epoch floor to epoch (from a lease seen in the owners bucket). It reports whether the
// floor moved.
func (f *Fence) Observe(room string, epoch uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.rooms[room]
	if epoch <= cur.Epoch {
		return false
	}
	f.rooms[room] = Position{Epoch: epoch}
	return true
}

// Get returns room's current position.
func (f *Fence) Get(room string) Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rooms[room]
}

// Forget drops room's position, for a room that no longer exists: positions would otherwise pile up with every
// room ever seen. A room created again later starts above its snapshot's epoch, or from the start when it has
// none, which is safe because a room is deleted only by an owner that released its lease (or whose lease
// expired) and so publishes nothing more.
func (f *Fence) Forget(room string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rooms, room)
}

// Len is the number of rooms with a position.
func (f *Fence) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rooms)
}
