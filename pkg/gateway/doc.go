// Package gateway serves browsers on /ws: the WebSocket side of a node. It speaks protocol v1 (pkg/protocol),
// gives players signed resume tokens (pkg/session) that work on every node, relays each room's fenced ticks
// (pkg/room.Relay) to its sockets and forwards players' events to the room's owner.
//
// Fan-out never blocks the producer: a room has one relay listener on this node whatever the number of sockets;
// each tick is framed once (its WebSocket frame's bytes) and offered to each socket. A socket with nothing else
// to write takes it at once, in a write that does not wait (as much as its send buffer takes; a flush goroutine
// writes any rest); otherwise the tick goes in the socket's one-slot queue, where the newest tick replaces an
// unsent older one. A socket whose tick stays unsent past SlowAfter is closed with CloseTooSlow. Control frames
// (welcome, nodes, pong, error) have their own small bounded queue.
//
// Events (join, input, leave) are sent twice, in batches of a room's events (publisher): over core NATS on the
// room's live subject, which no stream captures (so the owner applies them even while the INPUTS stream has no
// leader), and durably to INPUTS, one batch in flight per room, each sent again whole with its message id until
// the PubAck. An event waits at most BatchWindow for others of its room; a batch holds at most BatchMax. The node
// holds at most MaxPending inputs that INPUTS has not stored; an input beyond is answered not_ready and sent
// nowhere (joins and leaves are always taken, one of each per socket). A tick acknowledges an input once its
// owner has applied it and seen it stored (pkg/room).
//
// Goroutines: Run owns the publisher workers (rooms are sharded over them; a worker waits for the PubAck of each
// of its batches in flight on a goroutine of its own, and for those before it ends) and the housekeeping loop
// (node lists, keepalive pings, the no-owner watchdog). One NATS subscription takes every room's notices
// (wire.AllNotices) on the client's goroutine: New makes it, so that it precedes the first join, and it ends when
// Run returns. The HTTP handler returns after the hello; each socket
// then has one watcher goroutine,
// owned by the gateway, which waits for the socket to become readable with the smallest stack and has each
// burst of messages read by a short-lived goroutine that it waits for; and, only while the socket has frames
// that could not be written at once, one flush goroutine, which the watcher waits for before ending. All end
// when the socket closes; Drain closes every socket with CloseDraining and waits for their watchers, Kill cuts
// them and waits too.
package gateway
