package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/client"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// run runs c until it returns, in a goroutine the test waits for, and returns a channel with Run's result.
func run(t *testing.T, ctx context.Context, c *client.Client, h client.Handler) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { done <- c.Run(ctx, h) })
	t.Cleanup(wg.Wait)
	return done
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s")
		return nil
	}
}

// TestClientPlaysResumesAndStops runs a client against a real node: welcomed, fresh ticks, an input applied,
// a connection given up by the handler and resumed as the same player with a higher join seq, and a clean stop;
// in protocol 1, protocol 2 (the default), and protocol 2 read lightly (position and own ack only).
func TestClientPlaysResumesAndStops(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	for _, cfg := range []client.Config{{Protocol: 1}, {}, {Light: true}} {
		t.Run(fmt.Sprintf("protocol %d light %v", cfg.Protocol, cfg.Light), func(t *testing.T) { testClientPlays(t, c, cfg) })
	}
}

func testClientPlays(t *testing.T, c *nodetest.Cluster, cfg client.Config) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg.URLs, cfg.Name = []string{c.Member("n1").Node.URL()}, "alice"
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		players []string
		hellos  []uint64
		closes  []client.Disconnect
		sent    client.Sent
		applied bool
	)
	done := run(t, ctx, cl, client.Handler{
		Hello: func(conn client.Conn) {
			mu.Lock()
			defer mu.Unlock()
			hellos = append(hellos, conn.HelloSeq)
		},
		Welcome: func(conn client.Conn, w *protocol.Welcome) error {
			mu.Lock()
			defer mu.Unlock()
			players = append(players, w.Player)
			return nil
		},
		Tick: func(tk *client.Tick) error {
			mu.Lock()
			defer mu.Unlock()
			if !tk.Fresh || tk.Room != "lobby" || tk.Epoch == 0 {
				return nil
			}
			if want := byte(0); cfg.Protocol != 1 && tk.Kind == want || cfg.Protocol == 1 && tk.Kind != want {
				return fmt.Errorf("test: a tick of kind %#x", tk.Kind)
			}
			if full, err := tk.Decode(); cfg.Light != (err != nil) || err == nil && (full.Seq != tk.Seq || full.Epoch != tk.Epoch) {
				return fmt.Errorf("test: Decode = %v, %v", full, err)
			}
			switch {
			case sent.Seq == 0:
				s, err := cl.Input(protocol.Keys{Right: true})
				if err != nil {
					return err
				}
				sent = s
			case !applied:
				if ack, ok := tk.Ack(cl.Player()); ok && ack >= sent.Seq {
					applied = true
					return errors.New("test: reconnect")
				}
			case len(players) == 2:
				cancel()
			}
			return nil
		},
		Closed: func(d client.Disconnect) {
			mu.Lock()
			defer mu.Unlock()
			closes = append(closes, d)
		},
	})
	if err := result(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !applied || len(players) != 2 || players[0] != players[1] || players[0] == "" {
		t.Fatalf("applied %v, players %v: want the input applied and one player over two connections", applied, players)
	}
	if len(hellos) != 2 || hellos[0] != 1 || hellos[1] <= sent.Seq || sent.Seq <= hellos[0] {
		t.Fatalf("hello seqs %v, input seq %d: every seq above the one before", hellos, sent.Seq)
	}
	if len(closes) != 2 || !closes[0].Abandoned || closes[0].Reason != "test: reconnect" || closes[0].Stage != client.StagePlay ||
		closes[1].Reason != "client stopped" || closes[1].Conn.N != 2 {
		t.Fatalf("closes %+v", closes)
	}
	if st := cl.State(); st.Resume == "" || st.Seq != hellos[1] {
		t.Fatalf("state %+v after hellos %v", st, hellos)
	}
	if _, err := cl.Input(protocol.Keys{}); !errors.Is(err, client.ErrNotWelcomed) {
		t.Fatalf("input after Run: %v", err)
	}
}

// TestRefusedTokenStartsOverOnceAndTakeOverIsFinal: a token the cluster does not know closes with 4501, after
// which the client joins as a new player; a second connection of that player takes the session over, and the
// first client's Run ends with the final 4503.
func TestRefusedTokenStartsOverOnceAndTakeOverIsFinal(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	url := c.Member("n1").Node.URL()
	store := &client.MemoryStore{}
	_ = store.Save("lobby", client.State{Resume: "not-a-token", Seq: 5})
	first, err := client.New(client.Config{URLs: []string{url}, Name: "bob", Store: store,
		Backoff: client.Backoff{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	welcomed := make(chan string, 4)
	var codes []int
	var mu sync.Mutex
	done := run(t, t.Context(), first, client.Handler{
		Welcome: func(_ client.Conn, w *protocol.Welcome) error { welcomed <- w.Player; return nil },
		Closed: func(d client.Disconnect) {
			mu.Lock()
			defer mu.Unlock()
			codes = append(codes, d.Code)
		},
	})
	var player string
	select {
	case player = <-welcomed:
	case <-time.After(30 * time.Second):
		t.Fatal("no welcome after the refused token")
	}
	if st, _ := store.Load("lobby"); st.Resume == "not-a-token" || st.Resume == "" {
		t.Fatalf("the refused token is still stored: %+v", st)
	}
	// The same player (same store) connects again elsewhere: the newer connection wins.
	second, err := client.New(client.Config{URLs: []string{url}, Name: "bob", Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, stop2 := context.WithCancel(t.Context())
	defer stop2()
	done2 := run(t, ctx2, second, client.Handler{
		Welcome: func(_ client.Conn, w *protocol.Welcome) error { welcomed <- w.Player; return nil },
	})
	var ce *client.CloseError
	if err := result(t, done); !errors.As(err, &ce) || ce.Code != protocol.CloseTakenOver {
		t.Fatalf("first Run = %v, want a CloseError with %d", err, protocol.CloseTakenOver)
	}
	if p := <-welcomed; p != player {
		t.Fatalf("second connection welcomed as %s, want %s", p, player)
	}
	mu.Lock()
	if len(codes) != 2 || codes[0] != protocol.CloseBadResume || codes[1] != protocol.CloseTakenOver {
		t.Errorf("close codes %v, want 4501 then 4503", codes)
	}
	mu.Unlock()
	stop2()
	if err := result(t, done2); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Run = %v", err)
	}
}

// TestOnceReturnsAfterTheFirstConnection: a load generator's client does not reconnect.
func TestOnceReturnsAfterTheFirstConnection(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	cl, err := client.New(client.Config{URLs: []string{c.Member("n1").Node.URL()}, Once: true, Watchdog: -1})
	if err != nil {
		t.Fatal(err)
	}
	dials := 0
	done := run(t, t.Context(), cl, client.Handler{
		Dialing: func(client.Conn) { dials++ },
		Welcome: func(client.Conn, *protocol.Welcome) error { return errors.New("enough") },
	})
	if err := result(t, done); err != nil || dials != 1 {
		t.Fatalf("Run = %v after %d dials; want nil after one", err, dials)
	}
}

func TestNewRefusesWhatCannotWork(t *testing.T) {
	for _, cfg := range []client.Config{
		{},
		{URLs: []string{"ftp://x"}},
		{URLs: []string{"ws://x/ws"}, Room: "Not A Room"},
		{URLs: []string{"ws://x/ws"}, Protocol: 9},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestStaleJoinReconnectsAboveTheAck: a player whose counter was rolled back (a restored backup, say) says hello
// with a seq the server has passed; the welcome's ack shows it, and the client reconnects with a join above it.
func TestStaleJoinReconnectsAboveTheAck(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	url := c.Member("n1").Node.URL()
	store := &client.MemoryStore{}
	first, err := client.New(client.Config{URLs: []string{url}, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	var last client.Sent
	done := run(t, ctx, first, client.Handler{Tick: func(tk *client.Tick) error {
		if ack, ok := tk.Ack(first.Player()); ok && last.Seq != 0 && ack >= last.Seq {
			stop()
			return nil
		}
		if last.Seq == 0 {
			for range 5 {
				s, err := first.Input(protocol.Keys{Up: true})
				if err != nil {
					return err
				}
				last = s
			}
		}
		return nil
	}})
	if err := result(t, done); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	st, _ := store.Load("lobby")
	_ = store.Save("lobby", client.State{Resume: st.Resume, Seq: 1}) // rolled back
	second, err := client.New(client.Config{URLs: []string{url}, Store: store,
		Backoff: client.Backoff{Base: 10 * time.Millisecond, Cap: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, stop2 := context.WithCancel(t.Context())
	var closes []client.Disconnect
	var hellos []uint64
	done = run(t, ctx2, second, client.Handler{
		Hello: func(conn client.Conn) { hellos = append(hellos, conn.HelloSeq) },
		Welcome: func(conn client.Conn, w *protocol.Welcome) error {
			if w.Ack < conn.HelloSeq {
				stop2()
			}
			return nil
		},
		Closed: func(d client.Disconnect) { closes = append(closes, d) },
	})
	if err := result(t, done); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if len(hellos) != 2 || hellos[0] != 2 || hellos[1] <= last.Seq || closes[0].Reason != "stale join" {
		t.Fatalf("hellos %v (inputs up to %d), first close %+v", hellos, last.Seq, closes[0])
	}
}

// TestUnacknowledgedInputIsResent: inputs beyond the connection's rate limit are dropped (rate_limited); the
// latest of them is sent again after ResendAfter until a tick acknowledges it.
func TestUnacknowledgedInputIsResent(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	cl, err := client.New(client.Config{URLs: []string{c.Member("n1").Node.URL()}, ResendAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var last client.Sent
	limited := 0
	done := run(t, ctx, cl, client.Handler{
		Tick: func(tk *client.Tick) error {
			if last.Seq == 0 {
				// A few beyond the burst the node allows (protocol.DefaultBurst): the latest inputs are dropped, and
				// not so many that the node counts too many errors (it closes after 20 in 10 s).
				for i := range protocol.DefaultBurst + 5 {
					s, err := cl.Input(protocol.KeysFromMask(uint8(i % 16)))
					if err != nil {
						return err
					}
					last = s
				}
				return nil
			}
			if ack, ok := tk.Ack(cl.Player()); ok && ack >= last.Seq {
				stop()
			}
			return nil
		},
		Message: func(_ client.Conn, msg any) {
			if e, ok := msg.(*protocol.Error); ok && e.Code == protocol.CodeRateLimited {
				limited++
			}
		},
	})
	if err := result(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v (the latest input, seq %d, was never acknowledged)", err, last.Seq)
	}
	if limited == 0 {
		t.Fatal("no input was rate limited: the test did not test the resend")
	}
}

// TestAGamesOwnInputIsApplied: a player of a collect room sends the game's payload (a target point) as
// input.data; the welcome names the game, and a tick acknowledges the input.
func TestAGamesOwnInputIsApplied(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	cl, err := client.New(client.Config{URLs: []string{c.Member("n1").Node.URL()}, Room: "collect-client"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var game string
	var sent client.Sent
	done := run(t, ctx, cl, client.Handler{
		Welcome: func(_ client.Conn, w *protocol.Welcome) error {
			game = w.Game
			return nil
		},
		Tick: func(tk *client.Tick) error {
			if sent.Seq == 0 {
				s, err := cl.InputData(json.RawMessage(`{"x":500,"y":500}`))
				if err != nil {
					return err
				}
				sent = s
			} else if ack, ok := tk.Ack(cl.Player()); ok && ack >= sent.Seq {
				stop()
			}
			return nil
		},
	})
	if err := result(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v (the input, seq %d, was never acknowledged)", err, sent.Seq)
	}
	if game != "collect" {
		t.Fatalf("welcome names game %q, want collect", game)
	}
}

// oldNode is a node from before protocol 2, for the client's fallback: it answers a hello of any other
// protocol with bad_protocol and close 4500, and welcomes protocol 1 with JSON ticks of an empty lobby.
func oldNode(t *testing.T, hellos *[]int, mu *sync.Mutex) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		msg, err := protocol.DecodeClient(data)
		h, ok := msg.(*protocol.Hello)
		mu.Lock()
		if ok {
			*hellos = append(*hellos, h.Protocol)
		}
		mu.Unlock()
		if err != nil || h.Protocol != protocol.Version {
			e, _ := protocol.Encode(&protocol.Error{Code: protocol.CodeBadProtocol, Message: "this server speaks protocol 1"})
			_ = ws.WriteMessage(websocket.TextMessage, e)
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(protocol.CloseBadProtocol, "protocol version mismatch"))
			return
		}
		wel, _ := protocol.Encode(&protocol.Welcome{Protocol: protocol.Version, Player: "p0000000000000001", Resume: "tok", Room: "lobby", Node: "old"})
		_ = ws.WriteMessage(websocket.TextMessage, wel)
		for seq := uint64(1); seq <= 50; seq++ {
			tk, _ := protocol.Encode(&protocol.Tick{Room: "lobby", Epoch: 1, Seq: seq, Owner: "old", Time: 1})
			if ws.WriteMessage(websocket.TextMessage, tk) != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A node that does not speak protocol 2 answers the default hello with 4500: the client says hello in protocol 1
// on its next connection, at once, and plays.
func TestAClientFallsBackToProtocol1WhenANodeRefuses2(t *testing.T) {
	var mu sync.Mutex
	var hellos []int
	url := oldNode(t, &hellos, &mu)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cl, err := client.New(client.Config{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	var ticks int
	var closes []client.Disconnect
	start := time.Now()
	done := run(t, ctx, cl, client.Handler{
		Tick: func(tk *client.Tick) error {
			if ticks++; ticks == 3 {
				cancel()
			}
			return nil
		},
		Closed: func(d client.Disconnect) { closes = append(closes, d) },
	})
	if err := result(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(hellos) != "[2 1]" || ticks < 3 {
		t.Fatalf("hellos of protocols %v, %d ticks", hellos, ticks)
	}
	if closes[0].Code != protocol.CloseBadProtocol || !closes[0].Welcomed.IsZero() {
		t.Fatalf("first connection %+v", closes[0])
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%v to play: the fallback waited", d)
	}
}
