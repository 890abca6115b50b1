package room_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// recorder keeps every tick position a node's relay accepted, and the last tick.
type recorder struct {
	mu    sync.Mutex
	node  string
	pos   []fence.Position
	last  protocol.Tick
	times []time.Time
}

func record(t *testing.T, c *nodetest.Cluster, name string) *recorder {
	t.Helper()
	r := &recorder{node: name}
	stop, err := c.Member(name).Node.Rooms().Relay().Listen(room.Lobby, func(_ string, tk *room.Tick) {
		dec, err := tk.Decode()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.pos = append(r.pos, tk.Pos)
		r.times = append(r.times, time.Now())
		r.last = *dec
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return r
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

func publish(t *testing.T, c *nodetest.Cluster, via string, ev game.Event) {
	t.Helper()
	publishIn(t, c.Member(via).Node, room.Lobby, ev)
}

// publishIn publishes ev to room r through node n until the stream acknowledges it.
func publishIn(t *testing.T, n *node.Node, r string, ev game.Event) {
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
		nodetest.WaitFor(t, 10*time.Second, r.node+" relays lobby ticks", func() bool {
			tk := r.lastTick()
			return tk.Epoch == epoch && tk.Owner == name && tk.Seq > 5
		})
		r.checkMonotonic(t)
	}
}

func TestKilledOwnerIsReplacedWithHigherEpochAndPlayersInPlace(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := owner(t, c, 0)
	watcher := other(c, name)
	rec := record(t, c, watcher)
	via := other(c, name, watcher)

	publish(t, c, via, game.Event{Kind: game.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	publish(t, c, via, game.Event{Kind: game.KindInput, Player: "pa", Seq: 2, Keys: game.KeyRight})
	nodetest.WaitFor(t, 10*time.Second, "alice moving", func() bool {
		p, ok := player(rec.lastTick(), "pa")
		return ok && p.Ack == 2 && p.VX > 0
	})
	// An input acknowledged (PubAck) just before the owner dies must be applied exactly once afterwards.
	publish(t, c, via, game.Event{Kind: game.KindInput, Player: "pa", Seq: 3, Keys: 0})
	before := rec.lastTick()
	c.Kill(name)

	newName, newEpoch := owner(t, c, epoch)
	if newName == name {
		t.Fatalf("killed node %s still owner", name)
	}
	nodetest.WaitFor(t, 10*time.Second, "ticks of the new epoch", func() bool { return rec.lastTick().Epoch == newEpoch })
	after := rec.lastTick()
	p, ok := player(after, "pa")
	if !ok {
		t.Fatalf("alice lost in failover: %+v", after)
	}
	if p.Ack != 3 || p.Keys != 0 || p.VX != 0 {
		t.Fatalf("acknowledged input not applied exactly once: %+v", p)
	}
	bp, _ := player(before, "pa")
	// In place: not behind where the last tick before the kill showed her (she was moving right).
	if p.X < bp.X || p.Y != bp.Y {
		t.Fatalf("alice moved back: before %+v after %+v", bp, p)
	}
	if after.Seq <= before.Seq {
		t.Fatalf("tick number went back: %d then %d", before.Seq, after.Seq)
	}
	rec.checkMonotonic(t)
}

func TestGracefulStopHandsTheRoomOverWithoutLosingATick(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := owner(t, c, 0)
	rec := record(t, c, other(c, name))
	nodetest.WaitFor(t, 10*time.Second, "ticks", func() bool { return rec.lastTick().Seq > 3 })
	c.Stop(name)
	_, newEpoch := owner(t, c, epoch)
	nodetest.WaitFor(t, 10*time.Second, "ticks of the new epoch", func() bool { return rec.lastTick().Epoch == newEpoch })
	rec.checkMonotonic(t)
	// The old owner's final snapshot lets the new one continue at the very next tick number.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := 1; i < len(rec.pos); i++ {
		if rec.pos[i].Epoch == newEpoch && rec.pos[i-1].Epoch == epoch {
			if rec.pos[i].Seq != rec.pos[i-1].Seq+1 {
				t.Fatalf("handoff skipped or repeated ticks: %+v then %+v", rec.pos[i-1], rec.pos[i])
			}
			return
		}
	}
	t.Fatal("no handoff seen")
}

func TestFrozenOwnerPastItsLeaseIsFencedEverywhere(t *testing.T) {
	c := nodetest.StartCluster(t, 3, func(cfg *node.Config) { cfg.Room.LeaseTTL = 2 * time.Second })
	name, epoch := owner(t, c, 0)
	var recs []*recorder
	for _, m := range c.Members() {
		recs = append(recs, record(t, c, m.Name))
	}
	// Freeze the owner (loop and renewals) past its lease, with its deadline checks disabled: only fencing
	// stands between its stale ticks and the players.
	frozen := c.Member(name).Node.Rooms()
	frozen.InjectFault(room.Lobby, room.Fault{Until: time.Now().Add(4 * time.Second), IgnoreDeadline: true})
	_, newEpoch := owner(t, c, epoch)
	nodetest.WaitFor(t, 10*time.Second, "frozen owner stepped down", func() bool {
		_, still := frozen.Owned()[room.Lobby]
		return !still
	})
	frozen.InjectFault(room.Lobby, room.Fault{})
	time.Sleep(500 * time.Millisecond)
	for _, r := range recs {
		r.checkMonotonic(t)
		if tk := r.lastTick(); tk.Epoch != newEpoch {
			t.Fatalf("%s last tick epoch %d, want %d", r.node, tk.Epoch, newEpoch)
		}
	}
}

func TestOwnersStreamLeaderLossDoesNotStopTicks(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := owner(t, c, 0)
	// The owner moves the leaders of the ownership streams off its node.
	var leader string
	nodetest.WaitFor(t, 20*time.Second, "owners stream leader off the owner", func() bool {
		l, _, err := c.Member(name).Node.Mesh().StreamLeader(context.Background(), wire.KVStream(wire.OwnersBucket))
		leader = l
		return err == nil && l != "" && l != name
	})
	survivor := other(c, name, leader)
	rec := record(t, c, survivor)
	nodetest.WaitFor(t, 10*time.Second, "ticks", func() bool { return rec.lastTick().Seq > 0 })
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
	err := nodetest.PublishEvent(ctx, c.Member(via).Node, room.Lobby, game.Event{Kind: game.KindJoin, Player: "pz", Name: "zed", Seq: 1})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("publish during election: %v", err)
	}
	nodetest.WaitFor(t, 5*time.Second, "join applied", func() bool {
		_, ok := player(rec.lastTick(), "pz")
		return ok
	})
}

// joinRoom publishes the join of player "p-<room>" to room through n, again until JetStream acknowledges it
// (the room's stream may still be electing a leader), so that the room has a player and stays open.
func joinRoom(t *testing.T, n *node.Node, r string) {
	t.Helper()
	publishIn(t, n, r, game.Event{Kind: game.KindJoin, Player: "p-" + r, Name: r, Seq: 1})
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
		nodetest.WaitFor(t, 20*time.Second, r+" ticks with its player", func() bool {
			last := n1.Rooms().Relay().Last(r)
			if last == nil {
				return false
			}
			dec, err := last.Decode()
			if err != nil {
				return false
			}
			got = *dec
			_, ok := player(got, "p-"+r)
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
	publish(t, c, "n1", game.Event{Kind: game.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	publish(t, c, "n1", game.Event{Kind: game.KindInput, Player: "pa", Seq: 2, Keys: game.KeyRight})

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
	nodetest.WaitFor(t, 10*time.Second, "the lobby's events purged", func() bool { return stored() == 0 })
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
	publish(t, c, "n1", game.Event{Kind: game.KindInput, Player: "pa", Seq: 3, Keys: 0})
	nodetest.WaitFor(t, 10*time.Second, "the new event purged", func() bool { return purges() > first && stored() == 0 })
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
	nodetest.WaitFor(t, 20*time.Second, "hung owner stepped down", func() bool {
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
