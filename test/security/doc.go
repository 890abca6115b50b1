// Package security runs the attacks of issue #14 against real clusters (in-process nodes of pkg/node/nodetest,
// real NATS servers, real WebSockets, the real nats CLI where a recipe uses it) and asserts that each one fails
// while the cluster keeps serving its players. Each attack is one test function, named for what must hold:
//
//   - routes_test.go: a stranger's node without route credentials, or with a certificate of another CA, is not
//     routed, not listed, and does not change the cluster's size or readiness;
//   - natsusers_test.go: the client port refuses connections without credentials; a viewer's forged tick,
//     owners write and forged inputs are refused by the server, while it can watch the game; the system
//     user exists only with SYS_PASSWORD;
//   - sessions_test.go: expired, forged and invalid-id resume tokens get close 4501;
//   - http_test.go: forwarded addresses are believed from trusted proxies only; idle keep-alive connections
//     are closed; an upgraded WebSocket is not bound by the HTTP write timeout;
//   - peers_test.go: a node that is gone for good is removed from JetStream's peer set with the documented
//     nats CLI recipe (task peer-remove);
//   - limits_test.go: room limits per address and per node, a full room, series of closed rooms, a lease no
//     node wrote (epoch 2^64-1) and forged tick headers each get a clear answer and leave the others playing;
//   - churn_test.go: join/leave churn from one address keeps the room ticking with at most TombstoneCap
//     tombstones in its snapshot; a hello far above the player's ack is answered and can be corrected.
//
// The gateway's own tests cover oversized and malformed frames (pkg/gateway), and pkg/room those of forged seqs
// against a real owner.
//
// The package has no code of its own outside its tests.
package security
