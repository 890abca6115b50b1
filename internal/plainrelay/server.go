package plainrelay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// nodeName is the node of the welcome and the owner of the ticks: as long as the benchmark's owner node's name
// ("owner"), so that the ticks are as long as the relay's.
const nodeName = "plain"

// Server is a running baseline server (see the package doc).
type Server struct {
	// Set by Start, read-only afterwards.
	cfg     Config
	ln      net.Listener
	srv     *http.Server
	up      websocket.Upgrader
	arena   arena.Config
	schema  *game.Schema
	globals []float64
	params  protocol.Params
	ctx     context.Context
	cancel  context.CancelFunc
	shards  []*shard

	wg       sync.WaitGroup // Serve, the broadcasters, the closer and every admitted handler
	serveErr error          // written by Serve's goroutine before it is done, read after wg.Wait

	mu       sync.Mutex
	closed   bool                         // guarded by mu: no new sockets
	admitted int                          // guarded by mu: handlers past admission (MaxSockets)
	sockets  map[*websocket.Conn]struct{} // guarded by mu: upgraded sockets, closed by the closer
	rooms    map[string]*room             // guarded by mu: rooms with sockets or sockets about to join
	next     int                          // guarded by mu: the shard of the next room
	made     int                          // guarded by mu: rooms created so far, for the extra players' names
}

// room is one room's membership and tick counter, all guarded by Server.mu.
type room struct {
	name    string
	shard   *shard
	index   int // in shard.rooms
	seq     uint64
	socks   []*socket             // welcomed sockets, in join order
	players []protocol.TickPlayer // sorted by id: the sockets' players and the extra ones
	pending int                   // sockets whose welcome is being written: the room stays until they join
}

// socket is one welcomed WebSocket.
type socket struct {
	ws   *websocket.Conn
	id   string
	room *room // guarded by Server.mu; nil once the socket left
}

// shard is a broadcaster's share of the rooms.
type shard struct {
	rooms []*room // guarded by Server.mu
	// The broadcaster's own, reused from tick to tick.
	out   []frame
	socks []*socket
}

// frame is one room's prepared tick and its sockets, shard.socks[from:to].
type frame struct {
	pm       *websocket.PreparedMessage
	from, to int
}

// Start serves /ws on ln until ctx ends or Close is called. It takes ln over: the closer closes it.
func Start(ctx context.Context, cfg Config, ln net.Listener) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	acfg := arena.DefaultConfig()
	g, err := arena.New(acfg)
	if err != nil {
		return nil, fmt.Errorf("create the arena: %w", err)
	}
	info := g.Info()
	s := &Server{
		cfg: cfg, ln: ln, arena: acfg, schema: &info.Schema,
		globals: []float64{float64(acfg.Width), float64(acfg.Height)},
		params:  append(protocol.Params(info.Params), game.Param{Name: "tick_rate", Value: int64(cfg.TickRate)}),
		sockets: map[*websocket.Conn]struct{}{}, rooms: map[string]*room{},
	}
	// Prepared messages bypass the write buffer; it serves only the welcome and the close frames, and is pooled.
	s.up = websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{},
		CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.ctx, s.cancel = context.WithCancel(ctx)
	for range cfg.Shards {
		s.shards = append(s.shards, &shard{})
	}
	s.wg.Add(2 + len(s.shards))
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = fmt.Errorf("serve http: %w", err)
			s.cancel()
		}
	}()
	for _, sh := range s.shards {
		go s.broadcast(sh)
	}
	go s.closer()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Done is closed when the server stops: its context ended, Close was called or serving failed.
func (s *Server) Done() <-chan struct{} { return s.ctx.Done() }

// Close stops the server and waits for every goroutine it started; it returns why serving failed, if it did.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return s.serveErr
}

// closer waits for the end and then stops new sockets, the listener, and every socket: their handlers end.
func (s *Server) closer() {
	defer s.wg.Done()
	<-s.ctx.Done()
	s.mu.Lock()
	s.closed = true
	socks := slices.Collect(maps.Keys(s.sockets))
	s.mu.Unlock()
	_ = s.srv.Close() // the listener and the connections not yet upgraded; hijacked ones are ours
	deadline := time.Now().Add(100 * time.Millisecond)
	msg := websocket.FormatCloseMessage(protocol.CloseDraining, "server closing")
	for _, ws := range socks {
		_ = ws.WriteControl(websocket.CloseMessage, msg, deadline)
		_ = ws.Close()
	}
}

// serveWS is a socket's whole life: admission, upgrade, hello and welcome, then reading until it ends.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !s.admit() {
		http.Error(w, "plainrelay: at the socket limit or closing", http.StatusServiceUnavailable)
		return
	}
	defer s.release()
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.sockets[ws] = struct{}{}
	}
	s.mu.Unlock()
	if closed {
		_ = ws.Close()
		return
	}
	sock := s.greet(ws)
	if sock != nil {
		// Frames are read and dropped: reading is what makes gorilla answer pings and the close handshake, and
		// what notices the client going away.
		for {
			if _, _, err := ws.NextReader(); err != nil {
				break
			}
		}
	}
	s.leave(ws, sock)
}

// admit counts a handler against MaxSockets, and in the wait group, unless the server is full or closing.
func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.admitted >= s.cfg.MaxSockets {
		return false
	}
	s.admitted++
	s.wg.Add(1) // the closer is still running (closed is false): the group is not at zero
	return true
}

func (s *Server) release() {
	s.mu.Lock()
	s.admitted--
	s.mu.Unlock()
	s.wg.Done()
}

// greet reads the hello, writes the welcome and joins the socket to its room; nil when the socket does not
// go on.
func (s *Server) greet(ws *websocket.Conn) *socket {
	ws.SetReadLimit(protocol.DefaultReadLimit)
	_ = ws.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout))
	_, data, err := ws.ReadMessage()
	if err != nil {
		return nil
	}
	msg, err := protocol.DecodeClient(data)
	var de *protocol.DecodeError
	if errors.As(err, &de) && de.Code == protocol.CodeBadProtocol {
		s.refuse(ws, de.Code, de.Message, protocol.CloseBadProtocol)
		return nil
	}
	h, ok := msg.(*protocol.Hello)
	if err != nil || !ok {
		s.refuse(ws, protocol.CodeBadState, "the first message must be a valid hello", websocket.ClosePolicyViolation)
		return nil
	}
	if h.Protocol != protocol.Version {
		// Like a node from before protocol 2: pkg/client and the browser say hello again in protocol 1.
		s.refuse(ws, protocol.CodeBadProtocol, "this server speaks protocol 1 only", protocol.CloseBadProtocol)
		return nil
	}
	sock := &socket{ws: ws, id: fmt.Sprintf("p%016x", rand.Uint64())}
	r := s.reserve(h.RoomName())
	if r == nil {
		s.refuse(ws, protocol.CodeTooManyRooms, "this server has its maximum of rooms", protocol.CloseOverloaded)
		return nil
	}
	data, err = protocol.Encode(&protocol.Welcome{Protocol: protocol.Version, Player: sock.id, Room: r.name,
		Node: nodeName, Game: arena.Name, Params: s.params})
	if err == nil {
		_ = ws.SetWriteDeadline(time.Now().Add(s.cfg.HelloTimeout))
		err = ws.WriteMessage(websocket.TextMessage, data)
	}
	_ = ws.SetReadDeadline(time.Time{})
	s.mu.Lock()
	defer s.mu.Unlock()
	r.pending--
	if err != nil {
		s.forgetIfEmpty(r)
		return nil
	}
	x, y := arena.Spawn(0, sock.id, s.arena)
	sock.room = r
	r.socks = append(r.socks, sock)
	r.addPlayer(protocol.TickPlayer{ID: sock.id, Name: h.Name, Fields: []float64{float64(x), float64(y), 0, 0, 0},
		Conn: h.JoinSeq(), Online: true})
	return sock
}

// refuse sends an error frame and closes the socket with code.
func (s *Server) refuse(ws *websocket.Conn, code, text string, closeCode int) {
	deadline := time.Now().Add(s.cfg.WriteTimeout)
	if data, err := protocol.Encode(&protocol.Error{Code: code, Message: text}); err == nil {
		_ = ws.SetWriteDeadline(deadline)
		_ = ws.WriteMessage(websocket.TextMessage, data)
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeCode, code), deadline)
}

// reserve returns the room, created if need be, holding it for a socket about to join; nil at MaxRooms.
func (s *Server) reserve(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[name]
	if r == nil {
		if len(s.rooms) >= s.cfg.MaxRooms {
			return nil
		}
		sh := s.shards[s.next%len(s.shards)]
		s.next++
		r = &room{name: name, shard: sh, index: len(sh.rooms)}
		sh.rooms = append(sh.rooms, r)
		s.rooms[name] = r
		for i := range s.cfg.ExtraPlayers {
			id := fmt.Sprintf("p%016x", rand.Uint64())
			x, y := arena.Spawn(0, id, s.arena)
			r.addPlayer(protocol.TickPlayer{ID: id, Name: fmt.Sprintf("seed%d", s.made*s.cfg.ExtraPlayers+i),
				Fields: []float64{float64(x), float64(y), 0, 0, 0}, Conn: 1, Online: true})
		}
		s.made++
	}
	r.pending++
	return r
}

// addPlayer inserts p in the room's players, keeping them sorted by id.
func (r *room) addPlayer(p protocol.TickPlayer) {
	i, _ := slices.BinarySearchFunc(r.players, p.ID, func(q protocol.TickPlayer, id string) int { return strings.Compare(q.ID, id) })
	r.players = slices.Insert(r.players, i, p)
}

// leave takes the socket out of its room (sock may be nil: it never joined) and closes it. Both the socket's
// handler and a broadcaster whose write failed call it; the second call finds nothing left to do.
func (s *Server) leave(ws *websocket.Conn, sock *socket) {
	s.mu.Lock()
	delete(s.sockets, ws)
	if sock != nil && sock.room != nil {
		r := sock.room
		sock.room = nil
		r.socks = slices.DeleteFunc(r.socks, func(o *socket) bool { return o == sock })
		r.players = slices.DeleteFunc(r.players, func(p protocol.TickPlayer) bool { return p.ID == sock.id })
		s.forgetIfEmpty(r)
	}
	s.mu.Unlock()
	_ = ws.Close()
}

// forgetIfEmpty drops a room without sockets and without sockets about to join. The caller holds mu.
func (s *Server) forgetIfEmpty(r *room) {
	if len(r.socks) > 0 || r.pending > 0 {
		return
	}
	delete(s.rooms, r.name)
	sh := r.shard
	last := sh.rooms[len(sh.rooms)-1]
	sh.rooms[r.index], last.index = last, r.index
	sh.rooms = sh.rooms[:len(sh.rooms)-1]
}

// broadcast ticks the shard's rooms until the server stops.
func (s *Server) broadcast(sh *shard) {
	defer s.wg.Done()
	t := time.NewTicker(time.Second / time.Duration(s.cfg.TickRate))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.tick(sh)
		}
	}
}

// tick encodes and prepares one tick of each of the shard's rooms that has sockets, under mu, then writes each
// to its room's sockets, outside mu: a slow socket delays the shard's other writes, never a join or a leave.
func (s *Server) tick(sh *shard) {
	sh.out, sh.socks = sh.out[:0], sh.socks[:0]
	s.mu.Lock()
	now := time.Now().UnixMilli()
	for _, r := range sh.rooms {
		if len(r.socks) == 0 {
			continue
		}
		r.seq++
		data, err := protocol.Encode(&protocol.Tick{Room: r.name, Epoch: 1, Seq: r.seq, Owner: nodeName, Time: now,
			Schema: s.schema, Globals: s.globals, Players: r.players})
		if err != nil {
			continue // not for the arena's fields, which are the schema's
		}
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
		if err != nil {
			continue // only a compressing connection can fail here, and there is none
		}
		from := len(sh.socks)
		sh.socks = append(sh.socks, r.socks...)
		sh.out = append(sh.out, frame{pm: pm, from: from, to: len(sh.socks)})
	}
	s.mu.Unlock()
	for _, f := range sh.out {
		for _, sock := range sh.socks[f.from:f.to] {
			// gorilla sets the connection's deadline on every write anyway; this only sets its value.
			_ = sock.ws.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if err := sock.ws.WritePreparedMessage(f.pm); err != nil {
				s.leave(sock.ws, sock)
			}
		}
	}
	clear(sh.socks) // the sockets that left can be collected
	clear(sh.out)
}
