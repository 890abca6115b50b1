package room_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// A rolling upgrade, a node from before protocol 2 relaying a new owner's room: it subscribes to the room's tick
// subject and forwards what comes as protocol 1 JSON. The owner publishes JSON there while something listens,
// the same ticks its frames carry, and stops when nothing does.
func TestAnOldRelayGetsJSONTicksWhileItListens(t *testing.T) {
	c := nodetest.StartCluster(t, 2)
	name, _ := owner(t, c, 0)
	watcher := other(c, name)
	rec := recordRoom(t, c, watcher, room.Lobby)
	publish(t, c, watcher, sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	publish(t, c, watcher, sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 2, Keys: 8})
	testingutil.WaitFor(t, 10*time.Second, "alice moving", func() bool {
		p, ok := player(rec.lastTick(), "pa")
		return ok && p.Ack == 2
	})
	jsonTicks := func() int { return c.Metric(name, `tickmesh_room_json_ticks_total{room="lobby"}`) }
	if n := jsonTicks(); n != 0 {
		t.Fatalf("%d JSON ticks published while nothing listened", n)
	}

	// The old relay: a subscriber on the watcher's node, as such a node's relay subscribes.
	nc := c.Member(watcher).Node.Mesh().Conn()
	var mu sync.Mutex
	var got []*protocol.Tick
	sub, err := nc.Subscribe(wire.TickSubject(room.Lobby), func(m *nats.Msg) {
		msg, err := protocol.DecodeServer(m.Data)
		if err != nil {
			t.Errorf("not a protocol 1 tick: %v: %q", err, m.Data)
			return
		}
		tk := msg.(*protocol.Tick)
		if e, s, err := wire.ParseTickHeader(m.Header); err != nil || e != tk.Epoch || s != tk.Seq {
			t.Errorf("headers %v for tick %d/%d", m.Header, tk.Epoch, tk.Seq)
		}
		mu.Lock()
		got = append(got, tk)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 10*time.Second, "JSON ticks for the old relay", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 10
	})
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	// The same ticks as the frames: the relay's decoded state, tick for tick.
	rec.mu.Lock()
	byPos := map[uint64]protocol.Tick{}
	rec.mu.Unlock()
	stop, err := c.Member(watcher).Node.Rooms().Relay().Listen(room.Lobby, func(_ string, tk *room.Tick) {
		dec, _ := tk.Decode()
		rec.mu.Lock()
		byPos[dec.Seq] = *dec
		rec.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	// Listen again while the owner publishes JSON, to compare ticks both ways.
	var again []*protocol.Tick
	sub, err = nc.Subscribe(wire.TickSubject(room.Lobby), func(m *nats.Msg) {
		if msg, err := protocol.DecodeServer(m.Data); err == nil {
			mu.Lock()
			again = append(again, msg.(*protocol.Tick))
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 10*time.Second, "ticks both ways", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(again) >= 10
	})
	_ = sub.Unsubscribe()
	stop()
	compared := 0
	mu.Lock()
	rec.mu.Lock()
	for _, tk := range again {
		if f, ok := byPos[tk.Seq]; ok {
			a, _ := protocol.Encode(tk)
			b, _ := protocol.Encode(&f)
			if string(a) != string(b) {
				t.Fatalf("tick %d as JSON:\n%s\nfrom the frames:\n%s", tk.Seq, a, b)
			}
			compared++
		}
	}
	rec.mu.Unlock()
	mu.Unlock()
	if compared < 5 {
		t.Fatalf("only %d ticks compared", compared)
	}
	// Nothing listens any more: the owner stops (interest leaves the cluster within a few ticks).
	time.Sleep(500 * time.Millisecond)
	n := jsonTicks()
	time.Sleep(time.Second)
	if m := jsonTicks(); m != n {
		t.Fatalf("%d JSON ticks published after the last listener left", m-n)
	}
}

// A rolling upgrade, the other way: a room owned by a node from before protocol 2, which publishes JSON ticks
// only. A new node's relay hears no frames, follows the JSON ticks, and serves them to protocol 1 sockets as
// they are and to protocol 2 sockets as keyframes and deltas it encodes itself.
func TestANewRelayServesProtocol2FromAnOldOwnersJSONTicks(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	owner(t, c, 0)
	const r = "old-room"
	n := c.Member("n1").Node
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		oldOwner(ctx, t, n.Mesh().Conn(), n.Mesh().JetStream(), r)
	}()
	// Once the old owner holds the lease, sockets of both protocols join its room on the new node.
	kv, err := n.Mesh().JetStream().KeyValue(ctx, wire.OwnersBucket)
	if err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 10*time.Second, "the old owner's lease", func() bool {
		e, err := kv.Get(ctx, r)
		return err == nil && strings.Contains(string(e.Value()), `"old"`)
	})
	sock := recordSocket(t, c, "n1", r)
	ws := dialJSON(t, c, "n1", r)
	testingutil.WaitFor(t, 15*time.Second, "protocol 2 ticks from the old owner", func() bool {
		return len(sock.received()) >= 30
	})
	ticks := sock.received()
	for i, tk := range ticks {
		if tk.Owner != "old" || tk.Room != r || len(tk.Players) != 1 {
			t.Fatalf("tick %d: %+v", i, tk)
		}
	}
	sock.checkMonotonic(t)
	sock.mu.Lock()
	keys := sock.keyframes
	sock.mu.Unlock()
	if keys != 1 {
		t.Fatalf("%d keyframes in %d ticks: want the first only, deltas after it", keys, len(ticks))
	}
	// The bot moves: the deltas the relay made carry it.
	moves := 0
	for i := 1; i < len(ticks); i++ {
		if ticks[i].Players[0].Fields[0] != ticks[i-1].Players[0].Fields[0] {
			moves++
		}
	}
	if moves < len(ticks)/2 {
		t.Fatalf("x changed in %d of %d ticks", moves, len(ticks))
	}
	// The protocol 1 socket gets the old owner's JSON as it was published.
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for seen := 0; seen < 5; {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if mt != websocket.TextMessage {
			t.Fatalf("a protocol 1 socket got a frame of type %d", mt)
		}
		if strings.HasPrefix(string(data), `{"type":"tick"`) {
			if !strings.Contains(string(data), `"owner":"old"`) {
				t.Fatalf("tick %s", data)
			}
			seen++
		}
	}

	// The old node goes (its lease with it): the new node takes the room over from the last tick it relayed,
	// made from JSON, and goes on in frames; the socket gets the new epoch's keyframe and deltas again.
	cancel()
	wg.Wait()
	if err := kv.Delete(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 15*time.Second, "the new owner's ticks", func() bool {
		tk := sock.lastTick()
		return tk.Owner == "n1" && tk.Epoch > 7
	})
	sock.checkMonotonic(t)
	after := sock.lastTick()
	p, ok := player(after, "pb")
	if !ok || p.Name != "bot" {
		t.Fatalf("the old owner's player is not in the new owner's room: %+v", after)
	}
	sock.mu.Lock()
	defer sock.mu.Unlock()
	if sock.keyframes != 2 {
		t.Fatalf("%d keyframes: want the first, and the new owner's", sock.keyframes)
	}
}

// dialJSON joins room r on node name as a protocol 1 browser.
func dialJSON(t *testing.T, c *nodetest.Cluster, name, r string) *websocket.Conn {
	t.Helper()
	url := strings.Replace(c.Member(name).Node.URL(), "http://", "ws://", 1) + "/ws"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	hello, _ := protocol.Encode(&protocol.Hello{Protocol: protocol.Version, Name: "json", Room: r})
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	return ws
}

// oldOwner plays a node from before protocol 2 owning room r: it holds the room's lease (renewing it so that
// nobody takes it over) and publishes a tick of an arena with one bot walking left and right every 50 ms, as JSON on the
// room's tick subject, the way such a node encoded them, until ctx ends.
func oldOwner(ctx context.Context, t *testing.T, nc *nats.Conn, js jetstream.JetStream, r string) {
	kv, err := js.KeyValue(ctx, wire.OwnersBucket)
	if err != nil {
		t.Error(err)
		return
	}
	const epoch = 7
	val, _ := json.Marshal(lease.Value{Node: "old", Epoch: epoch, Since: time.Now().UnixMilli()})
	rev, err := kv.Create(ctx, r, val)
	if err != nil {
		t.Errorf("the old owner's lease: %v", err)
		return
	}
	g, err := arena.New(arena.DefaultConfig())
	if err != nil {
		t.Error(err)
		return
	}
	info := g.Info()
	schema := compact.SchemaOf(info.Name, &info.Schema)
	rm := sim.New(g, sim.DefaultConfig(), sim.Seed(r))
	for _, ev := range []sim.Event{{Kind: sim.KindJoin, Player: "pb", Name: "bot", Seq: 1}, {Kind: sim.KindInput, Player: "pb", Seq: 2, Keys: 8}} {
		if _, err := rm.Apply(ev); err != nil {
			t.Error(err)
			return
		}
	}
	enc := compact.NewEncoder()
	var v game.View
	var tk protocol.Tick
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if i%20 == 0 {
			if _, err := rm.Apply(sim.Event{Kind: sim.KindInput, Player: "pb", Seq: uint64(3 + i), Keys: uint8(4 << (i / 20 % 2))}); err != nil {
				t.Error(err)
				return
			}
		}
		rm.Step()
		rm.View(&v)
		var roster []compact.Roster
		for _, p := range rm.Players() {
			roster = append(roster, compact.Roster{ID: p.ID, Name: p.Name, Ack: p.Ack, Conn: p.Conn, Online: p.Online})
		}
		now := time.Now()
		if err := enc.Fill(compact.Header{Room: r, Owner: "old", Epoch: epoch, Seq: uint64(rm.Tick()), Time: now.UnixMilli()}, schema, roster, &v); err != nil {
			t.Error(err)
			return
		}
		enc.Current().Tick(&tk)
		data, err := protocol.Encode(&tk)
		if err != nil {
			t.Error(err)
			return
		}
		m := wire.TickMsg(r, epoch, tk.Seq, data)
		wire.StampTickTime(m, now)
		if err := nc.PublishMsg(m); err != nil {
			t.Error(err)
			return
		}
		if i%4 == 0 {
			if rev, err = kv.Update(ctx, r, val, rev); err != nil && ctx.Err() == nil {
				t.Errorf("renew the old owner's lease: %v", err)
				return
			}
		}
	}
}
