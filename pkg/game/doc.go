// Package game is the Tickmesh arena simulation: players join a rectangular
// arena, hold direction keys to move, and leave. A room owner keeps one
// [State], feeds it events with [State.Apply] and advances it with
// [State.Step] (20 times a second), publishing the state after every tick.
//
// # Contract
//
//   - Pure: no clock, no I/O, no network, no global mutable state. Time is the
//     tick counter advanced by Step; the only randomness is derived from the
//     State's seed with a fixed hash (see [Spawn]).
//   - Deterministic: integer arithmetic only. The same seed, the same Config and
//     the same sequence of Apply and Step calls give byte-identical
//     json.Marshal output on every platform. Players and tombstones are kept
//     sorted by ID, so there is no map iteration order to leak into the output.
//   - Exactly-once by sequence number: every event carries a number from its
//     player's own sequence space (see [Event]). A join or input is applied only
//     when its seq is above the player's Ack, and a leave only when it names the
//     player's current connection, so applying an event a second time, or an
//     event older than the player's Ack, never changes the state. A removed
//     player's Ack is kept in a tombstone for Config.TombstoneTicks, which
//     bounds how late a redelivery may come. This lets the owner apply events
//     from both core NATS and the JetStream replay.
//   - Not safe for concurrent use: a State belongs to one goroutine. Hand other
//     goroutines a copy made with [State.Clone] (or its JSON encoding).
//   - Owns no goroutines and holds no resources; a State can simply be dropped.
//
// Coordinates: X grows to the right and Y grows downwards; positions are
// clamped to [0, Width] x [0, Height] (both ends inclusive).
package game
