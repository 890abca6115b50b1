package wire

import (
	"strings"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// ValidRoom reports whether s is a valid room name: 1-32 characters of a-z, 0-9 and '-'. Room names go into
// subjects, so nothing else is allowed.
func ValidRoom(s string) bool { return protocol.ValidRoom(s) }

// MaxNodeLen is the longest node name.
const MaxNodeLen = 64

// ValidNode reports whether s is a valid node name: 1-64 characters of a-z, 0-9, '_' and '-'. It is the one rule
// for node names: pkg/node checks -name with it, and a name read off the wire is checked with it before it goes
// into a subject or a key.
func ValidNode(s string) bool {
	if len(s) == 0 || len(s) > MaxNodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// TickSubject is where a room's ticks are published as protocol 1 JSON: by an owner while something listens
// there (a node from before protocol 2 during a rolling upgrade, the nats CLI, a tool), and by nodes from before
// protocol 2 always. Owners check the subject's interest every tick, so JSON costs nothing while nobody reads it.
func TickSubject(room string) string { return "game." + room + ".tick" }

// FramesSubject is where a room's owner publishes every tick as protocol 2 frames (package compact): a delta,
// a keyframe, or a delta followed by a keyframe (HeaderKey), while something subscribes there (a relay from
// before bundles, during a rolling upgrade; a tool). Relays take the same frames from the owner's tick bundles
// (BundleSubject) and forward the delta to sockets that are in step.
func FramesSubject(room string) string { return "game." + room + ".frames" }

// SyncSubject is where a relay that lost track of a room's frames (a missed delta, a room it just started
// serving) asks the owner for a keyframe; the owner adds one to its next tick. Core NATS, no reply.
func SyncSubject(room string) string { return "game." + room + ".sync" }

// SyncRoom is the room of a SyncSubject, and false for any other subject or an invalid room name.
func SyncRoom(subject string) (string, bool) { return roomOf(subject, ".sync") }

// roomOf is the room of subject "game.<room><suffix>", and false for any other subject or an invalid room name.
func roomOf(subject, suffix string) (string, bool) {
	room, ok := strings.CutPrefix(subject, "game.")
	if !ok {
		return "", false
	}
	room, ok = strings.CutSuffix(room, suffix)
	if !ok || !ValidRoom(room) {
		return "", false
	}
	return room, true
}

// InputSubject is where a room's player events are published durably: INPUTS stores them and the owner follows
// the stream.
func InputSubject(room string) string { return "game." + room + ".input" }

// StoredSubject is where INPUTS republishes a room's input message once it is stored (the stream's RePublish, on
// its leader, after a quorum has the message): the owner's stream follower takes the room's events from here,
// with no JetStream consumer. Each copy carries its stream sequence and the sequence of the room's message stored
// before it (StoredPosition), by which the follower sees a copy it missed and reads it from the stream. Core NATS:
// a copy can be lost, the stored message cannot.
func StoredSubject(room string) string { return "game." + room + ".stored" }

// storedDestination is the RePublish destination that makes StoredSubject of a room's InputSubject.
const storedDestination = "game.{{wildcard(1)}}.stored"

// LiveSubject is where the same events go on core NATS first, for the owner to apply at once (also while the
// stream has no leader). No stream captures it: a copy here that the stream also stored would race the durable
// publish of the same message id, which JetStream refuses while the first copy is still being replicated
// ("duplicate message id is in process", error 10158).
func LiveSubject(room string) string { return "game." + room + ".live" }

// Wildcards over every room.
const (
	AllTicks  = "game.*.tick"
	AllFrames = "game.*.frames"
	AllSync   = "game.*.sync" // every node subscribes once and hands a request to the room's term, if it runs one
	// AllNotices: every gateway subscribes once and hands a notice to the room's sockets on its node, if any.
	AllNotices = "game.*.notice"
	AllInputs  = "game.*.input"
	AllGame    = "game.>"
)

// NoticeSubject is where a room's owner tells the gateways about an event it refused (a join of a full room),
// so that the player's socket gets an answer instead of silence. Core NATS: a lost notice costs an answer, not
// state.
func NoticeSubject(room string) string { return "game." + room + ".notice" }

// NoticeRoom is the room of a NoticeSubject, and false for any other subject or an invalid room name.
func NoticeRoom(subject string) (string, bool) { return roomOf(subject, ".notice") }

// HandoffSubject is where a node that handed a room over tells the receiving node (Node.Name: [a-z0-9_-], a
// valid subject token) the room's name: the receiver reads the room's lease directly and adopts it without
// waiting for its owners watcher, which may lag (just after a freeze, or while its consumer is re-created). Core
// NATS: a lost notice costs the watcher's delay, not state; the lease in the owners bucket is what counts.
func HandoffSubject(node string) string { return "tickmesh.handoff." + node }

// FencedSubject is where a node that fenced a silent node's session (deleted its key by CAS) tells every node the
// fenced node's name (Node.Name: ValidNode): each reads that session key directly and, when it is gone, treats
// the node's rooms as orphans at once instead of waiting for its owners watcher, which may lag (its consumer's
// server may be the node that died). The survivors take a dead node's rooms over in hash order, 250 ms a rank,
// so a survivor that learns of the fence late sees the next one take its rooms. Core NATS: a lost notice costs
// the watcher's delay, not state; the session key in the owners bucket is what counts, never the notice.
const FencedSubject = "tickmesh.fenced"
