package gateway

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// socketPair is a server-side conn (no reader of its own: housekeep and flush are what is tested) and the
// client end of a real WebSocket connection, whose pings and close code are recorded.
type socketPair struct {
	c      *conn
	pings  chan struct{}
	closed chan int // the close code the client got
}

func newSocketPair(t *testing.T, start time.Time) *socketPair {
	t.Helper()
	g := &Gateway{cfg: DefaultConfig("t"), metrics: newMetrics(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	server := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		server <- ws
	}))
	t.Cleanup(srv.Close)
	cl, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &socketPair{c: newConn(g, <-server, nil, nil, "127.0.0.1", start), pings: make(chan struct{}, 10), closed: make(chan int, 1)}
	cl.SetPingHandler(func(string) error {
		p.pings <- struct{}{}
		return nil
	})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			if _, _, err := cl.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					p.closed <- ce.Code
				}
				return
			}
		}
	}()
	t.Cleanup(func() {
		cl.Close()
		<-readerDone
		p.c.end()
	})
	return p
}

func TestHousekeepingPingsASocketOnlyWhenItsPeriodIsDue(t *testing.T) {
	start := time.Now()
	p := newSocketPair(t, start)
	period := p.c.g.cfg.PingPeriod
	p.c.housekeep(start.Add(period - time.Millisecond))
	select {
	case <-p.pings:
		t.Fatal("pinged before the ping period")
	case <-time.After(200 * time.Millisecond):
	}
	p.c.housekeep(start.Add(period))
	select {
	case <-p.pings:
	case <-time.After(5 * time.Second):
		t.Fatal("no ping once the period was due")
	}
	// The next one is due a full period after the last.
	p.c.housekeep(start.Add(period + period/2))
	select {
	case <-p.pings:
		t.Fatal("pinged again within one period")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestHousekeepingClosesAWelcomedSocketWhoseRoomSendsNoTicks(t *testing.T) {
	start := time.Now()
	p := newSocketPair(t, start)
	p.c.mu.Lock()
	p.c.welcome, p.c.lastTick = true, start
	p.c.mu.Unlock()
	noTick := p.c.g.cfg.NoTickAfter
	p.c.housekeep(start.Add(noTick)) // not past it yet
	select {
	case code := <-p.closed:
		t.Fatalf("closed with %d before NoTickAfter", code)
	case <-time.After(200 * time.Millisecond):
	}
	p.c.housekeep(start.Add(noTick + time.Millisecond))
	select {
	case code := <-p.closed:
		if code != protocol.CloseNoOwner {
			t.Fatalf("close code %d, want %d (no owner)", code, protocol.CloseNoOwner)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not closed after NoTickAfter without ticks")
	}
}

func TestHousekeepingLeavesASocketWithoutHelloToTheHelloTimeout(t *testing.T) {
	start := time.Now()
	p := newSocketPair(t, start)
	// Not welcomed: the no-owner watchdog does not apply (the hello deadline does, in greet).
	p.c.housekeep(start.Add(p.c.g.cfg.NoTickAfter + time.Minute))
	select {
	case code := <-p.closed:
		t.Fatalf("a socket without hello closed by the no-owner watchdog (%d)", code)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestACutOffNodeClosesTheSocketsOfRoomsWithoutTicksSoTheyMoveToTheMajority(t *testing.T) {
	start := time.Now()
	p := newSocketPair(t, start)
	p.c.mu.Lock()
	p.c.welcome, p.c.lastTick = true, start
	p.c.mu.Unlock()
	cut := p.c.g.cfg.CutNoTick
	p.c.cutOff(start.Add(cut - time.Millisecond)) // its room ticked recently: it stays
	select {
	case code := <-p.closed:
		t.Fatalf("closed with %d although its room ticked within CutNoTick", code)
	case <-time.After(200 * time.Millisecond):
	}
	p.c.cutOff(start.Add(cut))
	select {
	case code := <-p.closed:
		if code != protocol.CloseNoOwner {
			t.Fatalf("close code %d, want %d (no owner: reconnect elsewhere)", code, protocol.CloseNoOwner)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not closed although cut off and without ticks for CutNoTick")
	}
}
