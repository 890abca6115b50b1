package security

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// player is a WebSocket client of the game: it says hello and counts what it receives.
type player struct {
	t    testing.TB
	name string
	ws   *websocket.Conn
	done chan struct{}

	wmu sync.Mutex

	mu        sync.Mutex
	welcome   *protocol.Welcome
	ticks     int
	last      *protocol.Tick
	errs      []string // error codes received
	closeCode int      // 0 while open; 1006 for a close without a close frame
	closeText string
}

// dialPlayer opens a socket to url (ws://.../ws) with the handshake headers h, without saying hello.
func dialPlayer(t testing.TB, url, name string, h http.Header) *player {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial(url, h)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	p := &player{t: t, name: name, ws: ws, done: make(chan struct{})}
	go p.read()
	t.Cleanup(func() {
		p.ws.Close()
		<-p.done
	})
	return p
}

// wsURL is the WebSocket endpoint of a node.
func wsURL(n *node.Node) string { return strings.Replace(n.URL(), "http://", "ws://", 1) + "/ws" }

// joinLobby dials n, says hello as a new player and waits for the welcome.
func joinLobby(t testing.TB, n *node.Node, name string) *player {
	t.Helper()
	p := dialPlayer(t, wsURL(n), name, nil)
	p.hello("", 1)
	p.waitWelcome()
	return p
}

func (p *player) read() {
	defer close(p.done)
	for {
		_, data, err := p.ws.ReadMessage()
		if err != nil {
			p.mu.Lock()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				p.closeCode, p.closeText = ce.Code, ce.Text
			} else {
				p.closeCode = websocket.CloseAbnormalClosure
			}
			p.mu.Unlock()
			return
		}
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			continue
		}
		p.mu.Lock()
		switch m := msg.(type) {
		case *protocol.Welcome:
			p.welcome = m
		case *protocol.Tick:
			p.ticks++
			p.last = m
		case *protocol.Error:
			p.errs = append(p.errs, m.Code)
		}
		p.mu.Unlock()
	}
}

func (p *player) send(msg any) {
	p.t.Helper()
	data, err := protocol.Encode(msg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := p.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		p.t.Fatalf("%s: send: %v", p.name, err)
	}
}

// hello says hello with an optional resume token and join seq.
func (p *player) hello(token string, seq uint64) {
	p.t.Helper()
	p.send(&protocol.Hello{Protocol: protocol.Version, Name: p.name, Resume: token, Seq: seq})
}

func (p *player) waitWelcome() *protocol.Welcome {
	p.t.Helper()
	var w *protocol.Welcome
	testingutil.WaitFor(p.t, 20*time.Second, p.name+" welcome", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.welcome == nil && p.closeCode != 0 {
			p.t.Fatalf("%s: closed %d (%s) before the welcome", p.name, p.closeCode, p.closeText)
		}
		w = p.welcome
		return w != nil
	})
	return w
}

// waitClose waits until the socket is closed and returns the close code.
func (p *player) waitClose(timeout time.Duration) (int, string) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s: still open after %v", p.name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closeCode, p.closeText
}

func (p *player) tickCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ticks
}

// keepsPlaying waits until p has received n more ticks: the game goes on for it.
func (p *player) keepsPlaying(n int) {
	p.t.Helper()
	from := p.tickCount()
	testingutil.WaitFor(p.t, 20*time.Second, p.name+" keeps receiving ticks", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closeCode != 0 {
			p.t.Fatalf("%s: closed %d (%s)", p.name, p.closeCode, p.closeText)
		}
		return p.ticks >= from+n
	})
}

// natsErrors collects a connection's asynchronous errors (permission violations arrive that way).
type natsErrors struct {
	mu   sync.Mutex
	errs []error
}

func (e *natsErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, err)
}

// violation reports whether the server refused to let the connection publish (or subscribe to) subject.
func (e *natsErrors) violation(subject string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.errs {
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
			return true
		}
	}
	return false
}

func (e *natsErrors) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, err := range e.errs {
		s = append(s, err.Error())
	}
	return strings.Join(s, "; ")
}

// getJSON GETs url into v and returns the status code (0 on a transport error).
func getJSON(url string, v any) int {
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

// clusterView is a node's /api/cluster (admin listener).
func clusterView(t testing.TB, n *node.Node) node.ClusterView {
	t.Helper()
	var v node.ClusterView
	if code := getJSON(n.AdminURL()+"/api/cluster", &v); code != http.StatusOK {
		t.Fatalf("%s /api/cluster: %d", n.Name(), code)
	}
	return v
}

// readiness is a node's /readyz.
func readiness(t testing.TB, n *node.Node) (int, node.Readiness) {
	t.Helper()
	var r node.Readiness
	code := getJSON(n.URL()+"/readyz", &r)
	return code, r
}

// errorCount is how many error frames with code p received.
func (p *player) errorCount(code string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.errs {
		if c == code {
			n++
		}
	}
	return n
}

func (p *player) errorCodes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// waitPlayers waits for a tick with n players.
func (p *player) waitPlayers(n int) {
	p.t.Helper()
	testingutil.WaitFor(p.t, 20*time.Second, p.name+" sees the players", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.last != nil && len(p.last.Players) == n
	})
}

// lastEpoch is the epoch of the last tick received (0 before the first).
func (p *player) lastEpoch() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		return 0
	}
	return p.last.Epoch
}

// waitPresent waits for a tick that has the player: the owner applied its join.
func (p *player) waitPresent() {
	p.t.Helper()
	testingutil.WaitFor(p.t, 20*time.Second, p.name+" in the room", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.welcome == nil || p.last == nil {
			return false
		}
		_, ok := p.last.Player(p.welcome.Player)
		return ok
	})
}
