// Package plainrelay is a minimal WebSocket broadcast server: the baseline the relay's CPU per delivered message
// is held to (issue #22, `task bench:baseline`, docs/BENCHMARKS.md). It has no NATS, no owner, no fencing, no
// inputs and no sessions; it does as little as a Go server with gorilla/websocket can to send every socket of a
// room the same tick, so that what the relay spends beyond it is the relay's own cost.
//
// Contract:
//
//   - /ws upgrades to a WebSocket and reads one hello (pkg/protocol). A hello of protocol 1 is answered with a
//     protocol 1 welcome: a new player id ("p" + 16 hex digits), no resume token, the room, node "plain", ack 0
//     and the arena's game and parameters. A hello of another version gets bad_protocol and close 4500, as from
//     a node from before protocol 2: pkg/client then says hello again in protocol 1. Any other first frame
//     closes the socket (1008). The socket then joins its room; nothing it sends later is read as a message.
//   - Every 1/TickRate s each room with sockets gets one protocol 1 tick (pkg/protocol Tick, encoded by
//     protocol.Encode): epoch 1, seq counting from 1, owner "plain", time now in Unix ms, the arena's globals and,
//     per player, an idle arena player (spawn position from arena.Spawn, no velocity, no keys, ack 0, conn the
//     hello's join seq, online), sorted by id: the shape and size of a real node's protocol 1 tick of an idle
//     arena room.
//     Config.ExtraPlayers adds players without a socket to each room's tick, standing for the fan-out setup's
//     seed client, which is in the relay's ticks but not on its sockets.
//   - The tick is encoded once, prepared once (websocket.NewPreparedMessage: its frame is built on the first
//     write) and written to each socket of the room in turn by the broadcaster, each write under a deadline of
//     Config.WriteTimeout. A socket whose write fails is closed and leaves its room at once: there is no queue
//     and no retry.
//   - Limits: at most MaxSockets sockets (more get HTTP 503 before the upgrade) and MaxRooms rooms (a hello for
//     one more gets too_many_rooms and close 4004). An empty room is forgotten.
//
// Goroutines: Start starts the HTTP server's Serve, one broadcaster per shard (Config.Shards; rooms are dealt to
// shards round robin as they are created) and one goroutine that waits for the end of the context or Close and
// then closes the listener, the broadcasters and every socket. Each socket has one goroutine: its HTTP handler,
// which after the welcome reads and discards the client's frames (gorilla answers pings and the close handshake
// only while something reads) until the socket fails or is closed, then takes it out of its room. There is no
// writer goroutine per socket. Close waits for all of them, the handlers too.
package plainrelay
