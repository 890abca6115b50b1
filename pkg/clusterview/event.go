package clusterview

// Event kinds.
const (
	KindLease   = "lease"   // a room's lease changed hands, was released or expired (How)
	KindResumed = "resumed" // a room's first tick under a new epoch reached this node (GapMs)
	KindNode    = "node"    // a node's state changed (From → To)
	KindLeader  = "leader"  // a stream's leader changed (From → To; "" is no leader)
)

// How a lease changed (Event.How).
const (
	HowTaken     = "taken"     // acquired while nobody held it (a new room, or after an expiry)
	HowHandoff   = "handoff"   // acquired right after its holder released it (a graceful handover)
	HowStolen    = "stolen"    // taken over from a holder that still had it (a takeover)
	HowReclaimed = "reclaimed" // the same node, restarted, took its own lease back under a new epoch
	HowReleased  = "released"  // its holder deleted it (shutdown, or the room closed)
	HowExpired   = "expired"   // nobody renewed it within its TTL (or it was purged)
	HowCorrupt   = "corrupt"   // the bucket holds a value that is not a lease
)

// Node states (NodeView.State, and From/To of KindNode events).
const (
	StateReady    = "ready"     // heartbeat fresh, routed, ready
	StateNotReady = "not_ready" // heartbeat fresh, routed, not ready (starting, or its own checks fail)
	StateDraining = "draining"  // it deleted its heartbeat (shutting down) but is still routed
	StateCutOff   = "cut_off"   // alive as far as anyone knows, but not routed to this node (or, for this node, not to a majority)
	StateDown     = "down"      // its route closed while its heartbeats were flowing, or its heartbeat went stale
	StateLeft     = "left"      // it drained and its routes closed
)

// MetaStream is the name State.Leaders and leader events use for the JetStream meta group.
const MetaStream = "meta"

// Event is one entry of the timeline. ID, Seq and Observer are set by the Hub; At by the Tracker.
type Event struct {
	ID       string `json:"id"`       // "<boot>-<seq>": unique across restarts of the observer
	Seq      uint64 `json:"seq"`      // the observer's sequence, from 1 at its start
	At       int64  `json:"at"`       // when the observer saw it, Unix ms (its clock)
	Observer string `json:"observer"` // the node that saw it
	Kind     string `json:"kind"`
	Room     string `json:"room,omitempty"`   // lease, resumed
	How      string `json:"how,omitempty"`    // lease
	Node     string `json:"node,omitempty"`   // lease: the new (or released) holder; resumed: the new owner; node: the node
	From     string `json:"from,omitempty"`   // lease, resumed: the previous holder; node: the previous state; leader: the previous leader
	To       string `json:"to,omitempty"`     // node: the new state; leader: the new leader ("" = none)
	Stream   string `json:"stream,omitempty"` // leader: a stream name, or MetaStream
	Epoch    uint64 `json:"epoch,omitempty"`  // lease, resumed: the new (or released) epoch
	// FromEpoch is the epoch before (lease: the previous holder's; resumed: the last tick's before the gap).
	FromEpoch uint64 `json:"from_epoch,omitempty"`
	// GapMs (resumed) is the time between the arrivals at the observer's relay of the room's last tick under
	// FromEpoch and its first under Epoch: the pause players connected to the observer saw. Microsecond precision.
	GapMs  float64 `json:"gap_ms,omitempty"`
	Detail string  `json:"detail,omitempty"` // node: what the state was judged from
}

// State is the picture of the cluster as one node sees it.
type State struct {
	Node       string            `json:"node"` // the observer
	Boot       string            `json:"boot"` // the observer's process, as in Event.ID
	Nodes      []NodeView        `json:"nodes"`
	Rooms      []RoomView        `json:"rooms"`       // at most Config.MaxRooms: the lobby first, then by name
	RoomsTotal int               `json:"rooms_total"` // rooms with a lease
	Leaders    map[string]string `json:"leaders"`     // stream (or MetaStream) → leader node, "" = none
}

// NodeView is one node in the picture.
type NodeView struct {
	Name    string `json:"name"`
	URL     string `json:"url"`   // public base URL
	Admin   string `json:"admin"` // admin listener's base URL: where the page can move
	State   string `json:"state"`
	Ready   bool   `json:"ready"`   // its last heartbeat's readiness
	Routed  bool   `json:"routed"`  // this node has a route to it (true for itself)
	Sockets int    `json:"sockets"` // WebSockets, from its last heartbeat
	Since   int64  `json:"since"`   // when it entered State, Unix ms (observer's clock)
	Detail  string `json:"detail,omitempty"`
}

// RoomView is one room with a lease.
type RoomView struct {
	Room  string `json:"room"`
	Owner string `json:"owner"`
	Epoch uint64 `json:"epoch"`
	// Players and Online come from the last tick this node relayed of the room; nil when it relays none (it has
	// no sockets there and does not own it).
	Players *int `json:"players"`
	Online  *int `json:"online"`
}
