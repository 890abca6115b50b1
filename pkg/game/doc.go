// Package game is the contract between Tickmesh and a game. A game is deterministic Go code that Tickmesh runs
// in every room that plays it: the room's owner node feeds it player events, advances it at the room's tick
// rate, publishes its full state after every tick, and, when the owner dies, restores it on another node from
// the last published tick (or a snapshot) and replays the events stored since. A game only supplies rules; the
// framework (package sim, run by package room) keeps everything else: leases and epochs, per-player sequence
// numbers and exactly-once application, the roster of players with their connections and grace periods,
// tombstones, snapshots and replay, relay, fencing, resume and limits.
//
// # What a game implements
//
// A [Game] (the rules with their configuration, shared by every room of the game) gives its [Info] (name, the
// [Schema] of its state, its input size bound, the parameters clients learn in welcome), makes a new [State]
// from a seed, restores a State from a [View], and validates input payloads from the wire. A State applies
// [Event]s, advances one tick with Step, and writes its full state as a View.
//
// # The contract
//
//   - Deterministic. The same seed, the same Game configuration and the same calls (Apply, Step, and Restore of
//     a View) give the same Views on every platform and every run. Use integer arithmetic, iterate in a fixed
//     order (never over a map), and derive randomness from the seed and the tick with a fixed hash.
//   - Pure. No clock, no I/O, no network, no goroutines, no global mutable state, no unseeded randomness. Time
//     is the tick number Step receives.
//   - The View is the whole state. View writes everything that the future of the state depends on, and
//     Restore(seed, tick, View) continues exactly as the original would. This is what lets another node take a
//     room over from the last tick it relayed: ticks carry the View. A game's state is therefore public: every
//     player receives all of it (hidden information is out of scope for this API).
//   - Numbers only, declared. A View holds int64 values in the shape its Schema declares (globals, per-player
//     fields, lists of shared objects with ids), each within its field's declared range, with at most the
//     declared number of objects. The framework encodes it generically (protocol 1 JSON ticks, snapshots, and
//     later binary keyframes and deltas), and bounds its size from the schema ([Schema.MaxJSONBytes]).
//   - Events come from the framework, already checked. The framework applies a player's events at most once and
//     in a well-formed order: a player's first event is a Join; Inputs come only between a Join and the next
//     Leave; a Join may follow a Join (a newer connection replaced the current one); Remove comes only after a
//     Leave, once the player's grace period is over, and is the player's last event until a new Join. Input
//     values are what DecodeInput returned for the payload. A game never sees sequence numbers, connections,
//     tombstones or the room's player limit.
//   - Inputs are validated strictly. DecodeInput refuses anything but a well-formed payload of at most
//     Info().MaxInputBytes bytes (unknown members, wrong types, values out of range), with an error that says
//     why; the error reaches the client as a bad_field message.
//   - Not safe for concurrent use: a State belongs to the owner loop. A Game is immutable and shared.
//
// # Checking a game
//
// Package gametest is a conformance kit a game author runs in their own tests (gametest.Run): it drives the
// game inside the framework's roster with random event sequences and checks determinism, exactly-once under
// duplicates and replays, snapshot and restore at random points, refusal of invalid payloads, the schema and
// the size bound. docs/GAMES.md walks through writing a game, with games/collect as the example.
package game
