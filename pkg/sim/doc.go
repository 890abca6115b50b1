// Package sim is the deterministic state of a Tickmesh room: the framework's roster of players, with their
// sequence numbers, connections, grace periods and tombstones, around the state of the room's game (package
// game). A room owner keeps one [Room], feeds it player events with [Room.Apply] and advances it with
// [Room.Step] at the room's tick rate, publishing it after every tick.
//
// # Contract
//
//   - Pure: no clock, no I/O, no network, no goroutines. Time is the tick counter advanced by Step.
//   - Deterministic when the game is: the same game and Config, seed and sequence of Apply and Step calls give
//     the same encoding (AppendJSON) and the same game View.
//   - Exactly-once by sequence number: every event carries a number from its player's own sequence space (see
//     [Event]). A join or input is applied only when its seq is above the player's Ack, and a leave only when it
//     names the player's current connection, so applying an event a second time, or an event older than the
//     player's Ack, never changes the room. A removed player's Ack is kept in a tombstone for
//     Config.TombstoneTicks, and at most Config.TombstoneCap tombstones are kept (the oldest dropped first),
//     which together bound how late a redelivery may come. This lets the owner apply events from both core NATS
//     and the JetStream replay.
//   - Bounded: at most Config.MaxPlayers players and Config.TombstoneCap tombstones; counters at most
//     MaxCounter; an event's seq at most MaxSeqJump above its player's ack, so that no event (forged or
//     corrupt) can push a player's ack to where its own later events are ignored.
//   - The game sees a well-formed event order (package game's contract): the framework turns joins, leaves,
//     inputs and grace expiry into game.Event values, and decodes input payloads with the game.
//   - Not safe for concurrent use: a Room belongs to one goroutine.
//
// [Games] maps room names to games (GameRule, ParseGameRules): a room plays the game of the longest matching
// rule.
package sim
