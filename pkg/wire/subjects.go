package wire

import "github.com/tickmesh/tickmesh/pkg/protocol"

// ValidRoom reports whether s is a valid room name: 1-32 characters of a-z, 0-9 and '-'. Room names go into
// subjects, so nothing else is allowed.
func ValidRoom(s string) bool { return protocol.ValidRoom(s) }

// TickSubject is where a room's ticks are published.
func TickSubject(room string) string { return "game." + room + ".tick" }

// InputSubject is where a room's player events are published durably: INPUTS stores them and the owner follows
// the stream.
func InputSubject(room string) string { return "game." + room + ".input" }

// LiveSubject is where the same events go on core NATS first, for the owner to apply at once (also while the
// stream has no leader). No stream captures it: a copy here that the stream also stored would race the durable
// publish of the same message id, which JetStream refuses while the first copy is still being replicated
// ("duplicate message id is in process", error 10158).
func LiveSubject(room string) string { return "game." + room + ".live" }

// Wildcards over every room.
const (
	AllTicks  = "game.*.tick"
	AllInputs = "game.*.input"
	AllGame   = "game.>"
)

// NoticeSubject is where a room's owner tells the gateways about an event it refused (a join of a full room),
// so that the player's socket gets an answer instead of silence. Core NATS: a lost notice costs an answer, not
// state.
func NoticeSubject(room string) string { return "game." + room + ".notice" }
