// Package protocol defines the Tickmesh WebSocket protocol spoken between browsers and nodes, versions 1 and 2:
// the message types, strict decoding of client messages, canonical encoding, error codes and close codes.
//
// Every frame is a WebSocket text frame holding one JSON object with a "type" member, except the ticks of
// version 2, which are binary frames of package compact. Client messages
// (hello, input, ping) are decoded strictly by DecodeClient; server messages (welcome, nodes, tick, error,
// pong) are produced by Encode. docs/PROTOCOL.md is the normative description; the golden fixtures under
// testdata/fixtures are shared with the TypeScript client.
//
// The package is pure: no I/O, no clock, no goroutines.
package protocol

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// Protocol versions, sent in hello and welcome. Version 2 differs from version 1 in ticks only: they are binary
// frames, keyframes and deltas (package compact), instead of JSON text frames; every other message is the same.
const (
	Version  = 1 // JSON ticks
	Version2 = 2 // binary ticks (keyframes and deltas)
	// MaxVersion is the newest version this package speaks; it speaks every one from Version on.
	MaxVersion = Version2
)

// Message type names (the "type" member).
const (
	TypeHello   = "hello"
	TypeInput   = "input"
	TypePing    = "ping"
	TypeWelcome = "welcome"
	TypeNodes   = "nodes"
	TypeTick    = "tick"
	TypeError   = "error"
	TypePong    = "pong"
)

// Limits and documented defaults.
const (
	// MaxSeq is the largest sequence number (2^53-1, the largest integer a JavaScript number holds exactly).
	MaxSeq = 1<<53 - 1
	// MaxNameRunes is the maximum length of a player name in Unicode code points, after trimming.
	MaxNameRunes = 32
	// MaxResumeLen is the maximum length of a resume token in bytes.
	MaxResumeLen = 512
	// MaxRoomLen is the maximum length of a room name.
	MaxRoomLen = 32
	// DefaultRoom is the room joined when hello has no room.
	DefaultRoom = "lobby"

	// DefaultReadLimit is the default maximum size of a client frame in bytes.
	DefaultReadLimit = 4096
	// DefaultRate is the default sustained number of client messages per second per connection.
	DefaultRate = 30
	// DefaultBurst is the default burst of client messages per connection.
	DefaultBurst = 60
)

// Key bits of Keys.Mask: the arena's bitmask (games/arena).
const (
	KeyUp    uint8 = 1
	KeyDown  uint8 = 2
	KeyLeft  uint8 = 4
	KeyRight uint8 = 8
)

// Hello is the first message of a connection (client → server).
type Hello struct {
	// Protocol is the protocol version; DecodeClient accepts Version to MaxVersion.
	Protocol int `json:"protocol"`
	// Name is the display name, trimmed of surrounding white space, 1-32 printable runes.
	Name string `json:"name"`
	// Resume is the resume token from a previous welcome, or "" for a new player.
	Resume string `json:"resume,omitempty"`
	// Room is the room to join, or "" for DefaultRoom. Use RoomName.
	Room string `json:"room,omitempty"`
	// Seq is the sequence number the client assigns to this connection's join: greater than every seq the
	// player used before. 0 means absent, which is only allowed without Resume and stands for 1.
	Seq uint64 `json:"seq,omitempty"`
}

// RoomName returns the room to join: h.Room, or DefaultRoom if it is empty.
func (h *Hello) RoomName() string {
	if h.Room == "" {
		return DefaultRoom
	}
	return h.Room
}

// JoinSeq returns the seq of the join: h.Seq, or 1 if it is absent.
func (h *Hello) JoinSeq() uint64 {
	if h.Seq == 0 {
		return 1
	}
	return h.Seq
}

// Keys is the full state of the four direction keys.
type Keys struct {
	Up    bool `json:"up"`
	Down  bool `json:"down"`
	Left  bool `json:"left"`
	Right bool `json:"right"`
}

// Mask returns the keys as a bitmask: up=1, down=2, left=4, right=8.
func (k Keys) Mask() uint8 {
	var m uint8
	if k.Up {
		m |= KeyUp
	}
	if k.Down {
		m |= KeyDown
	}
	if k.Left {
		m |= KeyLeft
	}
	if k.Right {
		m |= KeyRight
	}
	return m
}

// KeysFromMask is the inverse of Keys.Mask; bits above 8 are ignored.
func KeysFromMask(m uint8) Keys {
	return Keys{Up: m&KeyUp != 0, Down: m&KeyDown != 0, Left: m&KeyLeft != 0, Right: m&KeyRight != 0}
}

// Input is a player's input (client → server): a payload for the room's game, which validates it. The payload
// is Data, or, when Data is nil, Keys: the form protocol 1 had before games had payloads, the arena's keys
// object.
type Input struct {
	// Seq is the player's next sequence number, 1..MaxSeq.
	Seq  uint64          `json:"seq"`
	Keys Keys            `json:"keys"`
	Data json.RawMessage `json:"data,omitempty"`
}

// MaxDataBytes bounds Input.Data as sent; each game declares its own, smaller bound.
const MaxDataBytes = 1024

// Payload is the input's payload for the room's game: Data, or the keys object.
func (in *Input) Payload() []byte {
	if in.Data != nil {
		return in.Data
	}
	b, _ := json.Marshal(in.Keys) // four booleans always encode
	return b
}

// Ping asks for a pong (client → server).
type Ping struct {
	// T is an optional finite number echoed in the pong; nil when absent.
	T *float64 `json:"t,omitempty"`
}

// NodeInfo names a node and its WebSocket URL.
type NodeInfo struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Welcome answers a valid hello (server → client).
type Welcome struct {
	Protocol int `json:"protocol"`
	// Player is the player id ("p" + 16 hex digits).
	Player string `json:"player"`
	// Resume is a fresh resume token for the player; the client stores it in place of any older one.
	Resume string `json:"resume"`
	Room   string `json:"room"`
	// Node is the name of the node serving this connection.
	Node  string     `json:"node"`
	Nodes []NodeInfo `json:"nodes"`
	// Ack is the highest seq of this player known to be applied, 0 if unknown.
	Ack uint64 `json:"ack"`
	// Game is the name of the game the room plays (omitted when unknown).
	Game string `json:"game,omitempty"`
	// Params are the game's parameters for the client (sizes, speeds, the tick rate), in the game's order.
	Params Params `json:"params,omitempty"`
}

// Params are named integer parameters, encoded as one JSON object with members in their order.
type Params []game.Param

// MarshalJSON writes the parameters as an object, in order.
func (ps Params) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, p.Name)
		b = append(b, ':')
		b = strconv.AppendInt(b, p.Value, 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads an object of integers, keeping their order; members that are not integers are skipped
// (a client ignores what it does not know).
func (ps *Params) UnmarshalJSON(data []byte) error {
	data = trimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return errors.New("params: want an object")
	}
	*ps = (*ps)[:0]
	for _, m := range objectMembers(data, nil) {
		if n, err := strconv.ParseInt(string(m.val), 10, 64); err == nil {
			*ps = append(*ps, game.Param{Name: string(m.name), Value: n})
		}
	}
	return nil
}

// Param returns the value of the named parameter.
func (ps Params) Param(name string) (int64, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p.Value, true
		}
	}
	return 0, false
}

// Nodes is the current list of ready nodes (server → client).
type Nodes struct {
	Nodes []NodeInfo `json:"nodes"`
}

// Tick is one simulation step of a room, published by its owner and forwarded verbatim (server → client). Its
// members are the framework's (room, epoch, seq, owner, time, and per player id, name, ack, conn, online,
// away) and the game's View (package game): the game's globals after time, its player fields after a
// player's name, and one array member per object kind after players. Schema names the game's members;
// values are JSON numbers (the game writes integers).
type Tick struct {
	Room string
	// Epoch is the owner's lease epoch; ticks are ordered by (Epoch, Seq).
	Epoch uint64
	// Seq is the tick number: strictly increasing within an epoch, continued across epochs.
	Seq uint64
	// Owner is the name of the publishing node.
	Owner string
	// Time is the owner's publish time in Unix milliseconds (informational).
	Time int64
	// Schema names the game's members: Globals, Players[].Fields and Objects follow it. A tick decoded by
	// DecodeServer has a schema of names only (its ranges are the widest). Nil: the tick has no game members.
	Schema *game.Schema
	// Globals are the game's global fields, one per Schema.Globals.
	Globals []float64
	// Players is sorted by ID.
	Players []TickPlayer
	// Objects are the game's object lists, one per Schema.Objects.
	Objects [][]TickObject
}

// TickPlayer is one player in a tick: the framework's roster members and the game's fields.
type TickPlayer struct {
	ID   string
	Name string
	// Fields are the game's fields of the player, one per Schema.Player.
	Fields []float64
	// Ack is the highest seq of this player applied.
	Ack uint64
	// Conn is the seq of the join of the player's current connection.
	Conn   uint64
	Online bool
	// Away is the tick seq at which the player left; present (non-zero) only when Online is false.
	Away uint64
}

// TickObject is one of the game's shared objects.
type TickObject struct {
	ID     int64
	Fields []float64
}

// Error reports a problem with a client message (server → client); the connection stays open.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Pong answers a ping (server → client).
type Pong struct {
	// T echoes Ping.T; nil when the ping had none.
	T *float64 `json:"t,omitempty"`
}

// ValidRoom reports whether s is a valid room name: 1-32 characters of a-z, 0-9 and '-'.
func ValidRoom(s string) bool {
	if len(s) == 0 || len(s) > MaxRoomLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Player returns the tick's player with the given id (Players is sorted by ID).
func (t *Tick) Player(id string) (TickPlayer, bool) {
	i, ok := slices.BinarySearchFunc(t.Players, id, func(p TickPlayer, id string) int { return strings.Compare(p.ID, id) })
	if !ok {
		return TickPlayer{}, false
	}
	return t.Players[i], true
}

// Field returns the game's field name of player p (a member of t.Players).
func (t *Tick) Field(p *TickPlayer, name string) (float64, bool) {
	if t.Schema == nil {
		return 0, false
	}
	i := slices.IndexFunc(t.Schema.Player, func(f game.Field) bool { return f.Name == name })
	if i < 0 || i >= len(p.Fields) {
		return 0, false
	}
	return p.Fields[i], true
}

// Global returns the game's global field name.
func (t *Tick) Global(name string) (float64, bool) {
	if t.Schema == nil {
		return 0, false
	}
	i := slices.IndexFunc(t.Schema.Globals, func(f game.Field) bool { return f.Name == name })
	if i < 0 || i >= len(t.Globals) {
		return 0, false
	}
	return t.Globals[i], true
}

// ObjectsOf returns the game's object list name.
func (t *Tick) ObjectsOf(name string) ([]TickObject, bool) {
	if t.Schema == nil {
		return nil, false
	}
	i := slices.IndexFunc(t.Schema.Objects, func(k game.ObjectKind) bool { return k.Name == name })
	if i < 0 || i >= len(t.Objects) {
		return nil, false
	}
	return t.Objects[i], true
}
