package room_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// recorder keeps every tick position a node's relay accepted, and the last tick.
type recorder struct {
	mu    sync.Mutex
	node  string
	pos   []fence.Position
	last  protocol.Tick
	times []time.Time
	// applied is, for a relay's recorder, each accepted tick's Tm-Applied header (parsed), by position: what a
	// socket's tick of the same position leaves out (see socketRecorder.appliedTicks).
	applied map[fence.Position]map[string]uint64
}

func record(t *testing.T, c *nodetest.Cluster, name string) *recorder {
	t.Helper()
	return recordRoom(t, c, name, room.Lobby)
}

// recordRoom records the ticks of room r that node name's relay accepts.
func recordRoom(t *testing.T, c *nodetest.Cluster, name, r string) *recorder {
	t.Helper()
	rec := &recorder{node: name, applied: map[fence.Position]map[string]uint64{}}
	stop, err := c.Member(name).Node.Rooms().Relay().Listen(r, func(_ string, tk *room.Tick) {
		dec, err := appliedView(tk)
		if err != nil {
			return
		}
		applied, _ := wire.ParseApplied(tk.Applied()) // appliedView parsed it
		rec.mu.Lock()
		rec.applied[tk.Pos] = applied
		rec.pos = append(rec.pos, tk.Pos)
		rec.times = append(rec.times, time.Now())
		rec.last = dec
		rec.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return rec
}

// appliedView is the state a tick describes, as a node restoring from it sees it: the body, with the acks of the
// players its Tm-Applied header lists raised to their applied ones (the body shows the acks that are applied and
// stored in INPUTS; the header says what else the state holds).
func appliedView(tk *room.Tick) (protocol.Tick, error) {
	dec, err := tk.Decode()
	if err != nil {
		return protocol.Tick{}, err
	}
	applied, err := wire.ParseApplied(tk.Applied())
	if err != nil {
		return protocol.Tick{}, err
	}
	return withApplied(*dec, applied), nil
}

// withApplied is tk with the acks of the players applied lists raised to their applied ones.
func withApplied(tk protocol.Tick, applied map[string]uint64) protocol.Tick {
	out := tk
	out.Players = slices.Clone(tk.Players)
	for i, p := range out.Players {
		if a, ok := applied[p.ID]; ok && a > p.Ack {
			out.Players[i].Ack = a
		}
	}
	return out
}

func (r *recorder) lastTick() protocol.Tick {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// checkMonotonic fails if the accepted positions ever went back.
func (r *recorder) checkMonotonic(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i < len(r.pos); i++ {
		a, b := r.pos[i-1], r.pos[i]
		if b.Epoch < a.Epoch || (b.Epoch == a.Epoch && b.Seq <= a.Seq) {
			t.Fatalf("%s accepted %+v after %+v", r.node, b, a)
		}
	}
}

// maxGap is the longest time between accepted ticks after since.
func (r *recorder) maxGap(since time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gap time.Duration
	prev := since
	for _, tm := range r.times {
		if tm.Before(since) {
			continue
		}
		gap = max(gap, tm.Sub(prev))
		prev = tm
	}
	return max(gap, time.Since(prev))
}

// owner waits until every running node agrees on the lobby's owner and that node runs it.
func owner(t *testing.T, c *nodetest.Cluster, above uint64) (string, uint64) {
	t.Helper()
	return c.AgreedOwner(room.Lobby, above, 30*time.Second)
}

func publish(t *testing.T, c *nodetest.Cluster, via string, ev sim.Event) {
	t.Helper()
	publishIn(t, c.Member(via).Node, room.Lobby, ev)
}

// publishIn publishes ev to room r through node n until the stream acknowledges it.
func publishIn(t *testing.T, n *node.Node, r string, ev sim.Event) {
	t.Helper()
	// A fresh cluster under -race on two cores may still be electing the INPUTS leader, or a new owner may be
	// moving it off its node: a publish sent while there is none gets no answer, so each attempt has its own
	// short deadline (events are idempotent).
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := nodetest.PublishEvent(ctx, n, r, ev)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %+v to %s: %v", ev, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func player(tk protocol.Tick, id string) (protocol.TickPlayer, bool) {
	for _, p := range tk.Players {
		if p.ID == id {
			return p, true
		}
	}
	return protocol.TickPlayer{}, false
}

func other(c *nodetest.Cluster, not ...string) string {
	for _, m := range c.Members() {
		skip := false
		for _, n := range not {
			skip = skip || m.Name == n
		}
		if !skip {
			return m.Name
		}
	}
	return ""
}

func TestExactlyOneOwnerTicksTheLobbyOnEveryNode(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := owner(t, c, 0)
	var recs []*recorder
	for _, m := range c.Members() {
		recs = append(recs, record(t, c, m.Name))
	}
	for _, r := range recs {
		testingutil.WaitFor(t, 10*time.Second, r.node+" relays lobby ticks", func() bool {
			tk := r.lastTick()
			return tk.Epoch == epoch && tk.Owner == name && tk.Seq > 5
		})
		r.checkMonotonic(t)
	}
}

// gameRoom is the parameter of the failover tests: a room of one game, and two inputs of that game for a
// player (the first sets the player going, the second changes what it does).
type gameRoom struct {
	game          string
	room          string
	first, second sim.Event // input events of player "pa" with seq 2 and 3, as a gateway publishes them
}

// gameRooms has a room of every game a node runs by default (sim.DefaultGameRules).
var gameRooms = []gameRoom{
	{game: "arena", room: room.Lobby,
		first:  sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 2, Keys: 8}, // right
		second: sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 3}},         // no keys
	{game: "collect", room: "collect-failover",
		first:  sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 2, Data: json.RawMessage(`{"x":1000,"y":500}`)},
		second: sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 3, Data: json.RawMessage(`{"x":0,"y":0}`)}},
}

// forEachGame runs test once per game, each with a fresh cluster.
func forEachGame(t *testing.T, test func(t *testing.T, g gameRoom)) {
	for _, g := range gameRooms {
		t.Run(g.game, func(t *testing.T) { test(t, g) })
	}
}

// open makes every node serve g's room (the lobby always is) and returns its agreed owner.
func (g gameRoom) open(t *testing.T, c *nodetest.Cluster, above uint64) (string, uint64) {
	t.Helper()
	if g.room != room.Lobby {
		for _, m := range c.Members() {
			t.Cleanup(m.Node.Rooms().Want(g.room))
		}
	}
	return c.AgreedOwner(g.room, above, 30*time.Second)
}

// roomOf rebuilds the room a tick of g's room shows, as a new owner restoring from it does.
func roomOf(t *testing.T, c *nodetest.Cluster, tk protocol.Tick) *sim.Room {
	t.Helper()
	gm, _ := c.Member(c.Members()[0].Name).Node.Rooms().Game(tk.Room)
	info := gm.Info()
	v, err := tk.View(&info.Schema)
	if err != nil {
		t.Fatalf("tick %d of %s: %v", tk.Seq, tk.Room, err)
	}
	var players []sim.Player
	for _, p := range tk.Players {
		sp := sim.Player{ID: p.ID, Name: p.Name, Ack: p.Ack, Conn: p.Conn, Online: p.Online}
		if !p.Online {
			sp.AwaySince = int64(p.Away)
		}
		players = append(players, sp)
	}
	cfg := sim.DefaultConfig()
	r, err := sim.Restore(gm, cfg, sim.Seed(tk.Room), int64(tk.Seq), players, nil, v)
	if err != nil {
		t.Fatalf("tick %d of %s: %v", tk.Seq, tk.Room, err)
	}
	return r
}

// sameRoom reports whether room r shows what tick tk shows: the roster's members and the game's View.
func sameRoom(t *testing.T, c *nodetest.Cluster, r *sim.Room, tk protocol.Tick) bool {
	t.Helper()
	other := roomOf(t, c, tk)
	var a, b game.View
	r.View(&a)
	other.View(&b)
	if r.Tick() != other.Tick() || !a.Equal(&b) || len(r.Players()) != len(other.Players()) {
		return false
	}
	for i, p := range r.Players() {
		if p != other.Players()[i] {
			return false
		}
	}
	return true
}

// continues reports whether tick after is where the room of tick before goes, ticking on, with ev applied
// once at some tick in between (or, if before shows it applied, not again): the new owner carried on from where
// the old one was, and applied the event exactly once.
func continues(t *testing.T, c *nodetest.Cluster, before, after protocol.Tick, ev sim.Event) bool {
	t.Helper()
	n := int(after.Seq) - int(before.Seq)
	if n < 0 {
		return false
	}
	for j := 0; j <= n; j++ {
		r := roomOf(t, c, before)
		for k := 0; k < n; k++ {
			if k == j {
				if _, err := r.Apply(ev); err != nil {
					t.Fatal(err)
				}
			}
			r.Step()
		}
		if j == n {
			if _, err := r.Apply(ev); err != nil {
				t.Fatal(err)
			}
		}
		if sameRoom(t, c, r, after) {
			return true
		}
	}
	return false
}

func TestKilledOwnerIsReplacedWithHigherEpochAndPlayersInPlace(t *testing.T) {
	forEachGame(t, testKilledOwner)
}

func testKilledOwner(t *testing.T, g gameRoom) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := g.open(t, c, 0)
	watcher := other(c, name)
	// The watcher node's relay, and a protocol 2 socket on it, see the same failover.
	rec := recordRoom(t, c, watcher, g.room)
	sock := recordSocket(t, c, watcher, g.room)
	via := other(c, name, watcher)
	pub := func(ev sim.Event) { publishIn(t, c.Member(via).Node, g.room, ev) }

	pub(sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	pub(g.first)
	// Wait until her state changes from tick to tick: she is on the move.
	var prev protocol.Tick
	testingutil.WaitFor(t, 10*time.Second, "alice on the move", func() bool {
		tk := rec.lastTick()
		p, ok := player(tk, "pa")
		moving := ok && p.Ack == 2 && prev.Seq > 0 && tk.Seq > prev.Seq && !sameRoom(t, c, roomOf(t, c, prev), tk)
		prev = tk
		return moving
	})
	sock.hasPlayer(t, "pa")
	// An input acknowledged (PubAck) just before the owner dies must be applied exactly once afterwards.
	pub(g.second)
	befores := []protocol.Tick{rec.lastTick(), sock.appliedLast(t, rec)}
	c.Kill(name)

	newName, newEpoch := c.AgreedOwner(g.room, epoch, 30*time.Second)
	if newName == name {
		t.Fatalf("killed node %s still owner", name)
	}
	for i, r := range []*recorder{rec, sock.recorder} {
		testingutil.WaitFor(t, 10*time.Second, r.node+": ticks of the new epoch", func() bool { return r.lastTick().Epoch == newEpoch })
		before, after := befores[i], r.lastTick()
		if r == sock.recorder {
			after = sock.appliedLast(t, rec)
		}
		p, ok := player(after, "pa")
		if !ok {
			t.Fatalf("%s: alice lost in failover: %+v", r.node, after)
		}
		if p.Ack != 3 {
			t.Fatalf("%s: acknowledged input not applied: %+v", r.node, p)
		}
		if after.Seq <= before.Seq {
			t.Fatalf("%s: tick number went back: %d then %d", r.node, before.Seq, after.Seq)
		}
		// In place: the new owner's room is the old owner's, ticked on, with the last input applied once.
		if !continues(t, c, before, after, g.second) {
			t.Fatalf("%s: the new owner's room (tick %d) does not continue the old one's (tick %d):\n%+v\n%+v", r.node, after.Seq, before.Seq, before, after)
		}
		r.checkMonotonic(t)
	}
	sock.mu.Lock()
	defer sock.mu.Unlock()
	if sock.keyframes < 2 {
		t.Fatalf("the socket got %d keyframes: want its first, and the new epoch's", sock.keyframes)
	}
}

func TestGracefulStopHandsTheRoomOverWithoutLosingATick(t *testing.T) {
	forEachGame(t, testGracefulStop)
}

func testGracefulStop(t *testing.T, g gameRoom) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := g.open(t, c, 0)
	rec := recordRoom(t, c, other(c, name), g.room)
	var ticks []protocol.Tick // every tick the recorder's node accepts, decoded
	stop, err := c.Member(rec.node).Node.Rooms().Relay().Listen(g.room, func(_ string, tk *room.Tick) {
		if dec, err := appliedView(tk); err == nil {
			rec.mu.Lock()
			ticks = append(ticks, dec)
			rec.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sock := recordSocket(t, c, rec.node, g.room)
	via := other(c, name)
	publishIn(t, c.Member(via).Node, g.room, sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	publishIn(t, c.Member(via).Node, g.room, g.first)
	testingutil.WaitFor(t, 10*time.Second, "ticks with alice going", func() bool {
		p, ok := player(rec.lastTick(), "pa")
		return ok && p.Ack == 2
	})
	sock.hasPlayer(t, "pa")
	// The socket's own join may reach the owner only through the stream (its live copy is lost while the
	// cluster's interest is still spreading): when the old owner has not applied it yet, the new one applies it
	// at its first tick, and that tick is no longer the last one ticked once. The check below needs no event in
	// flight.
	sock.joined(t)
	c.Stop(name)
	_, newEpoch := c.AgreedOwner(g.room, epoch, 30*time.Second)
	testingutil.WaitFor(t, 10*time.Second, "ticks of the new epoch", func() bool { return rec.lastTick().Epoch == newEpoch })
	testingutil.WaitFor(t, 10*time.Second, "ticks of the new epoch on the socket", func() bool { return sock.lastTick().Epoch == newEpoch })
	rec.checkMonotonic(t)
	sock.checkMonotonic(t)
	// The old owner's final snapshot lets the new one continue at the very next tick number, from the very state
	// the last tick showed: on the relay, and on the protocol 2 socket (whose acks are the durable ones: with the
	// applied ones its relay's Tm-Applied names, its ticks must be the relay's).
	handoff(t, c, sock.node, sock.appliedTicks(t, rec), epoch, newEpoch)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	handoff(t, c, rec.node, ticks, epoch, newEpoch)
}

// handoff checks that ticks, as a node's relay or socket received them, show the room handed over from epoch to
// newEpoch at the very next tick number, from the very state the last tick of epoch showed.
func handoff(t *testing.T, c *nodetest.Cluster, who string, ticks []protocol.Tick, epoch, newEpoch uint64) {
	t.Helper()
	for i := 1; i < len(ticks); i++ {
		a, b := ticks[i-1], ticks[i]
		if b.Epoch == newEpoch && a.Epoch == epoch {
			if b.Seq != a.Seq+1 {
				t.Fatalf("%s: handoff skipped or repeated ticks: %d/%d then %d/%d", who, a.Epoch, a.Seq, b.Epoch, b.Seq)
			}
			r := roomOf(t, c, a)
			r.Step()
			if !sameRoom(t, c, r, b) {
				t.Fatalf("%s: the new owner's first tick is not the old owner's last one ticked once:\n%+v\n%+v", who, a, b)
			}
			return
		}
	}
	var seen []string
	for _, tk := range ticks {
		seen = append(seen, fmt.Sprintf("%d/%d", tk.Epoch, tk.Seq))
	}
	t.Fatalf("%s: no handoff from epoch %d to %d seen in %v", who, epoch, newEpoch, seen)
}

func TestFrozenOwnerPastItsLeaseIsFencedEverywhere(t *testing.T) {
	forEachGame(t, testFrozenOwner)
}

func testFrozenOwner(t *testing.T, g gameRoom) {
	c := nodetest.StartCluster(t, 3, func(cfg *node.Config) { cfg.Room.LeaseTTL = 2 * time.Second })
	name, epoch := g.open(t, c, 0)
	if g.room != room.Lobby { // a player keeps the room open
		publishIn(t, c.Member(other(c, name)).Node, g.room, sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	}
	var recs []*recorder
	for _, m := range c.Members() {
		recs = append(recs, recordRoom(t, c, m.Name, g.room), recordSocket(t, c, m.Name, g.room).recorder)
	}
	// Freeze the owner (loop and renewals) past its lease, with its deadline checks disabled: only fencing
	// stands between its stale ticks and the players.
	frozen := c.Member(name).Node.Rooms()
	frozen.InjectFault(g.room, room.Fault{Until: time.Now().Add(4 * time.Second), IgnoreDeadline: true})
	_, newEpoch := c.AgreedOwner(g.room, epoch, 30*time.Second)
	testingutil.WaitFor(t, 10*time.Second, "frozen owner stepped down", func() bool {
		_, still := frozen.Owned()[g.room]
		return !still
	})
	frozen.InjectFault(g.room, room.Fault{})
	time.Sleep(500 * time.Millisecond)
	// The thawed node opens a new session and may get the room back by a balance handoff (a later epoch): what
	// matters is that no relay accepted a tick of the frozen owner's epoch after the new owner's.
	for _, r := range recs {
		r.checkMonotonic(t)
		if tk := r.lastTick(); tk.Epoch < newEpoch {
			t.Fatalf("%s last tick epoch %d, want at least the new owner's %d", r.node, tk.Epoch, newEpoch)
		}
	}
}

func TestOwnersStreamLeaderLossDoesNotStopTicks(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := owner(t, c, 0)
	// The owner moves the leaders of the ownership streams off its node.
	var leader string
	testingutil.WaitFor(t, 20*time.Second, "owners stream leader off the owner", func() bool {
		l, _, err := c.Member(name).Node.Mesh().StreamLeader(context.Background(), wire.KVStream(wire.OwnersBucket))
		leader = l
		return err == nil && l != "" && l != name
	})
	survivor := other(c, name, leader)
	rec := record(t, c, survivor)
	testingutil.WaitFor(t, 10*time.Second, "ticks", func() bool { return rec.lastTick().Seq > 0 })
	killedAt := time.Now()
	c.Kill(leader)
	time.Sleep(12 * time.Second) // longer than NATS's 4-9 s election
	if n, e := c.Member(name).Node.Rooms().Owner(room.Lobby); n != name || e != epoch {
		t.Fatalf("owner changed to %s/%d while healthy", n, e)
	}
	if gap := rec.maxGap(killedAt); gap > 2*time.Second {
		t.Fatalf("ticks stopped for %v after the stream leader died", gap)
	}
	rec.checkMonotonic(t)
	// Inputs still get applied through the live path (the stream may still be electing).
	publishLive(t, c, name, survivor, rec)
}

// publishLive sends a join while the INPUTS stream may have no leader, and expects the owner to apply it.
func publishLive(t *testing.T, c *nodetest.Cluster, owner, via string, rec *recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := nodetest.PublishEvent(ctx, c.Member(via).Node, room.Lobby, sim.Event{Kind: sim.KindJoin, Player: "pz", Name: "zed", Seq: 1})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("publish during election: %v", err)
	}
	testingutil.WaitFor(t, 5*time.Second, "join applied", func() bool {
		_, ok := player(rec.lastTick(), "pz")
		return ok
	})
}

// joinRoom publishes the join of player "p-<room>" to room through n, again until JetStream acknowledges it
// (the room's stream may still be electing a leader), so that the room has a player and stays open.
func joinRoom(t *testing.T, n *node.Node, r string) {
	t.Helper()
	publishIn(t, n, r, sim.Event{Kind: sim.KindJoin, Player: "p-" + r, Name: r, Seq: 1})
}

func TestRoomsRunIndependentlyEachWithItsOwnLease(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	owner(t, c, 0)
	rooms := []string{"alpha", "beta", "gamma-2"}
	for _, m := range c.Members() {
		for _, r := range rooms {
			t.Cleanup(m.Node.Rooms().Want(r))
		}
	}
	n1 := c.Member("n1").Node
	for _, r := range rooms {
		joinRoom(t, n1, r)
	}
	// Every room gets an owner (any node, possibly the same one for several rooms) and ticks its own state.
	for _, r := range rooms {
		var got protocol.Tick
		stop, err := n1.Rooms().Relay().Listen(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		testingutil.WaitFor(t, 20*time.Second, r+" ticks with its player", func() bool {
			_, dec, _, ok := n1.Rooms().Relay().LastTick(r)
			if !ok {
				return false
			}
			got = *dec
			_, ok = player(got, "p-"+r)
			return ok && got.Room == r && len(got.Players) == 1
		})
		stop()
		if o, e := n1.Rooms().Owner(r); o == "" || e == 0 {
			t.Fatalf("room %s has no lease: %q %d", r, o, e)
		}
	}
	if got := len(n1.Rooms().Rooms()); got != len(rooms)+1 {
		t.Fatalf("/api/cluster would list %d rooms, want %d", got, len(rooms)+1)
	}
}

// With rooms on several nodes, the leaders of the ownership streams settle on a node that owns none, and stay.
// Before, each node that owned a room moved them off itself every 2 s, so they went round the owners for as long
// as the rooms lived, each move an election that stalled the streams' writers.
func TestStreamLeadersSettleOnANodeWithoutRoomsWhileRoomsSpreadOverTheOthers(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	owner(t, c, 0)
	n1 := c.Member("n1").Node
	openRooms(t, c, n1, "spread", 6)
	time.Sleep(5 * time.Second) // balance and placement settle

	streams := wire.PlacedStreams
	mesh := n1.Mesh()
	last := map[string]string{}
	changes := map[string]int{}
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		for _, s := range streams {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			l, _, err := mesh.StreamLeader(ctx, s)
			cancel()
			if err != nil || l == "" {
				continue // electing
			}
			if prev, ok := last[s]; ok && prev != l {
				changes[s]++
			}
			last[s] = l
		}
	}
	d := n1.Rooms().Distribution()
	for _, s := range streams {
		if changes[s] > 1 {
			t.Errorf("the leader of %s changed %d times in 8 s, want at most once", s, changes[s])
		}
	}
	for _, s := range []string{wire.KVStream(wire.OwnersBucket), wire.KVStream(wire.SnapshotsBucket)} {
		if d[last[s]] != 0 {
			t.Errorf("%s is led by %s, which owns %d rooms (distribution %v)", s, last[s], d[last[s]], d)
		}
	}
	t.Logf("leaders %v, changes %v, rooms %v", last, changes, d)
}

func TestEventsAreDroppedFromTheStreamOnceTwoSnapshotsCoverThemAndAnIdleRoomPurgesNoMore(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) { cfg.Room.SnapshotInterval = 100 * time.Millisecond })
	owner(t, c, 0)
	publish(t, c, "n1", sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	publish(t, c, "n1", sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 2, Keys: 8})

	stored := func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := c.Member("n1").Node.Mesh().JetStream().Stream(ctx, wire.InputsStream)
		if err != nil {
			t.Fatalf("inputs stream: %v", err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(wire.InputSubject(room.Lobby)))
		if err != nil {
			t.Fatalf("inputs stream info: %v", err)
		}
		return info.State.Subjects[wire.InputSubject(room.Lobby)]
	}
	purges := func() int { return c.Metric("n1", `tickmesh_room_input_purges_total{room="lobby"}`) }
	testingutil.WaitFor(t, 10*time.Second, "the lobby's events purged", func() bool { return stored() == 0 })
	first := purges()
	if first < 1 {
		t.Fatalf("events gone without a purge counted: %d", first)
	}
	// Ten more snapshots with nothing new to drop: no purge.
	time.Sleep(time.Second)
	if got := purges(); got != first {
		t.Fatalf("an idle room purged %d more times", got-first)
	}
	// A new event is dropped in turn.
	publish(t, c, "n1", sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 3})
	testingutil.WaitFor(t, 10*time.Second, "the new event purged", func() bool { return purges() > first && stored() == 0 })
}

// A hung owner (its loop and renewals stall, as in a long GC pause or a frozen VM, while its node's routes and
// beacons stay up) is taken over on the signals players feel: its ticks and renewals both stopped. Under the
// route-based rule this never happened while the routes stayed up.
func TestHungOwnerIsTakenOverWhileItsRoutesStayUp(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := owner(t, c, 0)
	var recs []*recorder
	for _, m := range c.Members() {
		recs = append(recs, record(t, c, m.Name))
	}
	hung := c.Member(name).Node.Rooms()
	const freeze = 8 * time.Second
	until := time.Now().Add(freeze)
	hung.InjectFault(room.Lobby, room.Fault{Until: until})
	newName, newEpoch := owner(t, c, epoch)
	if newName == name {
		t.Fatalf("the hung node %s took its own room back", name)
	}
	if time.Now().After(until) {
		t.Fatalf("taken over only after the hang ended (%v): the hung owner was not replaced while hung", freeze)
	}
	if !c.Member(newName).Node.Mesh().Routed(name) {
		t.Fatalf("%s lost its route to %s: this test needs the routes up", newName, name)
	}
	// When the hang ends, the old owner finds its lease gone and steps down; nothing of it gets past a relay.
	testingutil.WaitFor(t, 20*time.Second, "hung owner stepped down", func() bool {
		_, still := hung.Owned()[room.Lobby]
		return !still && time.Now().After(until)
	})
	hung.InjectFault(room.Lobby, room.Fault{})
	time.Sleep(500 * time.Millisecond)
	for _, r := range recs {
		r.checkMonotonic(t)
		if tk := r.lastTick(); tk.Epoch != newEpoch {
			t.Fatalf("%s last tick epoch %d, want %d", r.node, tk.Epoch, newEpoch)
		}
	}
}

// A rolling upgrade keeps every room: a snapshot written by a node from before games (the arena's state,
// without a game name) is restored by the new owner, players, acks and tombstones included.
func TestASnapshotWrittenBeforeGamesIsRestored(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	owner(t, c, 0)
	const r = "upgraded"
	legacy := `{"room":"upgraded","epoch":4,"owner":"old","input_seq":0,"time":1,"state":{"seed":` +
		fmt.Sprint(sim.Seed(r)) + `,"tick":950,"players":[` +
		`{"id":"pa","name":"alice","x":510,"y":20,"vx":10,"vy":0,"keys":8,"ack":42,"conn":41,"online":true}],` +
		`"gone":[{"id":"pc","ack":3,"tick":800}]}}`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := c.Member("n1").Node.Mesh().JetStream().KeyValue(ctx, wire.SnapshotsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, r, []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	rec := recordRoom(t, c, "n1", r)
	t.Cleanup(c.Member("n1").Node.Rooms().Want(r))
	testingutil.WaitFor(t, 20*time.Second, "the upgraded room ticks", func() bool { return rec.lastTick().Seq > 950 })
	tk := rec.lastTick()
	if tk.Epoch != 5 {
		t.Fatalf("epoch %d, want 5 (above the snapshot's)", tk.Epoch)
	}
	p, ok := player(tk, "pa")
	if !ok || p.Ack != 42 || !p.Online {
		t.Fatalf("alice in the upgraded room: %+v", tk)
	}
	// She walks on to the right from x 510, 10 a tick, as the old owner would have moved her.
	if x, _ := tk.Field(&p, "x"); x != float64(min(510+10*(int(tk.Seq)-950), 1000)) {
		t.Fatalf("alice at x %v at tick %d", x, tk.Seq)
	}
	// The tombstone came through: the removed player's old join is still old. (Alice's input, published after
	// it, shows when the owner has had both.)
	publishIn(t, c.Member("n1").Node, r, sim.Event{Kind: sim.KindJoin, Player: "pc", Seq: 3})
	publishIn(t, c.Member("n1").Node, r, sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 43})
	testingutil.WaitFor(t, 10*time.Second, "alice's input applied", func() bool {
		p, _ := player(rec.lastTick(), "pa")
		return p.Ack == 43
	})
	if _, ok := player(rec.lastTick(), "pc"); ok {
		t.Fatal("a replayed join of a removed player brought it back")
	}
}

// Issue #14 against a real owner: an event whose seq jumps far above the player's ack (forged, or corrupt) is
// refused, so the player's own next input still applies; and join/leave churn leaves at most TombstoneCap
// tombstones in the room's snapshot, which stays small while the room ticks.
func TestAForgedSeqCannotSilenceAPlayerAndChurnKeepsTheSnapshotBounded(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) {
		cfg.Room.Sim.TombstoneCap = 20
		cfg.Room.Sim.GraceTicks = int64(cfg.Room.TickRate) // 1 s
		cfg.Room.SnapshotInterval = 100 * time.Millisecond
	})
	owner(t, c, 0)
	n := c.Member("n1").Node
	rec := record(t, c, "n1")
	publish(t, c, "n1", sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	publish(t, c, "n1", sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 1 << 52, Keys: 8}) // forged
	publish(t, c, "n1", sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 2, Keys: 4})       // hers
	testingutil.WaitFor(t, 10*time.Second, "alice's own input applied", func() bool {
		p, ok := player(rec.lastTick(), "pa")
		return ok && p.Ack == 2
	})
	if bad := c.Metric("n1", `tickmesh_room_events_rejected_total{room="lobby"}`); bad < 1 {
		t.Fatalf("the forged event was not counted as bad: %d", bad)
	}

	// 100 players join and leave; each is removed a second later and leaves a tombstone.
	for i := range 100 {
		id := fmt.Sprintf("churn%03d", i)
		ev := sim.Event{Kind: sim.KindJoin, Player: id, Name: id, Seq: 1}
		m, err := wire.EventMsg(room.Lobby, ev)
		if err != nil {
			t.Fatal(err)
		}
		_ = n.Mesh().Conn().Publish(wire.LiveSubject(room.Lobby), m.Data)
		m, _ = wire.EventMsg(room.Lobby, sim.Event{Kind: sim.KindLeave, Player: id, Conn: 1})
		_ = n.Mesh().Conn().Publish(wire.LiveSubject(room.Lobby), m.Data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := n.Mesh().JetStream().KeyValue(ctx, wire.SnapshotsBucket)
	if err != nil {
		t.Fatal(err)
	}
	var tombs, size int
	testingutil.WaitFor(t, 20*time.Second, "the churned players removed, in a snapshot", func() bool {
		e, err := kv.Get(ctx, room.Lobby)
		if err != nil {
			return false
		}
		players, gone, err := testingutil.SnapshotRoster(e.Value())
		if err != nil {
			return false
		}
		tombs = gone
		if tombs > 20 {
			t.Fatalf("%d tombstones in the snapshot, cap 20", tombs)
		}
		size = len(e.Value())
		return players == 1 && tombs == 20
	})
	// Once they are gone, the snapshot is one player and 20 tombstones, whatever the churn was.
	if size > 2048 {
		t.Fatalf("the snapshot after the churn takes %d bytes", size)
	}
	before := rec.lastTick().Seq
	testingutil.WaitFor(t, 5*time.Second, "the lobby still ticks", func() bool { return rec.lastTick().Seq > before+5 })
}

// TestAHandedOverRoomIsAdoptedWithoutTheWatcher: the receiver of a handoff adopts the room on the handing node's
// notice, by reading the lease itself, even while its owners watcher shows nothing of the room (a watcher that
// lags just after a freeze took seconds): without the notice the room would stand still, its lease naming a live
// session that never starts it.
func TestAHandedOverRoomIsAdoptedWithoutTheWatcher(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := owner(t, c, 0)
	rec := recordRoom(t, c, other(c, name), room.Lobby)
	for _, m := range c.Members() {
		if m.Name != name {
			m.Node.Rooms().InjectFault(room.Lobby, room.Fault{HideLeases: true})
		}
	}
	stopped := time.Now()
	c.Stop(name)
	testingutil.WaitFor(t, 5*time.Second, "ticks of a newer epoch", func() bool { return rec.lastTick().Epoch > epoch })
	t.Logf("adopted: a tick of epoch %d %v after the stop began", rec.lastTick().Epoch, time.Since(stopped).Round(time.Millisecond))
	rec.checkMonotonic(t)
}

// TestTheRoomsOfAFencedNodeAreTakenOverWithoutTheWatcher: a node learns that a peer fenced a dead node's session
// from the fencing node's notice, by reading the session key itself, even while its owners watcher shows no
// session change and it fences nothing itself (a node that judges the dead node silent later than the fencer
// does): it takes the dead node's rooms over as their first candidate. Three nodes: the one leading the ownership
// streams owns no room and comes last for orphans (750 ms after it fenced), so without the notice every room of
// the dead node would go to it first.
func TestTheRoomsOfAFencedNodeAreTakenOverWithoutTheWatcher(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	owner(t, c, 0)
	n1 := c.Member("n1").Node
	rooms, releases := openRoomsOnce(t, n1, "fenced", 6)
	for _, r := range releases {
		r() // served by no node: the candidates' order decides, not a relay following the rooms
	}
	leaderOf := func(stream string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l, _, err := n1.Mesh().StreamLeader(ctx, stream)
		if err != nil {
			return ""
		}
		return l
	}
	// placed is the node leading both ownership streams while it owns no room, and the other node owning the most
	// rooms (at least two); "" while there are none.
	placed := func() (leader, victim string) {
		leader = leaderOf(wire.KVStream(wire.OwnersBucket))
		d := n1.Rooms().Distribution()
		if leader == "" || leaderOf(wire.KVStream(wire.SnapshotsBucket)) != leader || d[leader] != 0 {
			return "", ""
		}
		for n, k := range d {
			if n != leader && k >= 2 && k > d[victim] {
				victim = n
			}
		}
		if victim == "" {
			return "", ""
		}
		return leader, victim
	}
	// The leaders stay put for a placement period (2 s), so every node has learnt who leads.
	var leader, victim string
	var since time.Time
	testingutil.WaitFor(t, 60*time.Second, "one node leading the ownership streams and owning no room", func() bool {
		time.Sleep(100 * time.Millisecond)
		l, v := placed()
		if l == "" || l != leader || v != victim {
			leader, victim, since = l, v, time.Now()
			return false
		}
		return time.Since(since) >= 2500*time.Millisecond
	})
	hidden := other(c, leader, victim)
	var theirs []string
	for _, r := range rooms {
		if o, _ := n1.Rooms().Owner(r); o == victim {
			theirs = append(theirs, r)
		}
	}
	if len(theirs) < 2 {
		t.Fatalf("%s owns %d rooms, want several", victim, len(theirs))
	}
	t.Logf("before the kill: %v; %s leads the ownership streams, %s sees no session change and fences nothing", n1.Rooms().Distribution(), leader, hidden)
	c.Member(hidden).Node.Rooms().InjectFault(room.Lobby, room.Fault{HideSessions: true, NoFence: true})

	// Every lease written from now on, in the owners bucket's order, read through the leader (which survives). The
	// order is what counts: which node took each room over first.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := c.Member(leader).Node.Mesh().JetStream().KeyValue(ctx, wire.OwnersBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, "*", jetstream.UpdatesOnly()) // room keys only: sessions are node.<name>
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	before := lastSeq(t, n1, wire.KVStream(wire.OwnersBucket))
	killed := time.Now()
	c.Kill(victim)

	first := map[string]string{} // each room of the victim's: the first node that took it over
	for len(first) < len(theirs) {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			t.Fatalf("the rooms of %s taken over by %v only, of %v", victim, first, theirs)
		}
		if e == nil || e.Operation() != jetstream.KeyValuePut || e.Revision() <= before || first[e.Key()] != "" || !slices.Contains(theirs, e.Key()) {
			continue
		}
		v, err := lease.Parse(e.Value())
		if err != nil || v.Node == victim {
			continue
		}
		first[e.Key()] = v.Node
		// The time of the takeover is the lease's own: this watch may lag by seconds too (its consumer may have
		// been on the node that was killed).
		t.Logf("%s taken over by %s at epoch %d, %v after the kill", e.Key(), v.Node, v.Epoch, time.UnixMilli(v.Since).Sub(killed).Round(time.Millisecond))
	}
	for _, r := range theirs {
		if first[r] != hidden {
			t.Errorf("%s went first to %s, want %s (the first candidate, which learns of the fence only from its notice)", r, first[r], hidden)
		}
	}
}
