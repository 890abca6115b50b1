package client

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
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
	// Data is the frame: protocol 1's JSON (docs/PROTOCOL.md), or protocol 2's keyframe or delta (Kind).
	Data []byte
	// Kind is compact.Keyframe or compact.Delta for a protocol 2 frame, 0 for protocol 1's JSON.
	Kind byte

	full  *protocol.Tick
	state *compact.State    // protocol 2: the state the frames made, until the next frame
	fol   *compact.Follower // protocol 2 with Config.Light
}

// ErrLight is Tick.Decode's error for a protocol 2 tick read by a light client (Config.Light).
var ErrLight = errors.New("tickmesh client: a light client does not keep the ticks' state")

// Decode returns the whole tick (decoded once, on the first call).
func (t *Tick) Decode() (*protocol.Tick, error) {
	if t.full != nil {
		return t.full, nil
	}
	if t.state != nil {
		t.full = new(protocol.Tick)
		t.state.Tick(t.full)
		return t.full, nil
	}
	if t.fol != nil {
		return nil, ErrLight
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
	if t.state != nil {
		p, ok := t.state.Lookup(player)
		return p.Ack, ok
	}
	if t.fol != nil {
		if player != t.fol.Player() {
			return 0, false // a light client knows its own player's ack only
		}
		return t.fol.Ack()
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

// frames2 reads a connection's protocol 2 frames: with a Decoder (the room's state), or, for a light client, a
// Follower of the client's own player.
type frames2 struct {
	light bool
	dec   compact.Decoder
	fol   *compact.Follower
}

// reset starts a connection: its first frame is a keyframe.
func (f *frames2) reset(light bool, player string) {
	f.light = light
	f.dec.Reset()
	if light {
		if f.fol == nil {
			f.fol = compact.NewFollower(player)
		}
		f.fol.SetPlayer(player)
		f.fol.Reset()
	}
}

// player is the welcome's player: the one a light client follows.
func (f *frames2) player(id string) {
	if f.fol != nil {
		f.fol.SetPlayer(id)
	}
}

// apply reads a frame into t.
func (f *frames2) apply(data []byte, t *Tick) error {
	t.Kind = data[0]
	if f.light {
		if err := f.fol.Apply(data); err != nil {
			return err
		}
		t.fol = f.fol
		t.Room, t.Epoch, t.Seq, t.Time = f.fol.Tick()
		return nil
	}
	if err := f.dec.Apply(data); err != nil {
		return err
	}
	s := f.dec.State()
	t.state = s
	t.Room, t.Epoch, t.Seq, t.Time = s.Room, s.Epoch, s.Seq, s.Time
	return nil
}

// binary handles a protocol 2 tick frame; it returns why the connection is to be abandoned, or "".
func (c *Client) binary(ws *websocket.Conn, d *Disconnect, data []byte, at time.Time, h *Handler) string {
	if c.proto < protocol.Version2 || len(data) == 0 || (data[0] != compact.Keyframe && data[0] != compact.Delta) {
		return "" // not a frame this client knows: ignored, as a client must
	}
	t := &c.tick
	*t = Tick{Conn: d.Conn, At: at, Data: data}
	if err := c.frames2.apply(data, t); err != nil {
		// The frames after it would not apply either: a new connection starts with a keyframe.
		return "a tick frame that does not apply: " + err.Error()
	}
	return c.tickFrame(ws, d, t, at, h)
}
