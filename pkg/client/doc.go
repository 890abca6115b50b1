// Package client is the Go client of the Tickmesh WebSocket protocol: the way to write bots, load generators and
// headless clients. It is the Go twin of the browser's transport.ts (endpoints, backoff, watchdog, close codes),
// session.ts (resume token and sequence counter) and the fencing half of snapshots.ts; rendering (interpolation)
// is the browser's alone.
//
// A Client is one player in one room. Its contract:
//
//   - Run connects to the endpoints in turn, starting at Config.First and moving to the next one after every
//     connection that ends, with a backoff between attempts (Backoff: full jitter, exponential, reset by a
//     connection that stayed welcomed). It says hello with the stored resume token and the next sequence number,
//     and reads until the connection ends; then again, until its context ends or a close code is final.
//   - The sequence counter numbers every hello (the join of a connection) and every input. It is saved to the
//     Store before its frame is sent, and raised to the ack of every welcome, so it never goes backwards while
//     the token is in use (the server applies an event only when its seq is above the player's ack). A welcome
//     whose ack is at or above the hello's seq means the join was stale: the client reconnects with a new one.
//   - Inputs are the arena's keys (Input) or a game's own payload (InputData, input.data); the welcome names the
//     room's game and its parameters. The latest input is sent again unchanged when no tick has acknowledged it
//     for a second (Config.ResendAfter), as docs/PROTOCOL.md asks: an input carries the whole input state, so
//     only the latest one matters.
//   - Ticks reach the handler decoded as far as fencing needs (room, epoch, seq, time), every one of them: Fresh
//     says whether the tick is above every tick the client accepted before, on any connection (a new node's
//     relay may be a tick behind the old one; a deposed owner's tick has a lower epoch). Tick.Decode returns the
//     whole tick; Tick.Ack finds one player's ack without decoding the rest.
//   - Close codes (protocol.Retryable): transient ones reconnect; 4501 (resume token refused) forgets the identity
//     and joins once as a new player, and a second 4501 before a welcome is final; the other final codes (4500,
//     4502, 4503 taken over by a newer connection, 4504) end Run with a *CloseError.
//   - A connection without a welcome for Config.WelcomeTimeout, or without a fresh tick for Config.Watchdog after
//     it, is dead: the client abandons it and reconnects.
//   - Protocol versions: hello names the version the client speaks (Config.Protocol, by default 2) and the
//     welcome the one the server speaks; ticks are decoded by that version's decoder behind the same Tick.
//     Version 1 is JSON; version 2's ticks are binary keyframes and deltas (docs/PROTOCOL.md, package compact),
//     applied to the room's state the client keeps for the connection, or, with Config.Light, read only as far
//     as the tick's position and the client's own ack. A frame that does not apply abandons the connection (the
//     next one starts with a keyframe). A node that answers protocol 2 with 4500 before the welcome gets
//     protocol 1 from the next connection on.
//
// Goroutines: Run runs in its caller's goroutine and calls the handler's functions from it, one at a time. While
// a connection is open, context.AfterFunc holds one more, which closes the socket when the context ends; Run
// waits for it before it returns. Input may be called from any goroutine while Run runs.
package client
