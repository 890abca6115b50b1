// Package gateway serves browsers on /ws: the WebSocket side of a node. It speaks protocol v1 (pkg/protocol),
// gives players signed resume tokens (pkg/session) that work on every node, relays each room's fenced ticks
// (pkg/room.Relay) to its sockets and forwards players' events to the room's owner.
//
// Fan-out never blocks the producer: a room has one relay listener on this node whatever the number of sockets;
// each tick is framed once (a websocket.PreparedMessage) and put in each socket's one-slot queue, where the
// newest tick replaces an unsent older one; a socket whose tick stays unsent past SlowAfter is closed with
// CloseTooSlow. Control frames (welcome, nodes, pong, error) have their own small bounded queue.
//
// Events (join, input, leave) are sent twice: at once over core NATS with their JetStream message id (so the
// owner applies them even while the INPUTS stream has no leader; the stream also stores that copy when it can),
// and through a per-node publisher that retries a JetStream publish with the same id until the PubAck: only
// then is an event acknowledged.
//
// Goroutines: Run owns the publisher workers and the housekeeping loop (node lists, keepalive pings, the
// no-owner watchdog). The HTTP handler returns right after the upgrade; each socket then has one reader
// goroutine, owned by the gateway, and, only while it has frames to write, one flush goroutine, which its
// reader waits for before ending. Both end when the socket closes; Drain closes every socket with
// CloseDraining and waits for their readers, Kill cuts them and waits too.
package gateway
