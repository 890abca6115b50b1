package room

import "sync"

// inbox is a bounded queue of messages for an owner loop whose storage grows with what waits in it, not with its
// bound: a room whose loop keeps up holds a few entries, and only a stalled loop fills it up to the bound. (A
// buffered channel of the same bound is allocated whole with every term and scanned by every garbage collection,
// idle or not.)
//
// put may be called from any goroutine; take and ready belong to the loop.
type inbox struct {
	limit int
	ready chan struct{} // capacity 1: filled by the put that finds the queue empty
	taken []inbound     // owned by the taker: what the last take returned, storage for the queue's next turn

	mu sync.Mutex
	q  []inbound // guarded by mu: what waits, oldest first
}

// inboxKeep is the largest storage an inbox hands back to its queue after a take: what a burst grew beyond it is
// left to the garbage collector.
const inboxKeep = 64

func newInbox(limit int) *inbox {
	return &inbox{limit: limit, ready: make(chan struct{}, 1)}
}

// put queues in, or reports false when limit messages already wait.
func (b *inbox) put(in inbound) bool {
	b.mu.Lock()
	if len(b.q) >= b.limit {
		b.mu.Unlock()
		return false
	}
	wake := len(b.q) == 0
	b.q = append(b.q, in)
	b.mu.Unlock()
	if wake {
		select {
		case b.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// take returns what waits, oldest first. The slice is the taker's until its next take, which gives its storage
// back to the queue, cleared so that the queue holds no events already applied (two slices take turns, and no
// take allocates).
func (b *inbox) take() []inbound {
	spare := b.taken
	clear(spare)
	if cap(spare) > inboxKeep {
		spare = nil
	}
	b.mu.Lock()
	q := b.q
	b.q = spare[:0]
	b.mu.Unlock()
	b.taken = q
	return q
}
