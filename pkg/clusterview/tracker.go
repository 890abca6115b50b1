package clusterview

import (
	"maps"
	"slices"
	"time"

	"github.com/tickmesh/tickmesh/pkg/members"
)

// LeaseOp is what an owners bucket entry did to a room's lease.
type LeaseOp int

// Lease operations.
const (
	LeasePut    LeaseOp = iota // written: acquired, taken over or renewed
	LeaseDelete                // deleted by its holder: released
	LeasePurge                 // removed by the bucket's TTL (or purged)
)

// LeaseObs is one entry of the owners bucket as the owners watcher delivered it.
type LeaseObs struct {
	Room    string
	Rev     uint64 // the entry's revision; a revision already seen is a replay
	Op      LeaseOp
	Node    string // LeasePut: the holder
	Epoch   uint64 // LeasePut: the holder's epoch
	Corrupt bool   // LeasePut: the value is not a lease
}

// NodesObs is one sample of membership and routes.
type NodesObs struct {
	Members  []members.Info  // fresh heartbeats, this node's own included (members.Registry.Nodes)
	Routed   map[string]bool // peers this node has a route to
	Majority bool            // this node is routed to a majority of the cluster
	Draining bool            // this node is shutting down
}

// TrackerConfig tunes how observations become states and events.
type TrackerConfig struct {
	Self string // this node's name
	// Stale is the membership staleness (members.Config.Stale): a node that leaves the list well before it could
	// have gone stale deleted its own heartbeat (a shutdown).
	Stale time.Duration
	// Abrupt: a route that closes within Abrupt of the node's last heartbeat closed while the node was alive
	// and beating, the way a process's exit closes its connections: the node is down. A node that fell silent
	// first and lost its route later (routes close after missed pings) is cut off: a partition or a freeze.
	Abrupt time.Duration
	// HandoffWindow: a lease acquired within this time of its release is a handoff.
	HandoffWindow time.Duration
	// ForgetRooms is how long a released or expired room is remembered (to classify the next acquisition).
	ForgetRooms time.Duration
	// ForgetNodes is how long a node that is down, left or cut off (and no longer listed) stays in the picture.
	ForgetNodes time.Duration
	// MaxNodes bounds the nodes remembered once gone: the oldest gone are forgotten first.
	MaxNodes int
}

// Tracker turns observations into the picture's node states and timeline events. It is pure: every method
// takes the time of the observation, and none blocks or starts anything. It is not safe for concurrent use.
type Tracker struct {
	cfg TrackerConfig

	rooms      map[string]roomRec
	leasesLive bool // the first replay of the owners bucket is over: changes are events

	nodes     map[string]*nodeRec
	nodesLive bool

	leaders     map[string]string
	leadersLive bool
}

// roomRec is a room's lease as last seen.
type roomRec struct {
	rev   uint64
	op    LeaseOp
	node  string // the holder (put; "" when corrupt), or the holder that released or lost it (delete, purge)
	epoch uint64
	// The holder before node, epoch: whom a takeover replaced, and what a resumed event's gap follows.
	prevNode  string
	prevEpoch uint64
	at        time.Time // when this holder was first seen, or when the lease went
}

// nodeRec is what this node knows of a node.
type nodeRec struct {
	info     members.Info
	state    string
	detail   string
	since    time.Time
	present  bool      // in the last membership sample
	routed   bool      // in the last routes sample
	updated  int64     // the last heartbeat's Updated
	heardAt  time.Time // when a new heartbeat was last seen here
	lostAt   time.Time // when its route went (zero while routed, or if it never had one)
	goneAt   time.Time // when it left the membership list (zero while listed)
	graceful bool      // it left the list soon after a heartbeat: it deleted its own entry
}

// NewTracker makes a tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	return &Tracker{cfg: cfg, rooms: map[string]roomRec{}, nodes: map[string]*nodeRec{}, leaders: map[string]string{}}
}

// Lease takes one owners bucket entry. It returns the events it makes, and whether the room's holder changed
// (false for a renewal or a replayed entry), which is when the picture needs redrawing.
func (t *Tracker) Lease(now time.Time, o LeaseObs) (events []Event, changed bool) {
	prev, known := t.rooms[o.Room]
	if known && o.Rev <= prev.rev {
		return nil, false // a restarted watcher's replay
	}
	rec := roomRec{rev: o.Rev, op: o.Op, at: now}
	renewal := false
	switch o.Op {
	case LeasePut:
		if !o.Corrupt {
			rec.node, rec.epoch = o.Node, o.Epoch
		}
		renewal = known && prev.op == LeasePut && prev.node == rec.node && prev.epoch == rec.epoch
		switch {
		case renewal:
			rec.prevNode, rec.prevEpoch, rec.at = prev.prevNode, prev.prevEpoch, prev.at
		case known:
			rec.prevNode, rec.prevEpoch = prev.node, prev.epoch
		}
	default:
		if known {
			rec.node, rec.epoch, rec.prevNode, rec.prevEpoch = prev.node, prev.epoch, prev.prevNode, prev.prevEpoch
		}
	}
	t.rooms[o.Room] = rec
	if renewal {
		return nil, false
	}
	if !t.leasesLive {
		return nil, true
	}
	ev := Event{At: now.UnixMilli(), Kind: KindLease, Room: o.Room}
	switch o.Op {
	case LeasePut:
		if o.Corrupt {
			ev.How = HowCorrupt
			if known && prev.op == LeasePut {
				ev.From, ev.FromEpoch = prev.node, prev.epoch
			}
			return []Event{ev}, true
		}
		ev.Node, ev.Epoch = o.Node, o.Epoch
		if known {
			ev.From, ev.FromEpoch = prev.node, prev.epoch
		}
		switch {
		case !known:
			ev.How = HowTaken
		case prev.op == LeaseDelete && prev.node != "" && now.Sub(prev.at) <= t.cfg.HandoffWindow:
			ev.How = HowHandoff
		case prev.op == LeasePut && prev.node == o.Node:
			ev.How = HowReclaimed
		case prev.op == LeasePut:
			ev.How = HowStolen // from a holder that had not released it (or from a corrupt value)
		default:
			ev.How = HowTaken // after an expiry, or long after a release
		}
	case LeaseDelete, LeasePurge:
		if !known || prev.op != LeasePut {
			return nil, true
		}
		ev.How = HowReleased
		if o.Op == LeasePurge {
			ev.How = HowExpired
		}
		ev.Node, ev.Epoch = prev.node, prev.epoch
	}
	return []Event{ev}, true
}

// LeasesCurrent marks the end of the owners watcher's first replay: from now on, changes are events.
func (t *Tracker) LeasesCurrent() { t.leasesLive = true }

// Resumed takes the relay's first tick of room under epoch to, published by owner, after the last under from,
// gap apart.
func (t *Tracker) Resumed(now time.Time, room string, from, to uint64, owner string, gap time.Duration) []Event {
	ev := Event{At: now.UnixMilli(), Kind: KindResumed, Room: room, Node: owner, Epoch: to, FromEpoch: from,
		GapMs: float64(gap.Microseconds()) / 1000}
	if rec, ok := t.rooms[room]; ok {
		switch {
		case rec.op == LeasePut && rec.epoch == to:
			if rec.prevEpoch == from {
				ev.From = rec.prevNode
			}
		case rec.epoch == from:
			// This node has not seen the new lease yet (its ticks came first), or it went again since.
			ev.From = rec.node
		}
	}
	return []Event{ev}
}

// Nodes takes a sample of membership and routes and returns the node events it makes. settled reports whether
// this node has been ready; samples up to the first settled one in which this node is drawn ready are the
// baseline (no events).
func (t *Tracker) Nodes(now time.Time, o NodesObs, settled bool) []Event {
	listed := make(map[string]bool, len(o.Members))
	for _, m := range o.Members {
		listed[m.Name] = true
		r := t.nodes[m.Name]
		if r == nil {
			r = &nodeRec{}
			t.nodes[m.Name] = r
		}
		if !r.present || m.Updated != r.updated {
			r.updated, r.heardAt = m.Updated, now
		}
		r.info, r.present, r.goneAt, r.graceful = m, true, time.Time{}, false
	}
	var events []Event
	for _, name := range slices.Sorted(maps.Keys(t.nodes)) {
		r := t.nodes[name]
		if !listed[name] && r.present {
			r.present, r.goneAt = false, now
			r.graceful = now.Sub(r.heardAt) < t.cfg.Stale/2
		}
		routed := name == t.cfg.Self || o.Routed[name]
		switch {
		case routed:
			r.lostAt = time.Time{}
		case r.routed:
			r.lostAt = now
		}
		r.routed = routed
		state, detail := t.judge(name, r, o)
		if state != r.state {
			if t.nodesLive {
				events = append(events, Event{At: now.UnixMilli(), Kind: KindNode, Node: name, From: r.state, To: state, Detail: detail})
			}
			r.state, r.since = state, now
		}
		r.detail = detail
	}
	// The baseline ends once this node is settled and its own heartbeat says so too (it lags the prober by up
	// to a heartbeat): its becoming ready is part of its start, not news.
	if self := t.nodes[t.cfg.Self]; settled && self != nil && self.state == StateReady {
		t.nodesLive = true
	}
	t.forgetNodes(now)
	return events
}

// judge is a node's state from what this node observed of it.
func (t *Tracker) judge(name string, r *nodeRec, o NodesObs) (state, detail string) {
	ready := func() (string, string) {
		if r.info.Ready {
			return StateReady, ""
		}
		return StateNotReady, "its own readiness checks fail"
	}
	if name == t.cfg.Self {
		switch {
		case o.Draining:
			return StateDraining, "shutting down"
		case !o.Majority:
			return StateCutOff, "not routed to a majority of the cluster"
		}
		return ready()
	}
	if r.present {
		switch {
		case r.routed:
			return ready()
		case r.lostAt.IsZero():
			return StateCutOff, "heartbeats arrive, but no route from " + t.cfg.Self
		case r.heardAt.After(r.lostAt):
			return StateCutOff, "heartbeats still arrive through other nodes, but no route from " + t.cfg.Self
		case r.lostAt.Sub(r.heardAt) <= t.cfg.Abrupt:
			return StateDown, "its route closed while its heartbeats were flowing"
		}
		return StateCutOff, "it fell silent, then its route timed out"
	}
	switch {
	case r.graceful && r.routed:
		return StateDraining, "deleted its heartbeat: shutting down"
	case r.graceful:
		return StateLeft, "drained and disconnected"
	case r.routed:
		return StateNotReady, "heartbeat stale, but still routed"
	case r.state == StateCutOff || r.state == StateDown:
		return r.state, r.detail + "; heartbeat stale"
	}
	return StateDown, "heartbeat stale and no route"
}

// forgetNodes drops nodes gone for longer than ForgetNodes, and the longest gone beyond MaxNodes.
func (t *Tracker) forgetNodes(now time.Time) {
	var gone []string
	for name, r := range t.nodes {
		if r.present || name == t.cfg.Self {
			continue
		}
		if now.Sub(r.goneAt) > t.cfg.ForgetNodes {
			delete(t.nodes, name)
			continue
		}
		gone = append(gone, name)
	}
	if extra := len(t.nodes) - t.cfg.MaxNodes; extra > 0 {
		slices.SortFunc(gone, func(a, b string) int { return t.nodes[a].goneAt.Compare(t.nodes[b].goneAt) })
		for _, name := range gone[:min(extra, len(gone))] {
			delete(t.nodes, name)
		}
	}
}

// Sweep forgets rooms released or expired longer than ForgetRooms ago.
func (t *Tracker) Sweep(now time.Time) {
	for room, r := range t.rooms {
		if r.op != LeasePut && now.Sub(r.at) > t.cfg.ForgetRooms {
			delete(t.rooms, room)
		}
	}
}

// Leaders takes the stream leaders (and MetaStream's) as the prober last saw them; a stream missing from
// leaders has none. Samples up to and including the first settled one are the baseline.
func (t *Tracker) Leaders(now time.Time, leaders map[string]string, settled bool) []Event {
	var events []Event
	names := slices.Collect(maps.Keys(leaders))
	for name := range t.leaders {
		if _, ok := leaders[name]; !ok {
			names = append(names, name) // gone from the sample: no leader now
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if was, is := t.leaders[name], leaders[name]; was != is && t.leadersLive {
			events = append(events, Event{At: now.UnixMilli(), Kind: KindLeader, Stream: name, From: was, To: is})
		}
	}
	t.leaders = maps.Clone(leaders)
	t.leadersLive = t.leadersLive || settled
	return events
}

// NodeViews are the nodes of the picture, sorted by name.
func (t *Tracker) NodeViews() []NodeView {
	out := make([]NodeView, 0, len(t.nodes))
	for _, name := range slices.Sorted(maps.Keys(t.nodes)) {
		r := t.nodes[name]
		out = append(out, NodeView{Name: name, URL: r.info.URL, Admin: r.info.Admin, State: r.state, Ready: r.info.Ready,
			Routed: r.routed, Sockets: r.info.Sockets, Since: r.since.UnixMilli(), Detail: r.detail})
	}
	return out
}

// LeaderMap is a copy of the stream leaders.
func (t *Tracker) LeaderMap() map[string]string { return maps.Clone(t.leaders) }

// Holder is room's holder as last seen ("" when none or unknown).
func (t *Tracker) Holder(room string) (node string, epoch uint64) {
	r, ok := t.rooms[room]
	if !ok || r.op != LeasePut {
		return "", 0
	}
	return r.node, r.epoch
}
