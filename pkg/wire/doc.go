// Package wire is the one home of what crosses NATS between Tickmesh nodes and tools: subject names, tick
// headers, the names and configurations of the streams and buckets, and the encoding of player events. Every
// producer and consumer (the owner loop, the relay, the gateway's publisher, failbench, the chaos suite,
// loadgen) imports it instead of spelling any of it out again.
//
// Subjects, per room (room names are validated with ValidRoom before a subject is built):
//
//	game.<room>.frames every tick of the room as protocol 2 frames, published by its owner on core NATS while
//	                   something subscribes there (relays take the bundles); headers Tm-Epoch, Tm-Seq, Tm-Time,
//	                   Tm-Applied (and Tm-Key when a keyframe follows the delta)
//	game.<room>.tick   the same ticks as protocol 1 JSON, published while something listens there; the same
//	                   headers but Tm-Key, and Tm-Frames
//	game.<room>.sync   a relay asking the owner for a keyframe
//	game.<room>.notice the owner telling the gateways of an event it refused (a join of a full room)
//	game.<room>.input  player events, stored by the INPUTS stream (durable path, deduplicated by message id):
//	                   a batch of a room's events per message (or one event, the form before batches)
//	game.<room>.stored each input message once INPUTS stored it, republished by the stream's leader with its
//	                   stream sequence and the room's previous one (StoredPosition): what the owner follows
//	game.<room>.live   the same events on core NATS, captured by no stream (the owner's fast path)
//	tickmesh.beacon.<node>  a node's proof of life on core NATS (BeaconSubject), once per tick period
//	tickmesh.handoff.<node> a room's name, from the node that just handed it to <node> (HandoffSubject)
//	tickmesh.fenced         a node's name, from the node that just fenced its session (FencedSubject)
//	tickmesh.bundle.<shard>.<node> the frames of many rooms' ticks in one message (bundle.go), from their owner
//	                        <node>: what relays follow
//
// Streams and buckets: INPUTS (the event log a new owner replays), owners (room leases, KV), snapshots (room
// state, KV) and nodes (membership heartbeats, KV).
//
// The package is pure: no I/O, no clock, no goroutines.
package wire
