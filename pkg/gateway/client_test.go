package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
)

// Test timeouts: generous, because every test runs a real cluster under the race detector.
const (
	waitShort = 10 * time.Second
	waitLong  = 30 * time.Second
)

// client is a test WebSocket client: it dials a node's /ws, says hello, keeps every frame the server sends (its
// reader goroutine), checks on every tick that (epoch, seq) only ever grows (reported at cleanup), sends inputs
// with increasing seqs, and records the close code.
type client struct {
	t    testing.TB
	name string // display name, also used in failure messages
	node string // node dialled
	ws   *websocket.Conn
	done chan struct{} // closed when the reader has stopped (socket closed)

	wmu sync.Mutex // one writer at a time

	mu        sync.Mutex
	welcome   *protocol.Welcome
	welcomeAt time.Time
	ticks     []*recvTick
	fenceErrs []string
	errs      []protocol.Error
	pongs     []float64 // t of every pong (NaN for a pong without t)
	closeCode int       // 0 while open; 1006 for a close without a close frame
	closeText string
	closedAt  time.Time
	seq       uint64 // the player's seq counter: the last seq used in a hello or input

	proto  int             // the protocol of the hello: 1 (JSON ticks) or 2 (binary keyframes and deltas)
	dec    compact.Decoder // protocol 2: the state the frames make (the reader's)
	kinds  map[byte]int    // protocol 2: frames received by kind (under mu)
	frames []byte          // protocol 2: the last frame received (under mu)
}

// recvTick is one received tick with its arrival time. The reader only reads the tick's position (a big tick
// would take the race-enabled reader too long to decode in full); decoded decodes the rest on demand.
type recvTick struct {
	pos  fence.Position
	at   time.Time
	raw  []byte
	tick *protocol.Tick // decoded raw, under client.mu
}

// dialOpts tune dial.
type dialOpts struct {
	proto  int         // the protocol to speak (0: 1)
	noRead bool        // do not start the reader: the client never reads (a slow client)
	rcvBuf int         // SO_RCVBUF of the client socket, when > 0
	header http.Header // handshake headers (Origin, X-Real-IP)
}

// wsURL is the WebSocket endpoint of the member's node.
func wsURL(c *nodetest.Cluster, name string) string {
	return strings.Replace(c.Member(name).Node.URL(), "http://", "ws://", 1) + "/ws"
}

// dial opens a socket to node name of the cluster without saying hello.
func dial(t testing.TB, c *nodetest.Cluster, name, player string, o dialOpts) *client {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if o.rcvBuf > 0 {
		nd := net.Dialer{}
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(o.rcvBuf)
			}
			return conn, nil
		}
	}
	ws, _, err := d.Dial(wsURL(c, name), o.header)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", player, name, err)
	}
	cl := &client{t: t, name: player, node: name, ws: ws, done: make(chan struct{}), proto: max(o.proto, protocol.Version), kinds: map[byte]int{}}
	if o.noRead {
		close(cl.done)
	} else {
		go cl.read()
	}
	t.Cleanup(func() {
		cl.ws.Close()
		if !o.noRead {
			<-cl.done
		}
		if v := cl.fenceViolations(); len(v) > 0 {
			t.Errorf("%s on %s: ticks out of order: %s", cl.name, cl.node, strings.Join(v, "; "))
		}
	})
	return cl
}

// join dials node name, says hello as a new player and waits for the welcome.
func join(t testing.TB, c *nodetest.Cluster, name, player string) *client {
	t.Helper()
	cl := dial(t, c, name, player, dialOpts{})
	cl.hello("", 1)
	cl.waitWelcome()
	return cl
}

// resume dials node name and says hello with token and join seq seq, then waits for the welcome.
func resume(t testing.TB, c *nodetest.Cluster, name, player, token string, seq uint64) *client {
	t.Helper()
	cl := dial(t, c, name, player, dialOpts{})
	cl.hello(token, seq)
	cl.waitWelcome()
	return cl
}

func (cl *client) read() {
	defer close(cl.done)
	for {
		mt, data, err := cl.ws.ReadMessage()
		now := time.Now()
		if err != nil {
			code, text := websocket.CloseAbnormalClosure, err.Error()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code, text = ce.Code, ce.Text
			}
			cl.mu.Lock()
			cl.closeCode, cl.closeText, cl.closedAt = code, text, now
			cl.mu.Unlock()
			return
		}
		if mt == websocket.BinaryMessage && cl.proto >= protocol.Version2 {
			cl.binaryTick(data, now)
			continue
		}
		if mt != websocket.TextMessage {
			cl.t.Errorf("%s: server sent a non-text frame (type %d)", cl.name, mt)
			continue
		}
		if cl.proto >= protocol.Version2 && bytes.HasPrefix(data, []byte(`{"type":"tick"`)) {
			cl.t.Errorf("%s: a JSON tick on a protocol 2 socket", cl.name)
			continue
		}
		if pos, ok := peekTick(data); ok {
			cl.mu.Lock()
			if cl.welcome == nil {
				cl.t.Errorf("%s: tick before the welcome", cl.name)
			}
			if n := len(cl.ticks); n > 0 {
				prev := cl.ticks[n-1].pos
				if pos.Epoch < prev.Epoch || (pos.Epoch == prev.Epoch && pos.Seq <= prev.Seq) {
					cl.fenceErrs = append(cl.fenceErrs, fmt.Sprintf("%+v after %+v", pos, prev))
				}
			}
			cl.ticks = append(cl.ticks, &recvTick{pos: pos, at: now, raw: data})
			cl.mu.Unlock()
			continue
		}
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			cl.t.Errorf("%s: undecodable server frame %q: %v", cl.name, data, err)
			continue
		}
		cl.mu.Lock()
		switch m := msg.(type) {
		case *protocol.Welcome:
			if cl.welcome != nil {
				cl.t.Errorf("%s: second welcome", cl.name)
			}
			cl.welcome, cl.welcomeAt = m, now
		case *protocol.Error:
			cl.errs = append(cl.errs, *m)
		case *protocol.Pong:
			t := math.NaN()
			if m.T != nil {
				t = *m.T
			}
			cl.pongs = append(cl.pongs, t)
		}
		cl.mu.Unlock()
	}
}

// binaryTick applies a protocol 2 frame to the client's state and keeps the tick it makes.
func (cl *client) binaryTick(data []byte, now time.Time) {
	if err := cl.dec.Apply(data); err != nil {
		cl.t.Errorf("%s: a frame (kind %#x) that does not apply: %v", cl.name, data[0], err)
		return
	}
	tk := new(protocol.Tick)
	cl.dec.State().Tick(tk)
	pos := fence.Position{Epoch: tk.Epoch, Seq: tk.Seq}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.kinds[data[0]]++
	cl.frames = data
	if cl.welcome == nil {
		cl.t.Errorf("%s: tick before the welcome", cl.name)
	}
	if n := len(cl.ticks); n > 0 {
		prev := cl.ticks[n-1].pos
		if pos.Epoch < prev.Epoch || (pos.Epoch == prev.Epoch && pos.Seq <= prev.Seq) {
			cl.fenceErrs = append(cl.fenceErrs, fmt.Sprintf("%+v after %+v", pos, prev))
		}
	}
	cl.ticks = append(cl.ticks, &recvTick{pos: pos, at: now, tick: tk})
}

// frameKinds is how many protocol 2 frames of each kind the client received.
func (cl *client) frameKinds() (keyframes, deltas int) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.kinds[compact.Keyframe], cl.kinds[compact.Delta]
}

func (cl *client) write(mt int, data []byte) error {
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	_ = cl.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return cl.ws.WriteMessage(mt, data)
}

// writeFrame writes one WebSocket frame byte for byte around the client's library: first is the frame's first
// byte (FIN, RSV, opcode); the payload is masked when masked is set. The write error is returned (a server that
// closes early may refuse the rest of a big frame).
func (cl *client) writeFrame(first byte, payload []byte, masked bool) error {
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	var hdr []byte
	n := len(payload)
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch {
	case n <= 125:
		hdr = []byte{first, maskBit | byte(n)}
	case n <= 0xffff:
		hdr = []byte{first, maskBit | 126, byte(n >> 8), byte(n)}
	default:
		hdr = []byte{first, maskBit | 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	body := payload
	if masked {
		key := [4]byte{1, 2, 3, 4}
		hdr = append(hdr, key[:]...)
		body = make([]byte, n)
		for i := range payload {
			body[i] = payload[i] ^ key[i%4]
		}
	}
	nc := cl.ws.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := nc.Write(append(hdr, body...))
	return err
}

// sendRaw sends a text frame as is. Write errors fail the test.
func (cl *client) sendRaw(frame string) {
	cl.t.Helper()
	if err := cl.write(websocket.TextMessage, []byte(frame)); err != nil {
		cl.t.Fatalf("%s: send %.60q: %v", cl.name, frame, err)
	}
}

func (cl *client) send(msg any) {
	cl.t.Helper()
	data, err := protocol.Encode(msg)
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.sendRaw(string(data))
}

// hello sends a hello with the optional resume token and join seq (0: absent, a new player's 1).
func (cl *client) hello(token string, seq uint64) {
	cl.t.Helper()
	cl.helloIn("", token, seq)
}

// helloIn is hello to room r ("" for the default).
func (cl *client) helloIn(r, token string, seq uint64) {
	cl.t.Helper()
	cl.mu.Lock()
	cl.seq = max(seq, 1)
	cl.mu.Unlock()
	cl.send(&protocol.Hello{Protocol: cl.proto, Name: cl.name, Resume: token, Room: r, Seq: seq})
}

// data sends an input with a game payload and the next seq, and returns that seq.
func (cl *client) data(payload string) uint64 {
	cl.t.Helper()
	cl.mu.Lock()
	cl.seq++
	seq := cl.seq
	cl.mu.Unlock()
	cl.send(&protocol.Input{Seq: seq, Data: json.RawMessage(payload)})
	return seq
}

// input sends the key state (a mask of protocol.Key*) with the next seq, and returns that seq.
func (cl *client) input(keys uint8) uint64 {
	cl.t.Helper()
	cl.mu.Lock()
	cl.seq++
	seq := cl.seq
	cl.mu.Unlock()
	cl.send(&protocol.Input{Seq: seq, Keys: protocol.KeysFromMask(keys)})
	return seq
}

// nextSeq is the seq the player's next event must use.
func (cl *client) nextSeq() uint64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.seq + 1
}

func (cl *client) waitWelcome() *protocol.Welcome {
	cl.t.Helper()
	var w *protocol.Welcome
	testingutil.WaitFor(cl.t, waitShort, cl.name+" welcome", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.welcome == nil && cl.closeCode != 0 {
			cl.t.Fatalf("%s: closed %d (%s) before the welcome; errors %+v", cl.name, cl.closeCode, cl.closeText, cl.errs)
		}
		w = cl.welcome
		return w != nil
	})
	return w
}

// id is the player id from the welcome.
func (cl *client) id() string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.welcome == nil {
		return ""
	}
	return cl.welcome.Player
}

// token is the resume token from the welcome.
func (cl *client) token() string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.welcome.Resume
}

// last is the newest tick received (nil before any).
func (cl *client) last() *protocol.Tick {
	cl.mu.Lock()
	if len(cl.ticks) == 0 {
		cl.mu.Unlock()
		return nil
	}
	r := cl.ticks[len(cl.ticks)-1]
	cl.mu.Unlock()
	return cl.decoded(r)
}

// decoded is the received tick r in full.
func (cl *client) decoded(r *recvTick) *protocol.Tick {
	cl.mu.Lock()
	tk := r.tick
	cl.mu.Unlock()
	if tk != nil {
		return tk
	}
	msg, err := protocol.DecodeServer(r.raw)
	if err != nil {
		cl.t.Errorf("%s: undecodable tick %q: %v", cl.name, r.raw, err)
		return &protocol.Tick{}
	}
	tk, ok := msg.(*protocol.Tick)
	if !ok || tk.Epoch != r.pos.Epoch || tk.Seq != r.pos.Seq {
		cl.t.Errorf("%s: tick %q read as %+v", cl.name, r.raw, r.pos)
		return &protocol.Tick{}
	}
	cl.mu.Lock()
	r.tick = tk
	cl.mu.Unlock()
	return tk
}

// peekTick reads the position of a tick frame from its first members (a canonical tick has them before its
// players). ok is false for every other frame.
func peekTick(data []byte) (pos fence.Position, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return pos, false
	}
	isTick := false
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return pos, false
		}
		vt, err := dec.Token()
		if err != nil {
			return pos, false
		}
		if _, delim := vt.(json.Delim); delim {
			break // players: the position comes before them
		}
		switch kt {
		case "type":
			if vt != protocol.TypeTick {
				return pos, false
			}
			isTick = true
		case "epoch", "seq":
			num, _ := vt.(json.Number)
			v, err := strconv.ParseUint(string(num), 10, 64)
			if err != nil {
				return pos, false
			}
			if kt == "epoch" {
				pos.Epoch = v
			} else {
				pos.Seq = v
			}
		}
	}
	return pos, isTick && pos.Epoch > 0
}

// tickCount is the number of ticks received.
func (cl *client) tickCount() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.ticks)
}

// received returns a copy of the ticks received so far.
func (cl *client) received() []*recvTick {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]*recvTick(nil), cl.ticks...)
}

// waitTick waits until the newest tick satisfies cond and returns it.
func (cl *client) waitTick(timeout time.Duration, what string, cond func(tk *protocol.Tick) bool) *protocol.Tick {
	cl.t.Helper()
	var got *protocol.Tick
	testingutil.WaitFor(cl.t, timeout, cl.name+" on "+cl.node+": "+what, func() bool {
		got = cl.last()
		return got != nil && cond(got)
	})
	return got
}

// waitTicks waits until n more ticks arrived than now.
func (cl *client) waitTicks(n int) {
	cl.t.Helper()
	from := cl.tickCount()
	testingutil.WaitFor(cl.t, waitShort, fmt.Sprintf("%s on %s: %d more ticks", cl.name, cl.node, n), func() bool {
		return cl.tickCount() >= from+n
	})
}

// waitClose waits until the socket was closed and returns the close code.
func (cl *client) waitClose(timeout time.Duration) int {
	cl.t.Helper()
	select {
	case <-cl.done:
	case <-time.After(timeout):
		cl.t.Fatalf("%s on %s: still open after %v", cl.name, cl.node, timeout)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.closeCode
}

// open reports whether the socket is still open.
func (cl *client) open() bool {
	select {
	case <-cl.done:
		return false
	default:
		return true
	}
}

// closeCodeNow is the recorded close code (0 while open).
func (cl *client) closeCodeNow() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.closeCode
}

// leave closes the socket normally (1000) and waits for the server's answer.
func (cl *client) leave() {
	cl.t.Helper()
	cl.wmu.Lock()
	_ = cl.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	cl.wmu.Unlock()
	select {
	case <-cl.done:
	case <-time.After(waitShort):
	}
	cl.ws.Close()
}

// errorCodes lists the codes of the error frames received.
func (cl *client) errorCodes() []string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := make([]string, len(cl.errs))
	for i, e := range cl.errs {
		out[i] = e.Code
	}
	return out
}

// waitError waits for an error frame with code.
func (cl *client) waitError(code string) {
	cl.t.Helper()
	testingutil.WaitFor(cl.t, waitShort, cl.name+" error "+code, func() bool {
		for _, c := range cl.errorCodes() {
			if c == code {
				return true
			}
		}
		return false
	})
}

func (cl *client) fenceViolations() []string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]string(nil), cl.fenceErrs...)
}

// tickPlayer is a player of a tick with the fields of the game the tests' rooms play (the arena, in the lobby).
type tickPlayer struct {
	protocol.TickPlayer
	X, Y, VX, VY float64
}

// find returns the player id's entry in tk.
func find(tk *protocol.Tick, id string) (tickPlayer, bool) {
	if tk == nil {
		return tickPlayer{}, false
	}
	for i := range tk.Players {
		if p := &tk.Players[i]; p.ID == id {
			tp := tickPlayer{TickPlayer: *p}
			tp.X, _ = tk.Field(p, "x")
			tp.Y, _ = tk.Field(p, "y")
			tp.VX, _ = tk.Field(p, "vx")
			tp.VY, _ = tk.Field(p, "vy")
			return tp, true
		}
	}
	return tickPlayer{}, false
}

// steady checks that cl received the room's ticks in [from, to] without being held up: in one epoch, at least
// min of them, never more than maxStall between two, and every seq but a few. A socket's one-slot queue lets a
// newer tick replace an unsent one, so a machine busy for a moment (the race detector, a garbage collection)
// may skip one or two; in a calm run there are none. A socket held up by another one would instead stall for
// seconds, and then skip dozens.
func steady(t testing.TB, cl *client, from, to time.Time, min int) {
	t.Helper()
	const (
		maxStall      = 500 * time.Millisecond
		maxRun        = 2    // missing seqs in a row
		maxMissedFrac = 0.02 // of the seqs in the interval
	)
	var prev *recvTick
	n, missed := 0, uint64(0)
	for _, r := range cl.received() {
		if r.at.Before(from) || r.at.After(to) {
			continue
		}
		n++
		if prev != nil {
			if r.pos.Epoch != prev.pos.Epoch {
				t.Errorf("%s on %s: epoch changed from %d to %d", cl.name, cl.node, prev.pos.Epoch, r.pos.Epoch)
			} else if run := r.pos.Seq - prev.pos.Seq - 1; run > 0 {
				missed += run
				t.Logf("%s on %s: tick %+v at %v followed %+v at %v", cl.name, cl.node, r.pos,
					r.at.Format("15:04:05.000"), prev.pos, prev.at.Format("15:04:05.000"))
				if run > maxRun {
					t.Errorf("%s on %s: %d ticks missing in a row before %+v", cl.name, cl.node, run, r.pos)
				}
			}
			if gap := r.at.Sub(prev.at); gap > maxStall {
				t.Errorf("%s on %s: no tick for %v before %+v at %v", cl.name, cl.node, gap, r.pos, r.at.Format("15:04:05.000"))
			}
		}
		prev = r
	}
	if n < min {
		t.Errorf("%s on %s: %d ticks between %v and %v, want at least %d", cl.name, cl.node, n,
			from.Format("15:04:05.000"), to.Format("15:04:05.000"), min)
	}
	if total := uint64(n) + missed; float64(missed) > maxMissedFrac*float64(total) {
		t.Errorf("%s on %s: %d of %d ticks missing", cl.name, cl.node, missed, total)
	}
}

// welcomeAtTime is when the welcome arrived.
func (cl *client) welcomeAtTime() time.Time {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.welcomeAt
}
