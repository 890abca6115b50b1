package plainrelay

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/client"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// seen is what one client saw of its room.
type seen struct {
	mu      sync.Mutex
	player  string
	fresh   int      // fresh ticks
	players []string // the ids of the last tick
	wrong   string   // the first tick that was not what the room should get
}

func (s *seen) get() (fresh int, players []string, wrong string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fresh, s.players, s.wrong
}

// TestRoomsGetTheirOwnTicks runs the server on a real socket with pkg/client clients in two rooms (one asking for
// protocol 2, which the server refuses before the client falls back to 1) and a raw WebSocket: each sees fresh
// protocol 1 ticks of its own room only, listing its room's players and the extra one; Close ends them all and
// returns once every goroutine of the server has ended.
func TestRoomsGetTheirOwnTicks(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ExtraPlayers = 1
	cfg.Shards = 2
	srv, url := start(t, cfg)

	rooms := []string{"room-a", "room-a", "room-b"}
	protos := []int{0, 1, 1} // 0: pkg/client's default, protocol 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	seens := make([]*seen, len(rooms))
	closes := make(chan int, 16)
	for i, room := range rooms {
		s := &seen{}
		seens[i] = s
		c, err := client.New(client.Config{URLs: []string{url}, Name: "bot", Room: room, Protocol: protos[i]})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Run(ctx, client.Handler{
				Welcome: func(_ client.Conn, w *protocol.Welcome) error {
					s.mu.Lock()
					defer s.mu.Unlock()
					s.player = w.Player
					if w.Protocol != 1 || w.Room != room || w.Node != nodeName || w.Ack != 0 {
						s.wrong = "welcome " + w.Player + " " + w.Room + " " + w.Node
					}
					return nil
				},
				Tick: func(tk *client.Tick) error {
					full, err := tk.Decode()
					s.mu.Lock()
					defer s.mu.Unlock()
					switch {
					case err != nil:
						s.wrong = err.Error()
					case tk.Kind != 0 || full.Room != room || full.Owner != nodeName || full.Epoch != 1:
						s.wrong = string(tk.Data)
					case tk.Fresh:
						s.fresh++
						s.players = s.players[:0]
						for _, p := range full.Players {
							s.players = append(s.players, p.ID)
						}
					}
					return nil
				},
				Closed: func(d client.Disconnect) {
					if !d.Welcomed.IsZero() {
						closes <- d.Code
					}
				},
			})
		}()
	}

	// A raw socket in room-b: every frame after the welcome is a tick of room-b.
	raw, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	hello, _ := protocol.Encode(&protocol.Hello{Protocol: 1, Name: "raw", Room: "room-b"})
	if err := raw.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 10 {
		_, data, err := raw.ReadMessage()
		if err != nil {
			t.Fatalf("raw socket, frame %d: %v", i, err)
		}
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			t.Fatalf("raw socket, frame %d: %v: %s", i, err, data)
		}
		switch m := msg.(type) {
		case *protocol.Welcome:
			if i != 0 {
				t.Fatalf("a welcome as frame %d", i)
			}
		case *protocol.Tick:
			if i == 0 || m.Room != "room-b" {
				t.Fatalf("frame %d: %s", i, data)
			}
		default:
			t.Fatalf("frame %d: %s", i, data)
		}
	}

	// Room a: its two players and the extra one; room b: its client, the raw socket and the extra one.
	want := []int{3, 3, 3}
	deadline := time.Now().Add(10 * time.Second)
	for i, s := range seens {
		for {
			fresh, players, wrong := s.get()
			if wrong != "" {
				t.Fatalf("client %d (%s): %s", i, rooms[i], wrong)
			}
			if fresh >= 10 && len(players) == want[i] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("client %d (%s): %d fresh ticks, last with players %v", i, rooms[i], fresh, players)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	a0, a1, b := seens[0], seens[1], seens[2]
	_, pa, _ := a0.get()
	for _, id := range []string{a0.player, a1.player} {
		if !slices.Contains(pa, id) {
			t.Errorf("room-a's tick %v does not list %s", pa, id)
		}
	}
	_, pb, _ := b.get()
	if !slices.Contains(pb, b.player) || slices.Contains(pb, a0.player) || slices.Contains(pb, a1.player) {
		t.Errorf("room-b's tick %v: want %s and none of room-a's", pb, b.player)
	}

	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: a goroutine of the server is still running")
	}
	for range rooms {
		select {
		case code := <-closes:
			if code != protocol.CloseDraining {
				t.Errorf("a client's connection ended with %d, want %d", code, protocol.CloseDraining)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a client's connection did not end after Close")
		}
	}
	// Ticks sent before Close may still be buffered ahead of the close frame.
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := raw.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, protocol.CloseDraining) {
				t.Errorf("the raw socket ended with %v, want close %d", err, protocol.CloseDraining)
			}
			break
		}
	}
	if _, _, err := websocket.DefaultDialer.Dial(url, nil); err == nil {
		t.Error("a dial after Close succeeded")
	}
	cancel()
	wg.Wait()
}

// start starts a server with cfg on a free loopback port; it returns the server and its /ws URL.
func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Start(context.Background(), cfg, ln)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return srv, "ws://" + srv.Addr().String() + "/ws"
}

// TestLimits: a socket beyond MaxSockets is refused before the upgrade, a room beyond MaxRooms after the hello.
func TestLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSockets, cfg.MaxRooms = 2, 1
	srv, url := start(t, cfg)
	defer srv.Close()
	dial := func(room string) (*websocket.Conn, error) {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return nil, err
		}
		hello, _ := protocol.Encode(&protocol.Hello{Protocol: 1, Name: "x", Room: room})
		if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
			return nil, err
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		if m, _ := protocol.DecodeServer(data); m != nil {
			if e, ok := m.(*protocol.Error); ok {
				_, _, err := ws.ReadMessage()
				ws.Close()
				return nil, errors.Join(errors.New(e.Code), err)
			}
		}
		return ws, nil
	}
	first, err := dial("one")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = dial("two")
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != protocol.CloseOverloaded {
		t.Fatalf("a second room: %v, want close %d", err, protocol.CloseOverloaded)
	}
	// The refused socket's handler counts until it has returned.
	var second *websocket.Conn
	if !testingutil.Eventually(5*time.Second, 20*time.Millisecond, func() bool {
		second, err = dial("one")
		return err == nil
	}) {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := dial("one"); !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("a third socket: %v, want a refused handshake", err)
	}
}
