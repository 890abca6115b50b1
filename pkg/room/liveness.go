package room

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/wire"
)

// liveness is what this node knows, from core NATS, about the other nodes being alive and about its own contact
// with the cluster. Every node publishes a beacon each BeaconInterval (wire.BeaconSubject) carrying the number of
// ticks it has published as an owner; every node records the beacons it receives.
//
// Two judgements use it:
//   - contact: this node hears from a strict majority of the cluster (itself included) through beacons received
//     within ContactLoss, or a write of its own leases committed (a commit needs a majority of the stream's
//     replicas) was sent within ContactLoss. An owner without contact publishes nothing (term.confirm): a node
//     cut off from the majority stops ticking within ContactLoss, before the majority may take its rooms over
//     (StealAfter after it last heard from it, and StealAfter > ContactLoss + two tick periods).
//   - a peer's silence: how long since its last beacon (and since its tick count last moved). Beacons go over the
//     routes like ticks do and are not stopped by a stream-leader election, so they tell an owner that cannot
//     renew (an election) from one that is gone (a crash, a freeze, a partition).
//
// Safe for concurrent use; it owns no goroutines (Manager.beacons publishes and subscribes).
type liveness struct {
	self string
	loss time.Duration    // ContactLoss
	size func() int       // the cluster's size, this node included
	now  func() time.Time // clock

	ticks atomic.Uint64 // ticks published by this node as an owner: the beacon's body

	mu    sync.Mutex
	peers map[string]peerBeat // guarded by mu: last beacon per peer (bounded by maxPeers)
	wrote time.Time           // guarded by mu: send time of the latest confirmed write of this node's leases
}

// peerBeat is a peer's last beacon as received here.
type peerBeat struct {
	at      time.Time // local receive time of the last beacon
	ticks   uint64    // its tick count
	movedAt time.Time // local receive time of the first beacon with that count
}

// maxPeers bounds the beacons remembered: a cluster has a handful of nodes; a flood of forged node names must
// not grow memory. Entries silent for peerForget are dropped first.
const (
	maxPeers   = 256
	peerForget = time.Minute
)

func newLiveness(self string, loss time.Duration, size func() int, now func() time.Time) *liveness {
	if now == nil {
		now = time.Now
	}
	return &liveness{self: self, loss: loss, size: size, now: now, peers: map[string]peerBeat{}}
}

// beat records a beacon of node.
func (l *liveness) beat(node string, ticks uint64) {
	if node == l.self || node == "" {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.peers[node]
	if !ok && len(l.peers) >= maxPeers {
		for n, q := range l.peers {
			if now.Sub(q.at) > peerForget {
				delete(l.peers, n)
			}
		}
		if len(l.peers) >= maxPeers {
			return
		}
	}
	if !ok || ticks != p.ticks {
		p.movedAt = now
	}
	p.at, p.ticks = now, ticks
	l.peers[node] = p
}

// confirmed records that a write of this node's leases sent at sent was committed.
func (l *liveness) confirmed(sent time.Time) {
	l.mu.Lock()
	if sent.After(l.wrote) {
		l.wrote = sent
	}
	l.mu.Unlock()
}

// contact reports whether this node is in contact with a strict majority of the cluster now.
func (l *liveness) contact() bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// A write committed by a majority just now is contact whatever the cluster's size, which costs more to
	// learn (every owner asks before every tick).
	if now.Sub(l.wrote) <= l.loss {
		return true
	}
	size := l.size()
	if size <= 1 {
		return true
	}
	heard := 1 // this node
	for _, p := range l.peers {
		if now.Sub(p.at) <= l.loss {
			heard++
		}
	}
	return heard*2 > size
}

// silence is how long node has not been heard from (its last beacon), and how long its tick count has not moved;
// ok is false when no beacon of it was ever received.
func (l *liveness) silence(node string) (beacon, ticks time.Duration, ok bool) {
	if node == l.self {
		return 0, 0, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.peers[node]
	if !ok {
		return 0, 0, false
	}
	return now.Sub(p.at), now.Sub(p.movedAt), true
}

// lastBeacon is when node's last beacon was received (local clock).
func (l *liveness) lastBeacon(node string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.peers[node]
	return p.at, ok
}

// heard lists the peers heard from within d.
func (l *liveness) heard(d time.Duration) []string {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for n, p := range l.peers {
		if now.Sub(p.at) <= d {
			out = append(out, n)
		}
	}
	return out
}

// beacons publishes this node's beacon every interval and records the others' until ctx ends.
func (m *Manager) beacons(ctx context.Context) {
	sub, err := m.nc.Subscribe(wire.AllBeacons, func(msg *nats.Msg) {
		node := wire.BeaconNode(msg.Subject)
		ticks, err := wire.DecodeBeacon(msg.Data)
		if node == "" || err != nil {
			return
		}
		m.live.beat(node, ticks)
	})
	if err != nil {
		m.log.Error("subscribe to node beacons", "err", err)
	} else {
		defer sub.Unsubscribe()
	}
	subj := wire.BeaconSubject(m.cfg.Node)
	t := time.NewTicker(m.cfg.beaconInterval())
	defer t.Stop()
	for {
		_ = m.nc.Publish(subj, wire.EncodeBeacon(m.live.ticks.Load()))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
