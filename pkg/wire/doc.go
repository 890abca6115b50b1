// Package wire is the one home of what crosses NATS between Tickmesh nodes and tools: subject names, tick
// headers, the names and configurations of the streams and buckets, and the encoding of player events. Every
// producer and consumer (the owner loop, the relay, the gateway's publisher, failbench, the chaos suite,
// loadgen) imports it instead of spelling any of it out again.
//
// Subjects, per room (room names are validated with ValidRoom before a subject is built):
//
//	game.<room>.tick   every tick of the room, published by its owner on core NATS; headers Tm-Epoch, Tm-Seq,
//	                   Tm-Time, Tm-Applied
//	game.<room>.input  player events, stored by the INPUTS stream (durable path, deduplicated by message id):
//	                   a batch of a room's events per message (or one event, the form before batches)
//	game.<room>.live   the same events on core NATS, captured by no stream (the owner's fast path)
//	tickmesh.beacon.<node>  a node's proof of life on core NATS (BeaconSubject), once per tick period
//
// Streams and buckets: INPUTS (the event log a new owner replays), owners (room leases, KV), snapshots (room
// state, KV) and nodes (membership heartbeats, KV).
//
// The package is pure: no I/O, no clock, no goroutines.
package wire
