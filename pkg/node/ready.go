package node

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/tickmesh/tickmesh/pkg/mesh"
)

// Readiness is the node's /readyz verdict: what is missing, if anything.
type Readiness struct {
	Ready   bool     `json:"ready"`
	Node    string   `json:"node"`
	Missing []string `json:"missing,omitempty"`
	// Details for operators.
	Reachable   int               `json:"reachable"`
	ClusterSize int               `json:"cluster_size"`
	MetaLeader  string            `json:"meta_leader"`
	Streams     map[string]string `json:"streams"` // stream → leader, or "" when it has none
}

// prober checks the streams the node depends on once a second, so that /readyz answers from a cache and never
// waits on JetStream.
type prober struct {
	m       *mesh.Mesh
	streams []string

	mu       sync.Mutex
	leaders  map[string]string    // stream → leader name ("" = no leader or not usable)
	lastSeen map[string]time.Time // stream → last probe that found a leader
	probed   bool
}

// leaderGrace is how long a stream that had a leader may be leaderless before the node reports unready: a
// Raft election after a peer's death takes 4-9 s, and during it the node still serves (the owner rides through
// it, inputs flow over core NATS). A stream never seen with a leader counts at once.
const leaderGrace = 10 * time.Second

func newProber(m *mesh.Mesh, streams []string) *prober {
	return &prober{m: m, streams: streams, leaders: map[string]string{}, lastSeen: map[string]time.Time{}}
}

func (p *prober) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		p.probe(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *prober) probe(ctx context.Context) {
	res := make(map[string]string, len(p.streams))
	for _, name := range p.streams {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := p.m.JetStream().Stream(cctx, name)
		cancel()
		if err != nil {
			res[name] = ""
			continue
		}
		info := s.CachedInfo()
		switch {
		case info.Cluster == nil:
			res[name] = p.m.Name()
		default:
			res[name] = info.Cluster.Leader
		}
	}
	now := time.Now()
	p.mu.Lock()
	p.leaders = res
	for name, leader := range res {
		if leader != "" {
			p.lastSeen[name] = now
		}
	}
	p.probed = true
	p.mu.Unlock()
}

func (p *prober) readiness() Readiness {
	r := Readiness{Node: p.m.Name(), Streams: map[string]string{}}
	srv := p.m.Server()
	if !srv.ReadyForConnections(time.Millisecond) {
		r.Missing = append(r.Missing, "nats server not accepting connections")
	}
	r.Reachable = p.m.Reachable()
	r.ClusterSize = p.m.ClusterSize()
	if !p.m.HasMajority() {
		r.Missing = append(r.Missing, "not routed to a majority of the cluster")
	}
	r.MetaLeader = p.m.MetaLeader()
	if r.MetaLeader == "" {
		r.Missing = append(r.Missing, "no JetStream meta leader")
	}
	p.mu.Lock()
	probed := p.probed
	for k, v := range p.leaders {
		r.Streams[k] = v
	}
	seen := make(map[string]time.Time, len(p.lastSeen))
	for k, v := range p.lastSeen {
		seen[k] = v
	}
	p.mu.Unlock()
	if !probed {
		r.Missing = append(r.Missing, "streams not checked yet")
	}
	for _, name := range p.streams {
		if !probed || r.Streams[name] != "" {
			continue
		}
		if last, ok := seen[name]; !ok || time.Since(last) > leaderGrace {
			r.Missing = append(r.Missing, "stream "+name+" not usable (no leader)")
		}
	}
	r.Ready = len(r.Missing) == 0
	return r
}

// announced is the readiness a node announces in its membership heartbeat: the prober's checks, and once (at
// start) settled ownership: the owners watcher caught up, the lobby held, and the leaders of the ownership
// streams on a node that owns no more rooms than any other (room.Manager.Settled). A kill of the lobby's owner
// right after the cluster reports ready is then as fast as any later one.
func (n *Node) announced() Readiness {
	r := n.prober.readiness()
	if n.rooms != nil && !n.rooms.Settled() {
		r.Missing = append(r.Missing, "ownership not settled yet (lobby lease, stream leaders off the owners)")
		r.Ready = false
	}
	return r
}

// readiness is /readyz: announced, and once (at start) every routed peer listed as ready in this node's membership
// view, so that when every node answers 200 the node lists sent to players (welcome, nodes) and /api/cluster name
// them all. Both start-up conditions are checked until they first hold, never again: a peer restarting later
// must not make the others unready.
func (n *Node) readiness() Readiness {
	r := n.announced()
	if !r.Ready || n.joined.Load() {
		return r
	}
	listed := map[string]bool{}
	for _, m := range n.members.Nodes() {
		listed[m.Name] = m.Ready
	}
	var missing []string
	for _, p := range n.mesh.RoutedPeers() {
		if !listed[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		r.Missing = append(r.Missing, "membership: not yet seen ready: "+strings.Join(missing, ", "))
		r.Ready = false
		return r
	}
	n.joined.Store(true)
	return r
}
