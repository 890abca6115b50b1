// Package room runs room ownership on a node: the node holds one session in the KV bucket `owners` and the
// leases of the rooms it owns under it; one control loop decides, for every room, whether this node creates,
// adopts, takes over or hands over its lease; while it holds a room's lease it is the room's owner and runs the
// authoritative game loop; every node relays every served room's ticks through an epoch fence.
//
// Ownership (see docs/FAILOVER.md for the argument):
//   - A node's session is renewed by one CAS write per RenewInterval (250 ms) whatever the number of its rooms,
//     with a per-message TTL (default 10 s); a room's lease names the session and is written only when the room
//     changes hands (create, takeover, handoff, release), each by CAS. A healthy owner rides through the 4-9 s
//     Raft election of a lost stream leader (renewals stop, ticks do not).
//   - Takeover: a holder whose session renewals and ticks (the tick count of its beacons, and the frames of its
//     rooms that this node's relay accepts: Relay.Silence) have both been silent for StealAfter
//     (HangAfter while its node is still routed) has its session fenced (deleted by CAS) by a node in contact
//     with a majority, who tells the others (a fence notice: they read the session key at once instead of
//     waiting for their watchers), and its rooms are taken over by the survivors (a node that follows a room's
//     ticks first, the others in the room's hash order). An owner that hears from no majority for ContactLoss
//     withholds its ticks until a renewal succeeds; one that stalls stops at its local deadline.
//   - Balance: a node with more than its share of rooms hands some over gracefully (final snapshot, then the lease
//     rewritten for the receiver, which adopts it); empty rooms close and release their lease after EmptyAfter.
//   - Liveness: every node publishes a beacon on core NATS each tick period; beacons say who is alive and in
//     contact, and whether this node looks cut off (CutOff, which the gateway uses to move its players).
//   - Placement: the leaders of the ownership streams are kept off the nodes that own rooms (on every leader
//     election, before a new owner's first tick, and every 2 s), and a node leading one lets other candidates take
//     rooms first.
//   - Epochs: a new owner's epoch is above the epoch of the lease it replaces, of the latest snapshot and of any
//     tick this node has seen; the owner's first act is a takeover snapshot by CAS on the revision it restored
//     from, so two owners can never both write a snapshot from the same history.
//   - The owner restores the newest state it can prove: the latest snapshot, or the latest fenced tick relayed
//     by this node when that is newer (ticks carry the full game state), then replays the events of the INPUTS
//     stream stored after the snapshot's input position (batches of events, or single events from nodes before
//     batches). The simulation applies each event at most once (by per-player sequence), so replays and the two
//     delivery paths (core NATS for speed, the stream for durability) never double-apply.
//   - Ticks: the owner publishes every tick as protocol 2 frames (a keyframe at its first tick, every second and
//     on a relay's request, deltas between) in the node's tick bundles (bundler.go: the frames of every room the
//     node owns that ticked within BundleWindow, one NATS message per bundle shard), on the room's own frames
//     subject and as protocol 1 JSON only while something subscribes there (Interest); relays keep each room's
//     state from the bundles' frames, and follow an old owner's JSON ticks only while the frames are silent. A
//     term sends its bundled ticks before it ends, so that its last tick leaves before a new owner's first.
//   - Acks mean applied and durable (durable.go): a tick shows, per player, the highest seq both applied and seen
//     stored in INPUTS; the applied acks above that travel in the tick's Tm-Applied header and the snapshot's
//     durable member, so that a node restoring from either applies nothing twice.
//   - Snapshots: every SnapshotInterval an owner offers its room's snapshot to the node's snapshot writer only if
//     something a new owner would restore changed (changeKey: the state but for the tick number, the input
//     position, the durable member); the writer stores each round's offers in atomic batches (pkg/kvbatch), each
//     checked against its room's revision. Takeover and final snapshots are written by the term itself.
//   - Before every tick and every snapshot write the owner checks the lease's local deadline; after a pause
//     (a freeze, a GC stall) it confirms the lease with a synchronous renewal before ticking again. Relays and
//     clients fence by (epoch, seq), so even a tick that slips through is dropped wherever a newer owner was seen.
//
// Goroutines: Manager.Run owns the owners-bucket watcher, the beacon publisher, the placement loop, the session
// keeper, the control loop, the snapshot writer, the tick bundler (which sends each bundle when its window
// ends), the reader of handoff notices (which reads a lease handed to
// this node directly, not to wait for a lagging watcher) and the reader of fence notices (which reads the session
// key of a node a peer fenced directly, for the same reason); one goroutine per acquisition in progress (which
// runs the term while it holds the lease) and per fence of a silent session; and, per owned room, the owner
// loop's stream follower, which reads the room's stored copies (wire.StoredSubject) from a channel subscription
// (no goroutine of the NATS client, no JetStream consumer) that the term ends with itself. Run waits for all of
// them. Its one subscription to keyframe requests (wire.AllSync) hands each to the term of its room, if one runs
// here; it lives as long as Run. Relay owns no goroutines: its NATS subscriptions (one per bundle shard, one per
// room whose JSON it follows) deliver on the client's goroutines and are unsubscribed by Close, which also stops
// each room's JSON fallback timer.
package room
