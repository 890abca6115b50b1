package failbench

import (
	"sort"
	"sync"
	"time"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/room"
)

// tickRec is a tick an observer's fence accepted.
type tickRec struct {
	At         time.Time
	Epoch, Seq uint64
	Ack        uint64 // the tracked player's ack in the tick (0 when absent or nothing is tracked)
}

// staleRec is a tick from a superseded epoch: Above is the higher epoch already seen.
type staleRec struct {
	At                time.Time
	Epoch, Seq, Above uint64
}

// nodeRecord is what the observer of one node saw.
type nodeRecord struct {
	fence         *fence.Fence
	ticks         []tickRec  // accepted, in arrival order
	stale         []staleRec // refused by the fence: epoch below the observer's floor
	staleAccepted []staleRec // accepted by the fence although a higher epoch had been seen elsewhere
	reordered     int        // refused by the fence within the current epoch (duplicate or out of order)
}

// recorder keeps every observer's ticks under one lock, so that "seen before" across observers follows the
// order in which the benchmark handled the messages. It is pure: callers pass the receive times.
type recorder struct {
	mu       sync.Mutex
	maxEpoch uint64 // highest epoch seen anywhere (ticks and leases)
	nodes    map[string]*nodeRecord
	onStale  func(node string, s staleRec, accepted bool)
}

func newRecorder(nodes []string, onStale func(node string, s staleRec, accepted bool)) *recorder {
	r := &recorder{nodes: map[string]*nodeRecord{}, onStale: onStale}
	for _, n := range nodes {
		r.nodes[n] = &nodeRecord{fence: fence.New()}
	}
	if r.onStale == nil {
		r.onStale = func(string, staleRec, bool) {}
	}
	return r
}

// tick records a tick that arrived at node's observer.
func (r *recorder) tick(node string, at time.Time, epoch, seq, ack uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nr := r.nodes[node]
	floor := nr.fence.Get(room.Lobby)
	if !nr.fence.Accept(room.Lobby, epoch, seq) {
		if epoch < floor.Epoch {
			s := staleRec{At: at, Epoch: epoch, Seq: seq, Above: floor.Epoch}
			nr.stale = append(nr.stale, s)
			r.onStale(node, s, false)
		} else {
			nr.reordered++
		}
		return
	}
	if epoch < r.maxEpoch {
		s := staleRec{At: at, Epoch: epoch, Seq: seq, Above: r.maxEpoch}
		nr.staleAccepted = append(nr.staleAccepted, s)
		r.onStale(node, s, true)
	}
	r.maxEpoch = max(r.maxEpoch, epoch)
	nr.ticks = append(nr.ticks, tickRec{At: at, Epoch: epoch, Seq: seq, Ack: ack})
}

// lease records a lease epoch seen in the owners bucket through node: it raises that observer's fence like a
// relay's, and the epoch counts as seen.
func (r *recorder) lease(node string, epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[node].fence.Observe(room.Lobby, epoch)
	r.maxEpoch = max(r.maxEpoch, epoch)
}

// last returns node's last accepted tick.
func (r *recorder) last(node string) (tickRec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.nodes[node].ticks
	if len(t) == 0 {
		return tickRec{}, false
	}
	return t[len(t)-1], true
}

// firstAfter returns the first tick node accepted at or after from that satisfies ok.
func (r *recorder) firstAfter(node string, from time.Time, ok func(tickRec) bool) (tickRec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.nodes[node].ticks
	for i := sort.Search(len(t), func(i int) bool { return !t[i].At.Before(from) }); i < len(t); i++ {
		if ok(t[i]) {
			return t[i], true
		}
	}
	return tickRec{}, false
}

// ticksBetween returns node's accepted ticks received in [from, to].
func (r *recorder) ticksBetween(node string, from, to time.Time) []tickRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []tickRec
	for _, t := range r.nodes[node].ticks {
		if !t.At.Before(from) && !t.At.After(to) {
			out = append(out, t)
		}
	}
	return out
}

// tickTimes returns the receive times of node's accepted ticks.
func (r *recorder) tickTimes(node string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Time, len(r.nodes[node].ticks))
	for i, t := range r.nodes[node].ticks {
		out[i] = t.At
	}
	return out
}

// acks returns node's accepted ticks with the tracked player's ack, from from on.
func (r *recorder) acks(node string, from time.Time) []ackTick {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ackTick
	for _, t := range r.nodes[node].ticks {
		if !t.At.Before(from) {
			out = append(out, ackTick{At: t.At, Ack: t.Ack})
		}
	}
	return out
}

// staleCounts returns the stale ticks published and accepted, over every observer, in [from, to].
func (r *recorder) staleCounts(from, to time.Time) (published, accepted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := func(s staleRec) bool { return !s.At.Before(from) && !s.At.After(to) }
	for _, nr := range r.nodes {
		for _, s := range nr.stale {
			if in(s) {
				published++
			}
		}
		for _, s := range nr.staleAccepted {
			if in(s) {
				accepted++
			}
		}
	}
	return published, accepted
}

// reorderedTotal is the number of ticks refused within their epoch (duplicates), over every observer.
func (r *recorder) reorderedTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, nr := range r.nodes {
		n += nr.reordered
	}
	return n
}

// trim forgets accepted ticks received before t (they are no longer needed), keeping the last one.
func (r *recorder) trim(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, nr := range r.nodes {
		i := sort.Search(len(nr.ticks), func(i int) bool { return !nr.ticks[i].At.Before(t) })
		if i > 0 && i == len(nr.ticks) {
			i--
		}
		nr.ticks = append([]tickRec(nil), nr.ticks[i:]...)
	}
}
