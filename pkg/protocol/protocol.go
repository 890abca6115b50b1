// Package protocol defines version 1 of the Tickmesh WebSocket protocol spoken between browsers and nodes:
// the message types, strict decoding of client messages, canonical encoding, error codes and close codes.
//
// Every frame is a WebSocket text frame holding one JSON object with a "type" member. Client messages
// (hello, input, ping) are decoded strictly by DecodeClient; server messages (welcome, nodes, tick, error,
// pong) are produced by Encode. docs/PROTOCOL.md is the normative description; the golden fixtures under
// testdata/fixtures are shared with the TypeScript client.
//
// The package is pure: no I/O, no clock, no goroutines.
package protocol

import (
	"slices"
	"strings"
)

// Version is the protocol version implemented by this package, sent in hello and welcome.
const Version = 1

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

// Key bits of Keys.Mask, identical to pkg/game's bitmask.
const (
	KeyUp    uint8 = 1
	KeyDown  uint8 = 2
	KeyLeft  uint8 = 4
	KeyRight uint8 = 8
)

// Hello is the first message of a connection (client → server).
type Hello struct {
	// Protocol is the protocol version; DecodeClient only accepts Version.
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

// Input is the client's key state (client → server).
type Input struct {
	// Seq is the player's next sequence number, 1..MaxSeq.
	Seq  uint64 `json:"seq"`
	Keys Keys   `json:"keys"`
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
}

// Nodes is the current list of ready nodes (server → client).
type Nodes struct {
	Nodes []NodeInfo `json:"nodes"`
}

// TickPlayer is one player's state in a tick.
type TickPlayer struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
	VX   float64 `json:"vx"`
	VY   float64 `json:"vy"`
	// Keys is the bitmask of pressed keys (see Keys.Mask).
	Keys uint8 `json:"keys"`
	// Ack is the highest seq of this player applied by the simulation.
	Ack uint64 `json:"ack"`
	// Conn is the seq of the join of the player's current connection.
	Conn   uint64 `json:"conn"`
	Online bool   `json:"online"`
	// Away is the tick seq at which the player left; present (non-zero) only when Online is false.
	Away uint64 `json:"away,omitempty"`
}

// Tick is one simulation step of a room, published by its owner and forwarded verbatim (server → client).
type Tick struct {
	Room string `json:"room"`
	// Epoch is the owner's lease epoch; ticks are ordered by (Epoch, Seq).
	Epoch uint64 `json:"epoch"`
	// Seq is the tick number: strictly increasing within an epoch, continued across epochs.
	Seq uint64 `json:"seq"`
	// Owner is the name of the publishing node.
	Owner string `json:"owner"`
	// Time is the owner's publish time in Unix milliseconds (informational).
	Time   int64   `json:"time"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
	// Players is sorted by ID.
	Players []TickPlayer `json:"players"`
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
