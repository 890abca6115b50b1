// Package room runs room ownership on a node: for every room the node serves it campaigns for the room's lease
// in the KV bucket `owners`; while it holds the lease it is the room's owner and runs the authoritative game
// loop; every node relays every served room's ticks through an epoch fence.
//
// Ownership (see docs/FAILOVER.md for the argument):
//   - Acquire by CAS (Create when the key is absent), or take over by CAS (Update at the holder's revision) when
//     the holder's renewals and its ticks have both been silent for StealAfter (HangAfter while its node is still
//     routed) and this node is in contact with a majority. A lease lives TTL (default 10 s) and is renewed every
//     RenewInterval (250 ms), so a healthy owner rides through the 4-9 s Raft election of a lost stream leader
//     (renewals stop, ticks do not), while an owner that hears from no majority for ContactLoss withholds its
//     ticks until a renewal succeeds, and one that stalls stops at its local deadline.
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
//   - Acks mean applied and durable (durable.go): a tick shows, per player, the highest seq both applied and seen
//     stored in INPUTS; the applied acks above that travel in the tick's Tm-Applied header and the snapshot's
//     durable member, so that a node restoring from either applies nothing twice.
//   - Before every tick and every snapshot write the owner checks the lease's local deadline; after a pause
//     (a freeze, a GC stall) it confirms the lease with a synchronous renewal before ticking again. Relays and
//     clients fence by (epoch, seq), so even a tick that slips through is dropped wherever a newer owner was seen.
//
// Goroutines: Manager.Run owns the owners-bucket watcher, the beacon publisher, the placement loop, one campaign
// goroutine per served room and, inside a campaign that holds the lease, the owner loop with its stream follower
// and snapshot writer. Relay owns no
// goroutines: its NATS subscriptions deliver on the client's goroutines and are unsubscribed by Close.
package room
