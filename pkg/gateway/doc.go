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
// Goroutines: Run owns the publisher workers and the nodes-list refresher. Each socket has two: its HTTP handler
// (the reader) and its writer, both ended by closing the socket; Drain closes every socket with CloseDraining
// and waits for their handlers.
package gateway
