package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/session"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// tickFrame is one tick as one kind of frame (protocol 1 JSON, a protocol 2 keyframe or delta), framed once for
// every socket of the room that gets it.
type tickFrame struct {
	pos    fence.Position
	serial uint64 // the relay's number of the tick (room.Tick.Serial)
	kind   frameKind
	frame  []byte // the WebSocket frame
	at     time.Time
}

// tickFrames is one tick as every socket of the room may get it: each kind of frame is made on its first use, at
// most once. It is used on the relay's delivery goroutine (the fan-out) or inside Relay.With (a new socket's
// first tick), while the relay holds the room: the tick's keyframe and JSON may be read then.
type tickFrames struct {
	pos     fence.Position
	serial  uint64 // the relay's number of the tick
	chained bool   // src's delta takes a socket from the tick numbered serial-1 to this one
	src     tickSource
	at      time.Time
	frames  [numKinds]tickFrame
	made    [numKinds]bool
}

// tickSource is where a tick's frames come from: *room.Tick.
type tickSource interface {
	Delta() []byte
	Keyframe() []byte
	JSON() []byte
}

func newTickFrames(t *room.Tick, at time.Time) *tickFrames {
	return &tickFrames{pos: t.Pos, serial: t.Serial, chained: t.Chained(), src: t, at: at}
}

// forSocket returns the frame for a socket of the given protocol that last got the tick numbered lastSerial:
// the delta when it takes the socket from there, else the keyframe; JSON for protocol 1.
func (f *tickFrames) forSocket(proto int, lastSerial uint64) *tickFrame {
	k := kindJSON
	if proto >= protocol.Version2 {
		k = kindKeyframe
		if f.chained && lastSerial == f.serial-1 {
			k = kindDelta
		}
	}
	if !f.made[k] {
		var frame []byte
		switch k {
		case kindJSON:
			frame = textFrame(f.src.JSON())
		case kindKeyframe:
			frame = binaryFrame(f.src.Keyframe())
		case kindDelta:
			frame = binaryFrame(f.src.Delta())
		}
		f.frames[k] = tickFrame{pos: f.pos, serial: f.serial, kind: k, frame: frame, at: f.at}
		f.made[k] = true
	}
	return &f.frames[k]
}

// maxControl bounds queued control frames; a socket that lets more pile up is too slow.
const maxControl = 32

// conn is one socket. The HTTP handler's goroutine reads the hello (greet), then a watcher goroutine waits for
// the rest (watch) and has each burst of messages read by a short-lived goroutine (readBurst). Nothing writes
// while there is nothing to write: when a frame is queued on an idle socket, a flush goroutine is started for
// it, writes whatever the queues hold and ends when they are empty. At most one flush runs per socket; end
// waits for it. An idle socket therefore costs one goroutine with the smallest stack (the watcher), its read
// buffer and no write buffer.
type conn struct {
	// Set by newConn, read-only afterwards.
	g       *Gateway
	ws      *websocket.Conn
	br      *bufio.Reader   // ws's buffered reader (see Gateway.upgrade)
	raw     syscall.RawConn // for awaitReadable and writeNow; nil when the connection has none
	ip      string          // the client's address (clientIP), for the per-address limits
	started time.Time

	// Set by start (the hello) before the socket is welcomed and joins its room's hub; read-only afterwards.
	player  string
	name    string
	room    string
	joinSeq uint64
	game    game.Game       // the room's game: it validates input payloads
	lkeys   game.LegacyKeys // the game's, when its inputs travel as key bitmasks (the arena)
	proto   int             // the protocol version of the hello: 1 JSON ticks, 2 binary keyframes and deltas

	// Owned by the reader: greet, then watch and the readBurst goroutine it hands the socket to, one at a time.
	errs        *budget   // error budget
	rate        *bucket   // message rate limit
	lastLimited time.Time // when the last rate_limited error was sent

	// forwarded is the highest input seq forwarded: set by the reader, lowered by the publisher when it gives up
	// on an input (notStored), so that the client's resend is taken.
	forwarded atomic.Uint64

	// The writer's queues and the socket's state, shared by the relay's fan-out (offerTick), housekeeping, the
	// reader and the writer. At most one writer runs at a time (flushing): a flush goroutine, or offerTick
	// writing a tick at once.
	mu          sync.Mutex
	welcome     bool           // guarded by mu: welcome queued; ticks and node lists may go out
	partial     []byte         // guarded by mu: the rest of a tick frame that writeNow could not write at once
	partialKind frameKind      // guarded by mu: what that frame is
	partialLen  int            // guarded by mu: and its whole length
	tick        *tickFrame     // guarded by mu: newest unsent tick (the one-slot queue)
	tickSince   time.Time      // guarded by mu: when the oldest unsent tick was offered
	ctrl        [][]byte       // guarded by mu: queued control frames (at most maxControl)
	pingDue     bool           // guarded by mu: housekeeping asked for a WebSocket ping
	pongDue     *string        // guarded by mu: the payload of the client's latest WebSocket ping, to answer
	closing     bool           // guarded by mu: a close frame is due after the queued frames
	closeCode   int            // guarded by mu
	closeText   string         // guarded by mu
	echoing     bool           // guarded by mu: the close frame due answers the client's (its code is the client's)
	flushing    bool           // guarded by mu: a writer holds the socket
	dead        bool           // guarded by mu: the socket is closed: nothing more is written
	lastSent    fence.Position // guarded by mu: the last tick handed to a writer
	lastSer     uint64         // guarded by mu: its serial (room.Tick.Serial), the base a delta must have
	lastTick    time.Time      // guarded by mu: the last tick offered (NoTickAfter)
	lastPing    time.Time      // guarded by mu: the last ping queued
	flushes     sync.WaitGroup // writers (flushing), for end
}

func newConn(g *Gateway, ws *websocket.Conn, br *bufio.Reader, raw syscall.RawConn, ip string, now time.Time) *conn {
	return &conn{g: g, ws: ws, br: br, raw: raw, ip: ip, started: now, lastPing: now}
}

// scheduleLocked starts a flush unless one runs or the socket is closed. c.mu must be held.
func (c *conn) scheduleLocked() {
	if c.flushing || c.dead {
		return
	}
	c.flushing = true
	c.flushes.Add(1)
	go c.flush()
}

func (c *conn) welcomed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

// offerTick gives the socket a tick. It never waits: when the socket has nothing else to write and no writer,
// the tick is written at once, as much of it as the socket's send buffer takes (writeNow), and a flush is
// started only for a rest; otherwise the tick goes in the socket's one-slot queue, where the newest tick wins.
//
// A protocol 2 socket gets the tick's delta when the last tick handed to its writer is the one the delta
// starts from, else the keyframe. Deciding here is deciding at write time: what the socket last got changes only
// when a writer takes the tick from the queue, and the queue then holds this tick alone. A tick that replaces an
// unsent one in the queue therefore goes out as a keyframe: the socket never gets a delta it cannot apply.
func (c *conn) offerTick(f *tickFrames) {
	c.mu.Lock()
	if c.closing || !c.welcome {
		c.mu.Unlock()
		return
	}
	pos := f.pos
	if !after(pos, c.lastSent) || (c.tick != nil && !after(pos, c.tick.pos)) {
		c.mu.Unlock()
		return
	}
	t := f.forSocket(c.proto, c.lastSer)
	c.lastTick = t.at
	if !c.flushing && !c.dead && !c.pendingLocked() {
		c.writeTick(t)
		return
	}
	if c.tick != nil {
		c.g.metrics.ticksReplaced.Inc()
		if t.at.Sub(c.tickSince) > c.g.cfg.SlowAfter {
			c.mu.Unlock()
			c.abort(protocol.CloseTooSlow, "too slow")
			return
		}
	} else {
		c.tickSince = t.at
	}
	c.tick = t
	c.scheduleLocked()
	c.mu.Unlock()
}

// writeTick writes t on the caller's goroutine as the socket's writer; c.mu is held on entry and released.
func (c *conn) writeTick(t *tickFrame) {
	c.flushing = true
	c.flushes.Add(1)
	c.lastSent, c.lastSer = t.pos, t.serial
	c.mu.Unlock()
	n, err := writeNow(c.raw, t.frame)
	c.mu.Lock()
	c.flushing = false
	switch {
	case err != nil:
		c.dead = true
		c.mu.Unlock()
		c.ws.Close()
		c.flushes.Done()
		return
	case n < len(t.frame):
		c.partial, c.partialKind = t.frame[n:], t.kind
		c.partialLen = len(t.frame)
		c.tickSince = t.at
	default:
		c.g.metrics.tickWritten(t.kind, len(t.frame))
	}
	if c.pendingLocked() {
		c.scheduleLocked() // before Done: end's wait must not see zero writers in between
	}
	c.mu.Unlock()
	c.flushes.Done()
}

// pendingLocked reports whether the socket has something for a writer (flush) to do. c.mu must be held.
func (c *conn) pendingLocked() bool {
	return c.partial != nil || c.tick != nil || len(c.ctrl) > 0 || c.pingDue || c.pongDue != nil || c.closing
}

// after reports whether a comes after b in tick order (epoch first, then seq).
func after(a, b fence.Position) bool {
	return a.Epoch > b.Epoch || (a.Epoch == b.Epoch && a.Seq > b.Seq)
}

// control queues a control frame; too many pending closes the socket as too slow.
func (c *conn) control(frame []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.ctrl) >= maxControl {
		c.mu.Unlock()
		c.abort(protocol.CloseTooSlow, "too slow")
		return
	}
	c.ctrl = append(c.ctrl, frame)
	c.scheduleLocked()
	c.mu.Unlock()
}

// closeWith asks for a close frame with code after the frames already queued, and then closes the socket.
func (c *conn) closeWith(code int, text string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing, c.closeCode, c.closeText = true, code, text
	c.scheduleLocked()
	c.mu.Unlock()
	c.g.metrics.closed.WithLabelValues(strconv.Itoa(code)).Inc()
}

// abort is closeWith for a socket whose flush may be stuck in a write: it also cuts that write short.
func (c *conn) abort(code int, text string) {
	c.closeWith(code, text)
	_ = c.ws.NetConn().SetWriteDeadline(time.Now())
}

// housekeep runs about once a second for every socket (Gateway.Run): it queues the keepalive ping when due
// and closes a welcomed socket whose room has sent no tick for NoTickAfter.
func (c *conn) housekeep(now time.Time) {
	cfg := c.g.cfg
	c.mu.Lock()
	if c.closing || c.dead {
		c.mu.Unlock()
		return
	}
	last := c.lastTick
	if last.IsZero() {
		last = c.started
	}
	if c.welcome && now.Sub(last) > cfg.NoTickAfter {
		c.mu.Unlock()
		c.closeWith(protocol.CloseNoOwner, "room has no owner")
		return
	}
	if now.Sub(c.lastPing) >= cfg.PingPeriod {
		c.lastPing = now
		c.pingDue = true
		c.scheduleLocked()
	}
	c.mu.Unlock()
}

// cutOff closes the socket with CloseNoOwner when its room has had no tick for CutNoTick, as of now; the caller
// knows this node looks cut off from the majority of the cluster.
func (c *conn) cutOff(now time.Time) {
	c.mu.Lock()
	if c.closing || c.dead || !c.welcome || now.Sub(c.lastTick) < c.g.cfg.CutNoTick {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.closeWith(protocol.CloseNoOwner, "this node is cut off from the cluster")
}

// flush writes queued frames (the rest of a tick begun by writeTick first, then control frames, a due ping and
// the newest tick) until the queues are empty; after a close frame, or a failed write, it closes the socket.
// Ticks are written as their frames' bytes, around gorilla, which writes the other frames: never at the same
// time, as there is one writer at a time (flushing).
func (c *conn) flush() {
	defer c.flushes.Done()
	for {
		c.mu.Lock()
		var frame, raw []byte
		ping, pong := false, false
		var kind frameKind
		length := 0
		switch {
		case c.partial != nil:
			raw, c.partial = c.partial, nil
			kind, length = c.partialKind, c.partialLen
		case c.pongDue != nil:
			frame, pong = []byte(*c.pongDue), true
			c.pongDue = nil
		case len(c.ctrl) > 0:
			frame = c.ctrl[0]
			c.ctrl[0] = nil
			c.ctrl = c.ctrl[1:]
			if len(c.ctrl) == 0 {
				c.ctrl = nil
			}
		case c.pingDue:
			c.pingDue, ping = false, true
		case c.tick != nil:
			raw = c.tick.frame
			kind, length = c.tick.kind, len(raw)
			c.lastSent, c.lastSer = c.tick.pos, c.tick.serial
			c.tick = nil
		case c.closing:
			code, text := c.closeCode, c.closeText
			c.dead, c.flushing = true, false
			c.mu.Unlock()
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
			c.ws.Close()
			return
		default:
			// No deadline while nothing is being written: writeTick's writes do not wait, and a deadline that
			// has passed would fail them. Cleared while this is still the writer, so as not to clear the next
			// flush's.
			_ = c.ws.NetConn().SetWriteDeadline(time.Time{})
			c.flushing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		var err error
		switch {
		case ping:
			err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.g.cfg.WriteTimeout))
		case pong:
			err = c.ws.WriteControl(websocket.PongMessage, frame, time.Now().Add(c.g.cfg.WriteTimeout))
		case raw != nil:
			nc := c.ws.NetConn()
			_ = nc.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteTimeout))
			if _, err = nc.Write(raw); err == nil {
				c.g.metrics.tickWritten(kind, length)
			}
		default:
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteTimeout))
			err = c.ws.WriteMessage(websocket.TextMessage, frame)
		}
		if err != nil {
			c.mu.Lock()
			c.dead, c.flushing = true, false
			c.mu.Unlock()
			c.ws.Close()
			return
		}
	}
}

// end runs when the reader stops: a close the server asked for is given time to go out after the frames queued
// before it (an error, say); then the socket is closed and the flush, if any, waited for.
func (c *conn) end() {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		done := make(chan struct{})
		go func() {
			c.flushes.Wait()
			close(done)
		}()
		t := time.NewTimer(c.g.cfg.WriteTimeout + time.Second)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
		c.mu.Lock()
		c.dead = true
		c.mu.Unlock()
		c.ws.Close()
		<-done
		return
	}
	c.mu.Lock()
	c.dead = true
	c.mu.Unlock()
	c.ws.Close()
	c.flushes.Wait()
}

func (c *conn) send(msg any) {
	frame, err := protocol.Encode(msg)
	if err != nil {
		c.g.log.Error("encode", "err", err)
		return
	}
	c.control(frame)
}

// refuse answers the client with an error frame and closes the socket with closeCode after it.
func (c *conn) refuse(code, text string, closeCode int) {
	c.sendError(code, text)
	c.closeWith(closeCode, code)
}

func (c *conn) sendError(code, text string) {
	c.g.metrics.clientErrors.WithLabelValues(code).Inc()
	c.send(&protocol.Error{Code: code, Message: text})
}

// fail sends an error frame and counts it against the error budget; it reports whether the socket goes on.
func (c *conn) fail(code, text string) bool {
	c.sendError(code, text)
	if c.errs.add(time.Now()) {
		c.closeWith(protocol.CloseTooManyErrors, "too many errors")
		return false
	}
	return true
}

// greet reads the hello and handles it (session, room, welcome, join). It reports whether the socket goes on
// to watch; when it does not, the caller ends the socket (end). It runs on the HTTP handler's goroutine, so
// that the JSON decoding of the hello grows that goroutine's stack and not the watcher's, which lives as long
// as the socket.
func (c *conn) greet() bool {
	cfg := c.g.cfg
	c.ws.SetReadLimit(cfg.ReadLimit)
	c.errs = &budget{max: cfg.ErrorBudget, window: cfg.ErrorWindow}
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.HelloTimeout))
	for {
		switch c.screen() {
		case frameEnds:
			return false
		case frameTaken:
			continue
		}
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			if isTimeout(err) {
				c.closeWith(protocol.CloseIdle, "no hello")
			}
			return false
		}
		msg, de := decodeFrame(mt, data)
		if de != nil {
			if de.Code == protocol.CodeBadProtocol {
				c.sendError(de.Code, de.Message)
				c.closeWith(protocol.CloseBadProtocol, "protocol version mismatch")
				return false
			}
			if !c.fail(de.Code, de.Message) {
				return false
			}
			continue
		}
		h, ok := msg.(*protocol.Hello)
		if !ok {
			if !c.fail(protocol.CodeBadState, "the first message must be a hello") {
				return false
			}
			continue
		}
		player, ok := c.identify(h)
		if !ok {
			return false
		}
		if ack, known := playerAck(c.g, h.RoomName(), player); known && h.JoinSeq() > ack+sim.MaxSeqJump {
			// The owner would refuse this join (sim.ErrSeqJump) and the player would wait for ever: say so now,
			// with the ack to continue from, and wait for a corrected hello.
			if !c.fail(protocol.CodeBadField, fmt.Sprintf("seq: %d is more than %d above this player's ack %d; send seq %d",
				h.JoinSeq(), sim.MaxSeqJump, ack, ack+1)) {
				return false
			}
			continue
		}
		return c.start(h, player)
	}
}

// watch is the welcomed socket's reader for as long as the socket lives; then the player leaves (finish). The
// caller ends the socket (end) afterwards. While the client sends nothing, watch waits in awaitReadable, a few
// frames deep, so that the goroutine of an idle socket keeps the smallest stack; each burst of messages is read
// and handled by a short-lived goroutine (readBurst), which watch waits for.
func (c *conn) watch() {
	defer c.finish()
	cfg := c.g.cfg
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.ws.SetPongHandler(func(string) error { return c.pong() })
	// gorilla's own ping and close handlers would write their answers from this goroutine, possibly into the
	// middle of a tick frame that writeTick could write only in part: they go through the socket's writer
	// instead, after the frame being written.
	c.ws.SetPingHandler(func(data string) error {
		c.mu.Lock()
		if !c.closing {
			c.pongDue = &data
			c.scheduleLocked()
		}
		c.mu.Unlock()
		return c.pong()
	})
	c.ws.SetCloseHandler(func(code int, _ string) error {
		c.mu.Lock()
		if !c.closing { // a close of our own already on its way answers the client's as well
			c.closing, c.closeCode, c.closeText, c.echoing = true, code, "", true
			c.scheduleLocked()
		}
		c.mu.Unlock()
		return nil // the read then fails with the client's close; end lets the answer go out first
	})
	c.rate = newBucket(cfg.InputRate, cfg.InputBurst, time.Now())
	c.forwarded.Store(c.joinSeq)
	more := make(chan bool, 1)
	for {
		if c.br.Buffered() == 0 {
			if err := awaitReadable(c.raw); err != nil {
				c.readFailed(err)
				return
			}
		}
		go c.readBurst(more)
		if !<-more {
			return
		}
	}
}

// readFailed handles a failed read of a welcomed socket: a client silent past its read deadline is closed as
// idle; any other failure ends the socket as it is.
func (c *conn) readFailed(err error) {
	if isTimeout(err) {
		c.closeWith(protocol.CloseIdle, "idle")
	}
}

// pong is a pong from the client: it is alive.
func (c *conn) pong() error { return c.ws.SetReadDeadline(time.Now().Add(c.g.cfg.PongWait)) }

// readBurst reads and handles messages until nothing is left in the read buffer, and sends on more whether the
// socket goes on. Every frame is screened first (screen): pongs are taken there, and anything gorilla would
// answer by writing is answered through the socket's writer instead.
func (c *conn) readBurst(more chan<- bool) {
	for first := true; ; first = false {
		if !first && c.br.Buffered() == 0 {
			more <- true
			return
		}
		switch c.screen() {
		case frameEnds:
			more <- false
			return
		case frameForGorilla:
			if !c.readOne() {
				more <- false
				return
			}
		}
	}
}

// readOne reads and handles one message; it reports whether the socket goes on.
func (c *conn) readOne() bool {
	cfg := c.g.cfg
	mt, data, err := c.ws.ReadMessage()
	if err != nil {
		c.readFailed(err)
		return false
	}
	now := time.Now()
	_ = c.ws.SetReadDeadline(now.Add(cfg.PongWait))
	if !c.rate.allow(now) {
		c.g.metrics.clientErrors.WithLabelValues(protocol.CodeRateLimited).Inc()
		if now.Sub(c.lastLimited) >= time.Second {
			c.lastLimited = now
			c.send(&protocol.Error{Code: protocol.CodeRateLimited, Message: "too many messages; slow down"})
		}
		if c.errs.add(now) {
			c.closeWith(protocol.CloseTooManyErrors, "too many errors")
			return false
		}
		return true
	}
	msg, de := decodeFrame(mt, data)
	if de != nil {
		return c.fail(de.Code, de.Message)
	}
	switch m := msg.(type) {
	case *protocol.Hello:
		return c.fail(protocol.CodeBadState, "hello already received")
	case *protocol.Ping:
		c.send(&protocol.Pong{T: m.T})
	case *protocol.Input:
		if m.Seq <= c.forwarded.Load() {
			return true // already forwarded (a resend)
		}
		ev, err := c.inputEvent(m)
		if err != nil {
			return c.fail(protocol.CodeBadField, err.Error())
		}
		// Refused when the durable path is behind (the node holds its maximum of inputs not stored yet): the
		// input went nowhere, and the client resends its latest one after a moment.
		if !c.g.pub.send(event{room: c.room, ev: ev, from: c}) {
			c.sendError(protocol.CodeNotReady, "server busy: inputs are not being stored fast enough; resend your latest input")
			return true
		}
		c.forwarded.Store(m.Seq)
	}
	return true
}

// inputEvent validates an input's payload with the room's game and makes the event the owner applies: the
// payload as the event's data, or, for a game whose inputs travel as key bitmasks, the bitmask.
func (c *conn) inputEvent(m *protocol.Input) (sim.Event, error) {
	ev := sim.Event{Kind: sim.KindInput, Player: c.player, Seq: m.Seq}
	var in game.Payload
	var err error
	if m.Data == nil && c.lkeys != nil {
		in, err = c.lkeys.KeysInput(m.Keys.Mask())
	} else {
		in, err = c.game.DecodeInput(m.Payload())
	}
	if err != nil {
		what := "data"
		if m.Data == nil {
			what = "keys"
		}
		return ev, fmt.Errorf("%s: %v (this room plays %s)", what, err, c.game.Info().Name)
	}
	if c.lkeys != nil {
		ev.Keys = c.lkeys.InputKeys(in)
	} else {
		var buf bytes.Buffer
		if json.Compact(&buf, m.Data) == nil {
			ev.Data = buf.Bytes()
		} else {
			ev.Data = m.Data
		}
	}
	return ev, nil
}

// start handles a hello: session, room, welcome, join. It reports whether the socket goes on.
// identify returns the player a hello speaks for: its resume token's, or a new one. It closes the socket and
// reports false when the token is not valid here.
func (c *conn) identify(h *protocol.Hello) (string, bool) {
	if h.Resume == "" {
		id, err := newPlayerID()
		if err != nil {
			c.closeWith(protocol.CloseDraining, "internal error")
			return "", false
		}
		return id, true
	}
	// An expired token, or one naming a player id this cluster never issues (signed with a leaked or
	// development key), is refused like a forged one.
	claims, err := c.g.signer.VerifyAt(h.Resume, time.Now(), c.g.cfg.TokenTTL)
	if err != nil || !session.ValidPlayerID(claims.Player) {
		c.sendError(protocol.CodeBadField, "resume token not valid here")
		c.closeWith(protocol.CloseBadResume, "bad resume token")
		return "", false
	}
	return claims.Player, true
}

func (c *conn) start(h *protocol.Hello, player string) bool {
	g := c.g
	roomName := h.RoomName()
	// Every welcome carries a fresh token, so that an active player's token does not expire.
	token := g.signer.Issue(player, time.Now())
	c.player, c.name, c.room, c.joinSeq, c.proto = player, h.Name, roomName, h.JoinSeq(), h.Protocol
	gm, params := g.rooms.Game(roomName)
	c.game = gm
	c.lkeys, _ = gm.(game.LegacyKeys)

	if g.rooms.Full(roomName, player) {
		c.refuse(protocol.CodeRoomFull, "the room is full", protocol.CloseRoomFull)
		return false
	}
	if old := g.claim(player, c); old != nil && old != c {
		old.closeWith(protocol.CloseTakenOver, "session taken over by a newer connection")
	}
	if err := g.join(c, roomName); err != nil {
		g.unclaim(player, c)
		switch {
		case errors.Is(err, errIPRooms):
			c.refuse(protocol.CodeTooManyRooms, err.Error(), protocol.CloseTooManyRooms)
		case errors.Is(err, errNodeRooms):
			c.refuse(protocol.CodeTooManyRooms, err.Error(), protocol.CloseOverloaded)
		default:
			c.closeWith(protocol.CloseNoOwner, "room unavailable")
		}
		return false
	}
	ack := lastAck(g, roomName, player)
	w := &protocol.Welcome{Protocol: c.proto, Player: player, Resume: token, Room: roomName, Node: g.cfg.Node,
		Nodes: g.nodes(), Ack: ack, Game: gm.Info().Name, Params: params}
	frame, err := protocol.Encode(w)
	if err != nil {
		return false
	}
	c.mu.Lock()
	c.ctrl = append(c.ctrl, frame)
	c.welcome = true
	c.lastTick = time.Now()
	c.scheduleLocked()
	c.mu.Unlock()
	g.rooms.Relay().With(roomName, func(last *room.Tick) {
		if last != nil {
			c.offerTick(newTickFrames(last, time.Now()))
		}
	})
	// Joins are always taken (publisher.send): one per socket.
	g.pub.send(event{room: roomName, ev: sim.Event{Kind: sim.KindJoin, Player: player, Name: h.Name, Seq: c.joinSeq}, from: c})
	return true
}

// finish runs when a welcomed socket ends: the player leaves (the owner keeps it for the grace period), and
// the socket leaves its room's hub.
func (c *conn) finish() {
	g := c.g
	c.mu.Lock()
	takenOver := c.closing && !c.echoing && c.closeCode == protocol.CloseTakenOver
	c.mu.Unlock()
	g.unclaim(c.player, c)
	g.leave(c, c.room)
	if !takenOver {
		g.pub.send(event{room: c.room, ev: sim.Event{Kind: sim.KindLeave, Player: c.player, Conn: c.joinSeq}})
	}
}

// lastAck is the player's ack in the room's last tick on this node (0 when unknown).
func lastAck(g *Gateway, roomName, player string) uint64 {
	ack, _ := playerAck(g, roomName, player)
	return ack
}

// playerAck is the player's ack in the room's last tick on this node, and whether the tick has the player.
func playerAck(g *Gateway, roomName, player string) (uint64, bool) {
	var ack uint64
	var ok bool
	g.rooms.Relay().With(roomName, func(last *room.Tick) {
		if last != nil {
			var p compact.Roster
			p, ok = last.State().Lookup(player)
			ack = p.Ack
		}
	})
	return ack, ok
}

// decodeFrame decodes one client frame strictly; every failure is a DecodeError with the code to send.
func decodeFrame(messageType int, data []byte) (any, *protocol.DecodeError) {
	if messageType != websocket.TextMessage {
		return nil, &protocol.DecodeError{Code: protocol.CodeBadJSON, Message: "binary frames are not accepted"}
	}
	msg, err := protocol.DecodeClient(data)
	if err != nil {
		var de *protocol.DecodeError
		if errors.As(err, &de) {
			return nil, de
		}
		return nil, &protocol.DecodeError{Code: protocol.CodeBadJSON, Message: err.Error()}
	}
	return msg, nil
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
