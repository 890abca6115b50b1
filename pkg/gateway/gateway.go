package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/session"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Config of the gateway.
type Config struct {
	Node           string
	ReadLimit      int64          // bytes per client frame
	InputRate      float64        // client messages per second after hello
	InputBurst     int            //
	MaxConns       int            // sockets on this node
	MaxConnsPerIP  int            //
	MaxRooms       int            // rooms with sockets on this node
	MaxRoomsPerIP  int            // distinct rooms one client address has sockets in
	AllowedOrigins []string       // empty: same host as the request; "*": any
	TokenTTL       time.Duration  // a resume token older than this is refused with CloseBadResume
	TrustedProxies []netip.Prefix // peers whose X-Real-IP / X-Forwarded-For name the client; empty: none
	HelloTimeout   time.Duration  // hello must arrive within this
	PingPeriod     time.Duration  // WebSocket ping period
	PongWait       time.Duration  // nothing received for this long closes the socket
	WriteTimeout   time.Duration  // one frame write
	SlowAfter      time.Duration  // a tick unsent this long closes the socket as too slow
	NoTickAfter    time.Duration  // no tick for the room this long closes with CloseNoOwner
	CutNoTick      time.Duration  // while this node looks cut off from the majority (Rooms.CutOff), no tick this long closes with CloseNoOwner
	CutCheck       time.Duration  // how often Rooms.CutOff is asked
	ErrorBudget    int            // errors per ErrorWindow before CloseTooManyErrors
	ErrorWindow    time.Duration  //
	DrainTimeout   time.Duration  // how long Drain waits for sockets to close
	Workers        int            // event publisher workers (rooms are sharded over them)
	// BatchWindow is the longest a player event waits for others of its room before the group goes to the
	// owner's fast path and, as one message, to INPUTS (0: no waiting; a busy room's batches still fill up while
	// the one before is in flight).
	BatchWindow time.Duration
	// BatchMax is the most events one batch holds. 1 writes one event per message with its own message id, the
	// form nodes without batches read: the setting for a rolling upgrade from such nodes (docs/FAILOVER.md).
	BatchMax int
	// MaxPending is the most inputs this node holds that INPUTS has not stored yet; beyond it an input is
	// answered not_ready (joins and leaves are always taken: one of each per socket).
	MaxPending int
}

// DefaultConfig returns the gateway defaults (docs/PROTOCOL.md, Limits).
func DefaultConfig(node string) Config {
	return Config{
		Node: node, ReadLimit: protocol.DefaultReadLimit, InputRate: protocol.DefaultRate, InputBurst: protocol.DefaultBurst,
		MaxConns: 20000, MaxConnsPerIP: 200, MaxRooms: 1000, MaxRoomsPerIP: 8, TokenTTL: 24 * time.Hour, HelloTimeout: 10 * time.Second, PingPeriod: 15 * time.Second,
		PongWait: 45 * time.Second, WriteTimeout: 5 * time.Second, SlowAfter: 2 * time.Second,
		NoTickAfter: 15 * time.Second, CutNoTick: 500 * time.Millisecond, CutCheck: 100 * time.Millisecond, ErrorBudget: 20, ErrorWindow: 10 * time.Second, DrainTimeout: 3 * time.Second,
		Workers: 4, BatchWindow: 2 * time.Millisecond, BatchMax: 64, MaxPending: 8192,
	}
}

// Validate checks the settings and their relations.
func (c Config) Validate() error {
	switch {
	case c.Node == "":
		return errors.New("gateway: node name missing")
	case c.ReadLimit < 256:
		return fmt.Errorf("gateway: read limit %d below 256 bytes", c.ReadLimit)
	case c.InputRate <= 0 || c.InputBurst < 1:
		return errors.New("gateway: input rate and burst must be positive")
	case c.MaxConns < 1 || c.MaxConnsPerIP < 1 || c.MaxConnsPerIP > c.MaxConns:
		return errors.New("gateway: connection limits must be positive, per IP at most the total")
	case c.MaxRooms < 1 || c.MaxRoomsPerIP < 1 || c.MaxRoomsPerIP > c.MaxRooms:
		return errors.New("gateway: room limits must be positive, per IP at most the total")
	case c.TokenTTL <= 0:
		return errors.New("gateway: token TTL must be positive")
	case c.PingPeriod <= 0 || c.PongWait <= c.PingPeriod:
		return fmt.Errorf("gateway: pong wait %v must exceed the ping period %v", c.PongWait, c.PingPeriod)
	case c.WriteTimeout <= 0 || c.SlowAfter <= 0 || c.HelloTimeout <= 0 || c.NoTickAfter <= 0 || c.CutNoTick <= 0 || c.CutCheck <= 0:
		return errors.New("gateway: timeouts must be positive")
	case c.ErrorBudget < 1 || c.ErrorWindow <= 0:
		return errors.New("gateway: error budget must be positive")
	case c.Workers < 1:
		return errors.New("gateway: at least one publisher worker")
	case c.BatchWindow < 0 || c.BatchWindow > 100*time.Millisecond:
		return fmt.Errorf("gateway: batch window %v out of 0..100ms", c.BatchWindow)
	case c.BatchMax < 1 || c.BatchMax > wire.MaxBatch:
		return fmt.Errorf("gateway: batch size %d out of 1..%d", c.BatchMax, wire.MaxBatch)
	case c.MaxPending < c.BatchMax:
		return fmt.Errorf("gateway: max pending inputs %d below the batch size %d", c.MaxPending, c.BatchMax)
	}
	return nil
}

// Rooms is what the gateway needs from room ownership.
type Rooms interface {
	Want(room string) (release func())
	Relay() *room.Relay
	Full(room, player string) bool
	// CutOff reports whether this node looks cut off from the majority of a live cluster: it gets no ticks of
	// rooms owned on the other side, and its players are better served there.
	CutOff() bool
	// Game returns the game room plays and the parameters its clients get in welcome.
	Game(room string) (game.Game, []game.Param)
}

// Gateway serves /ws.
type Gateway struct {
	// Set by New, read-only afterwards.
	cfg     Config
	log     *slog.Logger
	signer  *session.Signer
	rooms   Rooms
	nodes   func() []protocol.NodeInfo
	nc      *nats.Conn
	pub     *publisher
	metrics *metrics
	up      websocket.Upgrader
	notices *nats.Subscription // every room's notices (wire.AllNotices): made by New, so before any join; ended by Run

	mu       sync.Mutex
	draining bool                      // guarded by mu: no new sockets
	conns    map[*conn]struct{}        // guarded by mu: open sockets
	perIP    map[string]int            // guarded by mu: admitted handlers by client IP, from admission to release
	admitted int                       // guarded by mu: the sum of perIP, including sockets still upgrading
	players  map[string]*conn          // guarded by mu: player → its newest socket on this node
	hubs     map[string]*hub           // guarded by mu: room → its fan-out (at most MaxRooms)
	ipRooms  map[string]map[string]int // guarded by mu: client IP → room → its sockets there (MaxRoomsPerIP)
	lastList []protocol.NodeInfo       // guarded by mu: the node list last sent to sockets
	handlers sync.WaitGroup            // HTTP handlers and socket watchers, waited for by Drain and Kill
}

// New makes a gateway. nodes lists the WebSocket endpoints of the ready nodes.
func New(cfg Config, signer *session.Signer, rooms Rooms, nc *nats.Conn, js jetstream.JetStream,
	nodes func() []protocol.NodeInfo, log *slog.Logger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg: cfg, log: log, signer: signer, rooms: rooms, nodes: nodes, metrics: newMetrics(),
		conns: map[*conn]struct{}{}, perIP: map[string]int{}, players: map[string]*conn{}, hubs: map[string]*hub{},
		ipRooms: map[string]map[string]int{}, nc: nc,
	}
	g.pub = newPublisher(nc, js, cfg, log, g.metrics)
	// One subscription for the notices of every room, not one per room served: a notice is rare (a join refused
	// for a full room), and a subscription per room would cost its delivery goroutine and the cluster's interest
	// in one more subject for as long as the room has sockets here.
	var err error
	if g.notices, err = nc.Subscribe(wire.AllNotices, g.notice); err != nil {
		return nil, fmt.Errorf("listen to room notices: %w", err)
	}
	g.metrics.eventsPending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tickmesh_gateway_events_pending",
		Help: "Events accepted and not yet stored by INPUTS (waiting, in flight or to be sent again)."},
		func() float64 { return float64(g.pub.pending.Load()) })
	g.up = websocket.Upgrader{
		ReadBufferSize:  0, // the reader is ours (upgrade), readBufferSize bytes
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		// ServeHTTP checks the origin before upgrading and refuses a disallowed one with close code 4504 after the
		// handshake: a plain 403 reaches a browser as 1006, which it would retry forever.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			g.metrics.rejected.WithLabelValues("handshake").Inc()
			http.Error(w, reason.Error(), status)
		},
	}
	return g, nil
}

// LosePubAcks is fault injection for tests: the next n PubAcks of this node's durable publishes are dropped as
// if lost on the way (the batch is stored; the publisher does not know it and sends it again).
func (g *Gateway) LosePubAcks(n int) { g.pub.loseAcks.Store(int32(n)) }

// Collectors are the gateway's metrics.
func (g *Gateway) Collectors() []prometheus.Collector { return g.metrics.collectors() }

// Count is the number of open sockets.
func (g *Gateway) Count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// Run runs the durable publisher, keeps sockets' node lists current and, once a second, pings the sockets that
// are due and closes those whose room has no owner (NoTickAfter), until ctx ends. While this node looks cut off
// from the majority of the cluster it closes, every CutCheck, the sockets whose room has had no tick for
// CutNoTick.
func (g *Gateway) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.pub.run(ctx)
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	cut := time.NewTicker(g.cfg.CutCheck)
	defer cut.Stop()
	defer func() { _ = g.notices.Unsubscribe() }()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case now := <-t.C:
			for _, c := range g.sockets(false) {
				c.housekeep(now)
			}
			if n%2 == 0 {
				g.refreshNodes()
			}
		case now := <-cut.C:
			// A node on the minority side of a partition: its players' rooms tick on the other side (or will,
			// once the majority takes them over), so they move there now rather than after the client's
			// watchdog or NoTickAfter.
			if g.rooms.CutOff() {
				for _, c := range g.sockets(false) {
					c.cutOff(now)
				}
			}
		}
	}
}

func (g *Gateway) refreshNodes() {
	list := g.nodes()
	g.mu.Lock()
	if slices.Equal(list, g.lastList) {
		g.mu.Unlock()
		return
	}
	g.lastList = list
	cs := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	frame, err := protocol.Encode(&protocol.Nodes{Nodes: list})
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.welcomed() {
			c.control(frame)
		}
	}
}

// sockets lists the open sockets; with stopAccepting, new ones are refused from now on.
func (g *Gateway) sockets(stopAccepting bool) []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if stopAccepting {
		g.draining = true
	}
	cs := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		cs = append(cs, c)
	}
	return cs
}

// Drain stops accepting sockets, closes every open one with CloseDraining so that clients move to another node
// before this one exits, and waits for them (at most DrainTimeout).
func (g *Gateway) Drain() {
	cs := g.sockets(true)
	for _, c := range cs {
		c.closeWith(protocol.CloseDraining, "node draining")
	}
	done := make(chan struct{})
	go func() {
		g.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(g.cfg.DrainTimeout):
		g.log.Warn("drain timed out; closing remaining sockets")
		for _, c := range cs {
			c.ws.Close()
		}
		<-done
	}
}

// Kill drops every socket without a close frame, as a crashed process would (tests use it), and waits for
// their readers.
func (g *Gateway) Kill() {
	for _, c := range g.sockets(true) {
		c.ws.NetConn().Close()
	}
	g.handlers.Wait()
}

func (g *Gateway) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	if len(g.cfg.AllowedOrigins) == 0 {
		// Same host: the page's host name is this node's, or another node's of the cluster (a page served by
		// one node, or by nginx in front of them, fails over to the others). Ports are not compared.
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		if strings.EqualFold(u.Hostname(), hostOnly(r.Host)) {
			return true
		}
		for _, n := range g.nodes() {
			if nu, err := url.Parse(n.URL); err == nil && strings.EqualFold(nu.Hostname(), u.Hostname()) {
				return true
			}
		}
		return false
	}
	for _, o := range g.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// hostOnly strips the port from a Host header value.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// clientIP is the client's address: the peer's, unless the peer is a trusted proxy (Config.TrustedProxies).
// Behind trusted proxies it is X-Real-IP, or else the rightmost address of X-Forwarded-For that is not itself a
// trusted proxy (each proxy appends the address it received the request from, so only the entries added by
// trusted proxies are believed).
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	if real, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
		return real.Unmap().String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed entry: nothing left of it is believable
		}
		if !isTrusted(a, trusted) {
			return a.Unmap().String()
		}
	}
	return host
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ServeHTTP upgrades to a WebSocket and serves the socket until it closes.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r, g.cfg.TrustedProxies)
	allowed := g.checkOrigin(r)
	g.mu.Lock()
	reason := ""
	switch {
	case !allowed:
		reason = "origin"
	case g.draining:
		reason = "draining"
	case g.admitted >= g.cfg.MaxConns:
		reason = "max_conns"
	case g.perIP[ip] >= g.cfg.MaxConnsPerIP:
		reason = "max_conns_per_ip"
	}
	if reason == "" {
		g.perIP[ip]++
		g.admitted++
		g.handlers.Add(1)
	}
	g.mu.Unlock()
	if reason != "" {
		// Upgrade anyway when possible so the client gets a close code it understands: 4504 (do not retry) or a
		// retry code (elsewhere).
		g.metrics.rejected.WithLabelValues(reason).Inc()
		ws, _, _, err := g.upgrade(w, r)
		if err != nil {
			return
		}
		code := protocol.CloseOverloaded
		switch reason {
		case "origin":
			code = protocol.CloseOriginNotAllowed
		case "draining":
			code = protocol.CloseDraining
		}
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		ws.Close()
		return
	}
	release := func() {
		g.mu.Lock()
		if g.perIP[ip]--; g.perIP[ip] <= 0 {
			delete(g.perIP, ip)
		}
		g.admitted--
		g.mu.Unlock()
		g.handlers.Done()
	}
	ws, br, raw, err := g.upgrade(w, r)
	if err != nil {
		release()
		return
	}
	c := newConn(g, ws, br, raw, ip, time.Now())
	g.mu.Lock()
	if g.draining {
		g.mu.Unlock()
		c.closeWith(protocol.CloseDraining, "node draining")
		c.end()
		release()
		return
	}
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	g.metrics.accepted.Inc()
	g.metrics.sockets.Inc()
	unregister := func() {
		g.mu.Lock()
		delete(g.conns, c)
		g.mu.Unlock()
		g.metrics.sockets.Dec()
	}
	if !c.greet() {
		c.end()
		unregister()
		release()
		return
	}
	// The handler returns now, so that net/http's per-connection state and this goroutine's stack (grown by the
	// hello's decoding) are freed; the welcomed socket's watcher is a fresh goroutine, owned by the gateway
	// (handlers) like the handler was.
	go func() {
		defer release()
		defer unregister()
		defer c.end()
		c.watch()
	}()
}

// newPlayerID draws a fresh player id.
func newPlayerID() (string, error) { return session.NewPlayerID(rand.Reader) }

// hub is one room's fan-out on this node: one relay listener, many sockets.
type hub struct {
	room    string
	stop    func() // relay listener
	release func() // room demand
	conns   map[*conn]struct{}
	ticks   uint64 // ticks fanned out (under Gateway.mu); every takeoverEvery-th is checked for newer connections
}

// takeoverEvery is how often (in ticks of a room) fanout looks for sockets whose player connected again through
// another node.
const takeoverEvery = 20

// Errors of join: which room limit refused a socket.
var (
	errNodeRooms = errors.New("this node serves its maximum of rooms")
	errIPRooms   = errors.New("this address is in its maximum of rooms")
)

// join adds c to its room's hub, creating the hub (relay listener, room demand) for the
// first socket. It refuses a new room beyond MaxRooms, and a room beyond the client address's MaxRoomsPerIP.
func (g *Gateway) join(c *conn, roomName string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	rooms := g.ipRooms[c.ip]
	if rooms[roomName] == 0 && len(rooms) >= g.cfg.MaxRoomsPerIP {
		return errIPRooms
	}
	h, ok := g.hubs[roomName]
	if !ok {
		if len(g.hubs) >= g.cfg.MaxRooms {
			return errNodeRooms
		}
		h = &hub{room: roomName, conns: map[*conn]struct{}{}}
		stop, err := g.rooms.Relay().Listen(roomName, func(_ string, t *room.Tick) { g.fanout(h, t) })
		if err != nil {
			return fmt.Errorf("listen to room %s: %w", roomName, err)
		}
		h.stop = stop
		h.release = g.rooms.Want(roomName)
		g.hubs[roomName] = h
	}
	h.conns[c] = struct{}{}
	if rooms == nil {
		rooms = map[string]int{}
		g.ipRooms[c.ip] = rooms
	}
	rooms[roomName]++
	return nil
}

func (g *Gateway) leave(c *conn, roomName string) {
	g.mu.Lock()
	h, ok := g.hubs[roomName]
	if !ok {
		g.mu.Unlock()
		return
	}
	if _, in := h.conns[c]; in {
		delete(h.conns, c)
		if rooms := g.ipRooms[c.ip]; rooms != nil {
			if rooms[roomName]--; rooms[roomName] <= 0 {
				delete(rooms, roomName)
			}
			if len(rooms) == 0 {
				delete(g.ipRooms, c.ip)
			}
		}
	}
	empty := len(h.conns) == 0
	if empty {
		delete(g.hubs, roomName)
	}
	g.mu.Unlock()
	if empty {
		h.stop()
		h.release()
	}
}

// notice handles an owner's notice about a refused event: the socket on this node whose join it names gets the
// error and its close code. A notice of a room this node has no socket in is dropped.
func (g *Gateway) notice(msg *nats.Msg) {
	roomName, ok := wire.NoticeRoom(msg.Subject)
	if !ok {
		return
	}
	n, err := wire.DecodeNotice(msg.Data)
	if err != nil || n.Code != wire.NoticeRoomFull {
		return
	}
	g.mu.Lock()
	var target *conn
	if h := g.hubs[roomName]; h != nil {
		for c := range h.conns {
			if c.player == n.Player && c.joinSeq == n.Conn {
				target = c
			}
		}
	}
	g.mu.Unlock()
	if target != nil {
		target.refuse(protocol.CodeRoomFull, "the room is full", protocol.CloseRoomFull)
	}
}

// fanout offers a tick to every socket of the room: each socket gets the frame its protocol and position call
// for, each kind of frame made at most once (tickFrames). It runs on the relay's delivery goroutine, while the
// relay holds the room, and never blocks.
func (g *Gateway) fanout(h *hub, t *room.Tick) {
	tf := newTickFrames(t, time.Now())
	g.mu.Lock()
	cs := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		cs = append(cs, c)
	}
	h.ticks++
	check := h.ticks%takeoverEvery == 0
	g.mu.Unlock()
	for _, c := range cs {
		c.offerTick(tf)
	}
	if check {
		// After the offers, so that the check holds none of them back.
		closeTakenOver(cs, t)
	}
}

// closeTakenOver closes, with CloseTakenOver, every socket of cs whose player's current connection in the tick
// (players[].conn) is newer than the socket's own join: the player connected again, through another node (a
// takeover on this node is handled by claim).
func closeTakenOver(cs []*conn, t *room.Tick) {
	s := t.State()
	for _, c := range cs {
		if p, ok := s.Lookup(c.player); ok && p.Conn > c.joinSeq {
			c.closeWith(protocol.CloseTakenOver, "session taken over by a newer connection")
		}
	}
}

// claim makes c the player's socket on this node and returns the socket it replaces, if any.
func (g *Gateway) claim(player string, c *conn) *conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.players[player]
	g.players[player] = c
	return old
}

func (g *Gateway) unclaim(player string, c *conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.players[player] == c {
		delete(g.players, player)
	}
}
