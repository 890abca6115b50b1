// Package clusterview is the live cluster view's server side: what one node observes of the cluster, turned into
// a picture (State: the nodes with their state, the rooms each owns, the stream leaders) and a timeline of events
// (leases taken, handed off or stolen with the tick gap players saw, nodes joining, leaving or cut off, stream
// leaders moving), pushed to browsers as Server-Sent Events.
//
// Contract:
//   - Events are derived on each node from what it already observes (Tracker, pure: every method takes the
//     observation and the time): the owners watcher's entries, the relay's first tick of a new epoch, membership
//     heartbeats with the node's routes, and the readiness prober's stream leaders. Nothing is written to NATS.
//   - What a node saw before it settled (its first replay of the owners bucket, membership and leaders before it
//     was first ready) is the baseline: it shapes the picture but makes no events.
//   - The Hub keeps the last state, a bounded ring of recent events (Config.History) replayed to every new client,
//     and at most Config.MaxClients streams. Each stream has a queue of Config.QueueLen messages: a client whose
//     queue is full is dropped; producers never wait for a client. Every write has its own deadline
//     (Config.WriteTimeout), so a stream outlives the HTTP server's WriteTimeout and a client that stops reading
//     is cut off within that time.
//
// Goroutines: Hub.Run samples the node (Source) and sends heartbeats until its context ends, then ends every
// stream; each stream runs in the HTTP server's goroutine for its request (Hub.ServeHTTP) and returns when the
// client goes, is dropped, or Run ends. Tracker owns none.
//
// The wire format (docs/ARCHITECTURE.md, "The cluster view's event stream"): `GET /api/cluster/events`,
// text/event-stream, with the event types `state` (State, on connect and on every change), `timeline` (Event,
// with an SSE id), `heartbeat` and `bye`.
package clusterview
