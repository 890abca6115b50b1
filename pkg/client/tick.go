package client

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Tick is one tick frame as a connection received it, decoded as far as fencing needs. It is valid until the
// handler it was passed to returns (its buffer is reused).
type Tick struct {
	Conn  Conn
	Room  string
	Epoch uint64
	Seq   uint64
	Time  int64     // the owner's publish time, Unix milliseconds
	At    time.Time // when the frame was read
	// Fresh: above every tick the client accepted before, on any connection; what a player is shown.
	Fresh bool
	// Data is the frame (protocol 1: the JSON of docs/PROTOCOL.md).
	Data []byte

	full *protocol.Tick
}

// Decode returns the whole tick (decoded once, on the first call).
func (t *Tick) Decode() (*protocol.Tick, error) {
	if t.full != nil {
		return t.full, nil
	}
	msg, err := protocol.DecodeServer(t.Data)
	if err != nil {
		return nil, err
	}
	tk, ok := msg.(*protocol.Tick)
	if !ok {
		return nil, errors.New("tickmesh client: not a tick")
	}
	t.full = tk
	return tk, nil
}

// Ack is the ack of player in the tick, and whether the tick lists the player. It reads the frame without
// decoding the other players: in protocol 1's canonical form a player's members come in a fixed order (id,
// name, ..., ack), so the first "ack" after the player's id is its own, and a literal `"ack":` cannot occur
// inside a JSON string (its quotes would be escaped).
func (t *Tick) Ack(player string) (uint64, bool) {
	if t.full != nil {
		p, ok := t.full.Player(player)
		return p.Ack, ok
	}
	needle := make([]byte, 0, len(player)+8)
	needle = append(append(append(needle, `"id":"`...), player...), '"')
	i := bytes.Index(t.Data, needle)
	if i < 0 {
		return 0, false
	}
	return uintAfter(t.Data[i+len(needle):], []byte(`"ack":`))
}

var tickPrefix = []byte(`{"type":"tick",`)

// parseTickHead reads room (room itself when it is that one, so that the common case allocates nothing), epoch, seq
// and time from a protocol-1 tick frame in canonical form (docs/PROTOCOL.md:
// "type" first, then the fields in order, players last) without decoding the players: a tick of a big room is
// 100 KB and more, and a load generator reads thousands a second. ok is false for any other frame, which then
// takes the full decoder.
func parseTickHead(data []byte, room string, t *Tick) (ok bool) {
	if !bytes.HasPrefix(data, tickPrefix) {
		return false
	}
	head := data[:min(len(data), 512)]
	if i := bytes.Index(head, []byte(`"players":`)); i >= 0 {
		head = head[:i]
	}
	var e, s, tm bool
	rb, r := stringAfter(head, []byte(`"room":"`))
	if t.Room = room; string(rb) != room {
		t.Room = string(rb)
	}
	t.Epoch, e = uintAfter(head, []byte(`,"epoch":`))
	t.Seq, s = uintAfter(head, []byte(`,"seq":`))
	var ms uint64
	ms, tm = uintAfter(head, []byte(`,"time":`))
	t.Time = int64(ms)
	return r && e && s && tm
}

// uintAfter parses the unsigned integer that follows key in data.
func uintAfter(data, key []byte) (uint64, bool) {
	i := bytes.Index(data, key)
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(key):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 19 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	return v, err == nil
}

// stringAfter returns the string that follows key (which ends with the opening quote) in data, when it holds
// no escapes (room names never do).
func stringAfter(data, key []byte) ([]byte, bool) {
	i := bytes.Index(data, key)
	if i < 0 {
		return nil, false
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return nil, false
	}
	return rest[:j], true
}
