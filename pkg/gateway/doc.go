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
// Events (join, input, leave) are sent twice: at once over core NATS on the room's live subject, which no stream
// captures (so the owner applies them even while the INPUTS stream has no leader), and through a per-node
// publisher that retries a JetStream publish with the event's message id until the PubAck: only then is an
// event acknowledged. Each step of the publisher costs the same however many publishes are in flight.
//
// Goroutines: Run owns the publisher workers and the housekeeping loop (node lists, keepalive pings, the
// no-owner watchdog). The HTTP handler returns after the hello; each socket then has one watcher goroutine,
// owned by the gateway, which waits for the socket to become readable with the smallest stack and has each
// burst of messages read by a short-lived goroutine that it waits for; and, only while the socket has frames
// that could not be written at once, one flush goroutine, which the watcher waits for before ending. All end
// when the socket closes; Drain closes every socket with CloseDraining and waits for their watchers, Kill cuts
// them and waits too.
package gateway
