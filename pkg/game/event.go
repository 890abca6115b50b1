package game

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Keys is the bitmask of direction keys a player holds.
type Keys uint8

// Direction keys. KeyUp decreases Y, KeyDown increases it.
const (
	KeyUp    Keys = 1
	KeyDown  Keys = 2
	KeyLeft  Keys = 4
	KeyRight Keys = 8

	// AllKeys is the union of all valid key bits; any other bit is invalid.
	AllKeys = KeyUp | KeyDown | KeyLeft | KeyRight
)

// Valid reports whether k holds only known key bits (k <= 15).
func (k Keys) Valid() bool { return k&^AllKeys == 0 }

// Velocity returns the per-tick velocity of a player holding k at the given
// speed. Each axis moves at full speed (diagonals are not normalised) and
// opposite keys cancel each other out.
func (k Keys) Velocity(speed int) (vx, vy int) {
	if k&KeyLeft != 0 {
		vx -= speed
	}
	if k&KeyRight != 0 {
		vx += speed
	}
	if k&KeyUp != 0 {
		vy -= speed
	}
	if k&KeyDown != 0 {
		vy += speed
	}
	return vx, vy
}

// EventKind names what an Event does.
type EventKind string

// Event kinds.
const (
	KindJoin  EventKind = "join"
	KindInput EventKind = "input"
	KindLeave EventKind = "leave"
)

// Limits on event fields.
const (
	MaxPlayerIDLen = 64 // bytes; see ValidPlayerID
	MaxNameRunes   = 32
)

// Errors returned by Apply. Test with errors.Is.
var (
	// ErrInvalidEvent wraps every error of Event.Validate.
	ErrInvalidEvent = errors.New("game: invalid event")
	// ErrRoomFull is returned for a join of a new player when the room already
	// has Config.MaxPlayers players (online or within their grace period).
	ErrRoomFull = errors.New("game: room full")
)

// Event is one player event, the wire format of game.<room>.input:
//
//	{"kind":"join","player":"p1a2b3c4d5e6f7a8","name":"alice","seq":17}
//	{"kind":"input","player":"p1a2b3c4d5e6f7a8","seq":18,"keys":5}
//	{"kind":"leave","player":"p1a2b3c4d5e6f7a8","conn":17}
//
// Seq comes from the player's own sequence space (the client's input counter).
// A join consumes a seq and that value identifies the connection it opens; a
// leave names, in Conn, the connection it ends. Fields that a kind does not use
// must be zero (see Validate).
type Event struct {
	Kind   EventKind `json:"kind"`
	Player string    `json:"player"`
	Name   string    `json:"name,omitempty"` // join only
	Seq    uint64    `json:"seq,omitempty"`  // join and input
	Keys   Keys      `json:"keys,omitempty"` // input only
	Conn   uint64    `json:"conn,omitempty"` // leave only
}

// ValidPlayerID reports whether id is a well-formed player id: 1 to
// MaxPlayerIDLen bytes, each an ASCII letter, digit, '-' or '_'. That admits
// hex, base64url and NUID tokens while keeping ids safe in NATS subjects and in
// MsgID (which uses ':' as its separator).
func ValidPlayerID(id string) bool {
	if len(id) == 0 || len(id) > MaxPlayerIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// ValidName reports whether name is an acceptable display name: valid UTF-8,
// at most MaxNameRunes runes, every rune printable (unicode.IsPrint: letters,
// marks, numbers, punctuation, symbols and the ASCII space). The empty name is
// valid.
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

// Validate checks that e is well formed: a known kind, a valid player id
// (ValidPlayerID), and
//
//   - join:  Seq > 0, Name valid (ValidName; may be empty), Keys == 0, Conn == 0;
//   - input: Seq > 0, Keys <= 15, Name == "", Conn == 0;
//   - leave: Conn > 0, Seq == 0, Keys == 0, Name == "".
//
// Every error wraps ErrInvalidEvent.
func (e Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	switch e.Kind {
	case KindJoin, KindInput, KindLeave:
	default:
		return bad("unknown kind %q", e.Kind)
	}
	if !ValidPlayerID(e.Player) {
		return bad("%s: malformed player id %q", e.Kind, e.Player)
	}
	if e.Kind == KindLeave {
		if e.Conn == 0 {
			return bad("leave: conn must be positive")
		}
		if e.Seq != 0 {
			return bad("leave: unexpected seq")
		}
	} else {
		if e.Seq == 0 {
			return bad("%s: seq must be positive", e.Kind)
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
		if !e.Keys.Valid() {
			return bad("input: keys %d out of range [0, %d]", e.Keys, AllKeys)
		}
	} else if e.Keys != 0 {
		return bad("%s: unexpected keys", e.Kind)
	}
	return nil
}

// MsgID returns the JetStream deduplication id of e (the Nats-Msg-Id header):
// "<player>:<kind>:<seq>" for join and input, "<player>:leave:<conn>" for leave.
func (e Event) MsgID() string {
	n := e.Seq
	if e.Kind == KindLeave {
		n = e.Conn
	}
	return e.Player + ":" + string(e.Kind) + ":" + strconv.FormatUint(n, 10)
}
