package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// Kind names what an Event does.
type Kind string

// Event kinds.
const (
	KindJoin  Kind = "join"
	KindInput Kind = "input"
	KindLeave Kind = "leave"
)

// Limits on event fields.
const (
	// MaxCounter is the largest seq, conn or ack: 2^53-1, the largest integer a JavaScript number holds
	// exactly. An event with a larger one is invalid.
	MaxCounter = 1<<53 - 1
	// MaxSeqJump is how far above a player's ack (or its tombstone's) the seq of its next event may be. An event
	// further above is refused (ErrSeqJump), so that no event can push a player's ack to where the player's own
	// later events are ignored; the join of a player the room does not know may have any seq up to
	// MaxCounter-MaxSeqJump. A client numbers its events consecutively (or reserves small blocks), so its
	// next seq is never near this far ahead.
	MaxSeqJump = 1 << 20
	// MaxNameRunes bounds a display name.
	MaxNameRunes = 32
	// MaxDataBytes bounds an input payload of any game; each game declares its own, smaller bound.
	MaxDataBytes = game.MaxInputLimit
)

// Errors returned by Apply. Test with errors.Is.
var (
	// ErrInvalidEvent wraps every error of Event.Validate and every input payload the game refuses.
	ErrInvalidEvent = errors.New("sim: invalid event")
	// ErrSeqJump is returned for an event whose seq is more than MaxSeqJump above its player's ack (or its
	// tombstone's); it wraps ErrInvalidEvent.
	ErrSeqJump = fmt.Errorf("%w: seq too far above the player's ack", ErrInvalidEvent)
	// ErrRoomFull is returned for a join of a new player when the room already has Config.MaxPlayers players
	// (online or within their grace period).
	ErrRoomFull = errors.New("sim: room full")
)

// Event is one player event, the wire format of game.<room>.input and game.<room>.live:
//
//	{"kind":"join","player":"p1a2b3c4d5e6f7a8","name":"alice","seq":17}
//	{"kind":"input","player":"p1a2b3c4d5e6f7a8","seq":18,"keys":5}
//	{"kind":"input","player":"p1a2b3c4d5e6f7a8","seq":19,"data":{"x":120,"y":40}}
//	{"kind":"leave","player":"p1a2b3c4d5e6f7a8","conn":17}
//
// Seq comes from the player's own sequence space (the client's input counter). A join consumes a seq and that
// value identifies the connection it opens; a leave names, in Conn, the connection it ends. An input's payload
// is Data (the game's JSON payload), or, for a game that implements game.LegacyKeys (the arena), the bitmask
// Keys: the form nodes wrote before games had payloads, absent when zero. Fields that a kind does not use must
// be zero (see Validate).
type Event struct {
	Kind   Kind            `json:"kind"`
	Player string          `json:"player"`
	Name   string          `json:"name,omitempty"` // join only
	Seq    uint64          `json:"seq,omitempty"`  // join and input
	Keys   uint8           `json:"keys,omitempty"` // input of a game.LegacyKeys game only
	Conn   uint64          `json:"conn,omitempty"` // leave only
	Data   json.RawMessage `json:"data,omitempty"` // input only: the game's payload
}

// ValidName reports whether name is an acceptable display name: valid UTF-8, at most MaxNameRunes runes, every
// rune printable (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space). The empty
// name is valid.
func ValidName(name string) bool {
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameRunes {
		return false
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Validate checks that e is well formed: a known kind, a valid player id (game.ValidPlayerID), and
//
//   - join:  1 <= Seq <= MaxCounter, Name valid (ValidName; may be empty), no Keys, Conn or Data;
//   - input: 1 <= Seq <= MaxCounter, at most one of Keys and Data, Data at most MaxDataBytes of valid JSON,
//     no Name or Conn;
//   - leave: 1 <= Conn <= MaxCounter, no Seq, Name, Keys or Data.
//
// The payload itself is the game's to check (Room.Apply). Every error wraps ErrInvalidEvent.
func (e Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	switch e.Kind {
	case KindJoin, KindInput, KindLeave:
	default:
		return bad("unknown kind %q", e.Kind)
	}
	if !game.ValidPlayerID(e.Player) {
		return bad("%s: malformed player id %q", e.Kind, e.Player)
	}
	if e.Kind == KindLeave {
		if e.Conn == 0 || e.Conn > MaxCounter {
			return bad("leave: conn %d out of [1, %d]", e.Conn, uint64(MaxCounter))
		}
		if e.Seq != 0 {
			return bad("leave: unexpected seq")
		}
	} else {
		if e.Seq == 0 || e.Seq > MaxCounter {
			return bad("%s: seq %d out of [1, %d]", e.Kind, e.Seq, uint64(MaxCounter))
		}
		if e.Conn != 0 {
			return bad("%s: unexpected conn", e.Kind)
		}
	}
	if e.Kind == KindJoin {
		if !ValidName(e.Name) {
			return bad("join: name must be at most %d printable characters", MaxNameRunes)
		}
	} else if e.Name != "" {
		return bad("%s: unexpected name", e.Kind)
	}
	if e.Kind == KindInput {
		if e.Keys != 0 && e.Data != nil {
			return bad("input: keys and data are exclusive")
		}
		if e.Data != nil && (len(e.Data) > MaxDataBytes || !json.Valid(e.Data)) {
			return bad("input: data must be one JSON value of at most %d bytes", MaxDataBytes)
		}
	} else if e.Keys != 0 || e.Data != nil {
		return bad("%s: unexpected input payload", e.Kind)
	}
	return nil
}

// MsgID returns the JetStream deduplication id of e (the Nats-Msg-Id header, after the room):
// "<player>:<kind>:<seq>" for join and input, "<player>:leave:<conn>" for leave.
func (e Event) MsgID() string {
	n := e.Seq
	if e.Kind == KindLeave {
		n = e.Conn
	}
	return e.Player + ":" + string(e.Kind) + ":" + strconv.FormatUint(n, 10)
}

// Equal reports whether e and f are the same event (Data compared as bytes).
func (e Event) Equal(f Event) bool {
	return e.Kind == f.Kind && e.Player == f.Player && e.Name == f.Name && e.Seq == f.Seq && e.Keys == f.Keys &&
		e.Conn == f.Conn && bytes.Equal(e.Data, f.Data)
}
