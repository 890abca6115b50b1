package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Config of a Client. Only URLs is required.
type Config struct {
	// URLs are the endpoints (ws://host/ws, or a node's http:// base URL), tried in order, round robin.
	URLs []string
	// First is the index in URLs of the endpoint the first connection goes to.
	First int
	// Discover adds the nodes the server announces (welcome, nodes) after URLs, as the browser does. Without it
	// the client stays with URLs, for example to go through one load balancer only.
	Discover bool
	Name     string // player name; "" = "bot"
	Room     string // room; "" = protocol.DefaultRoom
	// Protocol is the version the client asks for in hello; 0 = protocol.MaxVersion (2: binary keyframes and
	// deltas). A node that does not speak it answers 4500 before the welcome: the client then speaks protocol 1
	// from its next connection on, at once, as the browser does.
	Protocol int
	// Light reads protocol 2 ticks with a compact.Follower: their position and time and the client's own ack
	// only, without keeping the room's state (Tick.Decode then fails). For load generators, whose thousands of
	// clients would each keep a copy of the room.
	Light bool
	// Store keeps the resume token and the sequence counter; nil = in memory, for the life of the Client.
	Store Store
	// Once makes Run return when the first connection ends, whatever the close code: load generators count
	// closes instead of reconnecting.
	Once bool
	// Backoff between attempts; zero = DefaultBackoff.
	Backoff Backoff
	// DialTimeout bounds a dial with its WebSocket handshake; 0 = 10 s.
	DialTimeout time.Duration
	// WelcomeTimeout: a connection without a welcome this long after the hello is dead; 0 = 3 s.
	WelcomeTimeout time.Duration
	// Watchdog: a welcomed connection without a fresh tick this long is dead; 0 = 1 s (the browser's: a room
	// ticks 20 times a second and fails over in under a second), negative = never.
	Watchdog time.Duration
	// ResendAfter: the latest input, when no fresh tick has acknowledged it for this long (dropped as
	// rate_limited or not_ready, or lost in an owner change), is sent again unchanged, as docs/PROTOCOL.md asks
	// of a client; 0 = 1 s, negative = never (a load generator measures the input path as it is).
	ResendAfter time.Duration
	// Dialer opens the WebSockets; nil = one with a 5 s handshake timeout.
	Dialer *websocket.Dialer
	// Rand draws the backoff's jitter; nil = a randomly seeded source. Run alone uses it.
	Rand *rand.Rand
}

// Conn identifies one connection of a Client.
type Conn struct {
	N        int    // 1 for the client's first connection, 2 for the next, ...
	URL      string // its endpoint
	Endpoint int    // the endpoint's index in the list (Config.URLs first)
	HelloSeq uint64 // the sequence number of its hello (its join); 0 before the hello was sent
}

// Handler receives what a Client's connections bring. Every function is optional and is called from Run's
// goroutine. A Welcome or Tick function that returns an error makes the client abandon the connection (a close
// with 1000 and the error's text) and reconnect.
type Handler struct {
	Dialing func(c Conn)                            // before each dial
	Hello   func(c Conn)                            // the hello went out; c.HelloSeq is its sequence number
	Welcome func(c Conn, w *protocol.Welcome) error // the identity is stored before this is called
	Tick    func(t *Tick) error                     // every tick of the room, fresh or not
	Message func(c Conn, msg any)                   // *protocol.Nodes, *protocol.Error, *protocol.Pong
	Closed  func(d Disconnect)                      // how a connection ended
}

// Sent is an input that went out.
type Sent struct {
	Seq  uint64
	Conn Conn
	At   time.Time // just before the write
}

// ErrNotWelcomed is returned by Input while no connection is welcomed.
var ErrNotWelcomed = errors.New("tickmesh client: no welcomed connection")

// Client is one player of one room. Run drives it; Input may be called from other goroutines meanwhile.
type Client struct {
	cfg   Config
	eps   *endpoints
	fence *fence.Fence // across connections: a new node's relay may be a tick behind the old one

	// Run's goroutine only.
	n         int  // connections so far
	retries   int  // consecutive attempts since the last stable connection
	resetUsed bool // a 4501 reset the identity and no welcome came since
	tick      Tick // reused for every tick frame
	proto     int  // the protocol of the next hello: Config.Protocol, or 1 after a node refused it
	frames2   frames2

	mu      sync.Mutex      // guards the fields below, which Input reads
	sess    session         // the identity
	ws      *websocket.Conn // the welcomed connection, nil when there is none
	conn    Conn            // its identification
	pending pendingInput    // the latest input, until a tick acknowledges it
}

// pendingInput is the latest input sent on the welcomed connection, not acknowledged yet (seq 0: none).
type pendingInput struct {
	seq    uint64
	frame  []byte
	sentAt time.Time
}

// New makes a client; nothing connects before Run.
func New(cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("tickmesh client: no URLs")
	}
	urls := make([]string, len(cfg.URLs))
	for i, raw := range cfg.URLs {
		u, ok := NormalizeURL(raw)
		if !ok {
			return nil, fmt.Errorf("tickmesh client: %q is not a ws(s) or http(s) URL", raw)
		}
		urls[i] = u
	}
	cfg.URLs = urls
	if cfg.Name == "" {
		cfg.Name = "bot"
	}
	if cfg.Room == "" {
		cfg.Room = protocol.DefaultRoom
	}
	if !protocol.ValidRoom(cfg.Room) {
		return nil, fmt.Errorf("tickmesh client: %q is not a valid room name", cfg.Room)
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = protocol.MaxVersion
	}
	if cfg.Protocol < protocol.Version || cfg.Protocol > protocol.MaxVersion {
		return nil, fmt.Errorf("tickmesh client: protocol %d: this client speaks %d to %d", cfg.Protocol, protocol.Version, protocol.MaxVersion)
	}
	if cfg.Store == nil {
		cfg.Store = &MemoryStore{}
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.WelcomeTimeout <= 0 {
		cfg.WelcomeTimeout = 3 * time.Second
	}
	if cfg.Watchdog == 0 {
		cfg.Watchdog = time.Second
	}
	if cfg.ResendAfter == 0 {
		cfg.ResendAfter = time.Second
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	st, err := cfg.Store.Load(cfg.Room)
	if err != nil {
		return nil, fmt.Errorf("tickmesh client: load the session: %w", err)
	}
	return &Client{cfg: cfg, eps: newEndpoints(urls, max(cfg.First, 0)), fence: fence.New(), proto: cfg.Protocol,
		sess: session{store: cfg.Store, room: cfg.Room, state: st}}, nil
}

// Player is the player id of the last welcome ("" before the first).
func (c *Client) Player() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.player
}

// State is the identity the next hello uses: the resume token and the last sequence number.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.state
}

// Input sends the state of the keys (the arena's input) on the welcomed connection under the next sequence
// number.
func (c *Client) Input(keys protocol.Keys) (Sent, error) { return c.send(&protocol.Input{Keys: keys}) }

// InputData sends a game's own input payload (input.data, like collect's target point) on the welcomed
// connection under the next sequence number; the room's game validates it.
func (c *Client) InputData(data json.RawMessage) (Sent, error) {
	return c.send(&protocol.Input{Data: data})
}

// send numbers in with the next sequence number and writes it.
func (c *Client) send(in *protocol.Input) (Sent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws == nil {
		return Sent{}, ErrNotWelcomed
	}
	seq, err := c.sess.next()
	if err != nil {
		return Sent{}, fmt.Errorf("save the session: %w", err)
	}
	in.Seq = seq
	data, err := protocol.Encode(in)
	if err != nil {
		return Sent{}, err
	}
	at := time.Now()
	_ = c.ws.SetWriteDeadline(at.Add(time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return Sent{}, fmt.Errorf("send input: %w", err)
	}
	c.pending = pendingInput{seq: seq, frame: data, sentAt: at}
	return Sent{Seq: seq, Conn: c.conn, At: at}, nil
}

// Run connects and keeps the player connected until ctx ends (it returns ctx's error), a close code is final (a
// *CloseError), or, with Config.Once, the first connection ends (nil).
func (c *Client) Run(ctx context.Context, h Handler) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := c.connect(ctx, &h)
		if h.Closed != nil {
			h.Closed(d)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Abandoned && d.Code == protocol.CloseBadProtocol && d.Welcomed.IsZero() && c.proto > protocol.Version {
			// A node that does not speak this protocol (one from before protocol 2, during a rolling upgrade):
			// protocol 1 from now on, at once, on the same endpoint.
			c.proto = protocol.Version
			continue
		}
		if !d.Abandoned {
			switch Classify(d.Code) {
			case Final:
				return &CloseError{Code: d.Code, Text: d.Reason}
			case ResetIdentity:
				// The token is refused: forget it and its counter, and join once as a new player; a second 4501
				// before any welcome is final.
				if c.resetUsed {
					return &CloseError{Code: d.Code, Text: d.Reason}
				}
				c.resetUsed = true
				c.mu.Lock()
				err := c.sess.clear()
				c.mu.Unlock()
				if err != nil {
					return fmt.Errorf("tickmesh client: clear the session: %w", err)
				}
			}
		}
		if c.cfg.Once {
			return nil
		}
		if !d.Welcomed.IsZero() && d.At.Sub(d.Welcomed) >= c.cfg.Backoff.StableAfter {
			c.retries = 0
		}
		wait := c.cfg.Backoff.delay(c.retries, c.cfg.Rand)
		c.retries++
		c.eps.advance()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// frames recycles frame buffers across connections and clients: a tick of a big room is 100 KB and more.
var frames = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// connect runs one connection from the dial to its end.
func (c *Client) connect(ctx context.Context, h *Handler) (d Disconnect) {
	c.n++
	d = Disconnect{Conn: Conn{N: c.n, URL: c.eps.current(), Endpoint: c.eps.i}, Stage: StageDial, Code: CloseAbnormal}
	defer func() { d.At = time.Now() }()
	if h.Dialing != nil {
		h.Dialing(d.Conn)
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	ws, resp, err := c.cfg.Dialer.DialContext(dctx, d.Conn.URL, nil)
	cancel()
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		d.Reason, d.Err = err.Error(), err
		if resp != nil {
			d.Reason += " (HTTP " + resp.Status + ")"
		}
		return d
	}
	defer ws.Close()
	defer func() {
		c.mu.Lock()
		c.ws = nil
		c.mu.Unlock()
	}()
	// When ctx ends, say goodbye and give the server a second to answer the close before the socket is cut.
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "client stopped"),
			time.Now().Add(time.Second))
		_ = ws.SetReadDeadline(time.Now().Add(time.Second))
	})
	defer func() {
		if !stop() {
			<-stopped
		}
	}()

	c.frames2.reset(c.cfg.Light, c.sess.player)
	if err := c.hello(ws, &d); err != nil {
		d.Stage, d.Reason, d.Err = StageHello, err.Error(), err
		return d
	}
	if h.Hello != nil {
		h.Hello(d.Conn)
	}
	d.Stage = StageWelcome
	_ = ws.SetReadDeadline(time.Now().Add(c.cfg.WelcomeTimeout))
	stopping := false
	for {
		if ctx.Err() != nil && !stopping {
			// Again after the goodbye: a frame handled meanwhile may have moved the deadline.
			stopping = true
			_ = ws.SetReadDeadline(time.Now().Add(time.Second))
		}
		mt, r, err := ws.NextReader()
		if err != nil {
			c.ended(ctx, ws, &d, err)
			return d
		}
		buf := frames.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(r)
		at := time.Now()
		var reason string
		// A frame cut short is followed by the error of the next read; a frame after ctx ended is not delivered.
		if err == nil && ctx.Err() == nil {
			if mt == websocket.BinaryMessage {
				reason = c.binary(ws, &d, buf.Bytes(), at, h)
			} else {
				reason = c.frame(ws, &d, buf.Bytes(), at, h)
			}
		}
		frames.Put(buf)
		if reason != "" {
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason),
				time.Now().Add(200*time.Millisecond))
			d.Code, d.Reason, d.Abandoned = websocket.CloseNormalClosure, reason, true
			return d
		}
	}
}

// hello sends the connection's hello under the next sequence number.
func (c *Client) hello(ws *websocket.Conn, d *Disconnect) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, err := c.sess.next()
	if err != nil {
		return fmt.Errorf("save the session: %w", err)
	}
	d.Conn.HelloSeq = seq
	data, err := protocol.Encode(&protocol.Hello{Protocol: c.proto, Name: c.cfg.Name, Room: c.cfg.Room,
		Resume: c.sess.state.Resume, Seq: seq})
	if err != nil {
		return err
	}
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("write hello: %w", err)
	}
	return nil
}

// ended fills in how a connection whose read failed with err ended.
func (c *Client) ended(ctx context.Context, ws *websocket.Conn, d *Disconnect, err error) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		d.Code, d.Reason, d.Abandoned = websocket.CloseNormalClosure, "client stopped", true
	case errors.As(err, &ce):
		d.Code, d.Reason = ce.Code, ce.Text
	case errors.As(err, &ne) && ne.Timeout():
		d.Code, d.Abandoned = websocket.CloseNormalClosure, true
		d.Reason = "no welcome in time"
		if d.Stage == StagePlay {
			d.Reason = fmt.Sprintf("no tick for %v", c.cfg.Watchdog)
		}
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, d.Reason),
			time.Now().Add(200*time.Millisecond))
	default:
		d.Reason, d.Err = err.Error(), err
	}
}

// frame handles one server frame; it returns why the connection is to be abandoned, or "".
func (c *Client) frame(ws *websocket.Conn, d *Disconnect, data []byte, at time.Time, h *Handler) string {
	t := &c.tick
	*t = Tick{Conn: d.Conn, At: at, Data: data}
	if !parseTickHead(data, c.cfg.Room, t) {
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			return "" // an unknown type or a frame this client cannot read: ignored, as a client must
		}
		switch m := msg.(type) {
		case *protocol.Welcome:
			return c.welcome(ws, d, m, at, h)
		case *protocol.Tick:
			t.Room, t.Epoch, t.Seq, t.Time, t.full = m.Room, m.Epoch, m.Seq, m.Time, m
		default:
			if n, ok := msg.(*protocol.Nodes); ok && c.cfg.Discover {
				c.eps.announce(n.Nodes)
			}
			if h.Message != nil {
				h.Message(d.Conn, msg)
			}
			return ""
		}
	}
	return c.tickFrame(ws, d, t, at, h)
}

// tickFrame fences a tick of either protocol, acknowledges inputs and hands it to the handler.
func (c *Client) tickFrame(ws *websocket.Conn, d *Disconnect, t *Tick, at time.Time, h *Handler) string {
	if d.Stage != StagePlay || t.Room != c.cfg.Room {
		return ""
	}
	t.Fresh = c.fence.Accept(c.cfg.Room, t.Epoch, t.Seq)
	if t.Fresh && c.cfg.Watchdog > 0 {
		_ = ws.SetReadDeadline(at.Add(c.cfg.Watchdog))
	}
	if t.Fresh {
		c.acknowledge(t)
	}
	if h.Tick != nil {
		if err := h.Tick(t); err != nil {
			return err.Error()
		}
	}
	return ""
}

// welcome stores the identity of a welcome and makes the connection the one inputs go to.
func (c *Client) welcome(ws *websocket.Conn, d *Disconnect, w *protocol.Welcome, at time.Time, h *Handler) string {
	if d.Stage == StagePlay {
		return "" // a second welcome is a server bug; the first one counts
	}
	if w.Protocol != c.proto {
		return fmt.Sprintf("the server speaks protocol %d, this client %d", w.Protocol, c.proto)
	}
	c.frames2.player(w.Player)
	c.mu.Lock()
	err := c.sess.welcome(w.Player, w.Resume, w.Ack)
	// A new connection: its own inputs replace anything unacknowledged.
	c.ws, c.conn, c.pending = ws, d.Conn, pendingInput{}
	c.mu.Unlock()
	if err != nil {
		return "save the session: " + err.Error()
	}
	d.Stage, d.Welcomed = StagePlay, at
	c.resetUsed = false
	if c.cfg.Discover {
		c.eps.announce(w.Nodes)
	}
	deadline := time.Time{}
	if c.cfg.Watchdog > 0 {
		deadline = at.Add(c.cfg.Watchdog)
	}
	_ = ws.SetReadDeadline(deadline)
	if h.Welcome != nil {
		if err := h.Welcome(d.Conn, w); err != nil {
			return err.Error()
		}
	}
	if w.Ack >= d.Conn.HelloSeq {
		// The join is stale (the counter was lost or rolled back; the server will ignore it): the counter has
		// moved past the ack; reconnect with a join the server applies.
		return "stale join"
	}
	return ""
}

// acknowledge clears the pending input once a tick shows it applied, and sends it again unchanged when none has
// for ResendAfter.
func (c *Client) acknowledge(t *Tick) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending.seq == 0 || c.ws == nil {
		return
	}
	if ack, ok := t.Ack(c.sess.player); ok && ack >= c.pending.seq {
		c.pending = pendingInput{}
		return
	}
	if c.cfg.ResendAfter < 0 || t.At.Sub(c.pending.sentAt) < c.cfg.ResendAfter {
		return
	}
	_ = c.ws.SetWriteDeadline(t.At.Add(time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, c.pending.frame); err == nil {
		c.pending.sentAt = t.At
	}
}
