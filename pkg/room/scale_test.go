package room_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// lastSeq is the last sequence of stream, read through n.
func lastSeq(t *testing.T, n *node.Node, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := n.Mesh().JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.LastSeq
}

// openRooms makes count rooms named prefix-<i>, wanted by n (so that n creates them; the cluster places them),
// each with one player who joins through n, and waits until every one has a holder.
func openRooms(t *testing.T, c *nodetest.Cluster, n *node.Node, prefix string, count int) []string {
	t.Helper()
	rooms, releases := openRoomsOnce(t, n, prefix, count)
	for _, r := range releases {
		t.Cleanup(r)
	}
	return rooms
}

// openRoomsOnce is openRooms, returning the functions that make n stop serving the rooms (the rooms stay open
// while they have players).
func openRoomsOnce(t *testing.T, n *node.Node, prefix string, count int) (rooms []string, releases []func()) {
	t.Helper()
	for i := range count {
		r := fmt.Sprintf("%s-%d", prefix, i)
		rooms = append(rooms, r)
		releases = append(releases, n.Rooms().Want(r))
		joinRoom(t, n, r)
	}
	testingutil.WaitFor(t, 60*time.Second, "every room held", func() bool {
		for _, r := range rooms {
			if o, _ := n.Rooms().Owner(r); o == "" {
				return false
			}
		}
		return true
	})
	return rooms, releases
}

// writtenSince lists the snapshots written after revision rev, with their epoch and owner.
func writtenSince(t *testing.T, n *node.Node, rev uint64) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := n.Mesh().JetStream().KeyValue(ctx, wire.SnapshotsBucket)
	if err != nil {
		return []string{err.Error()}
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil || e.Revision() <= rev {
			continue
		}
		var s room.Snapshot
		_ = json.Unmarshal(e.Value(), &s)
		out = append(out, fmt.Sprintf("%s@%d(epoch %d by %s)", k, e.Revision(), s.Epoch, s.Owner))
	}
	return out
}

// Renewals cost a constant number of writes per node, whatever the number of rooms, and a room in which nothing
// happens writes no snapshot.
func TestRenewalsDoNotGrowWithRoomsAndAnIdleRoomWritesNothing(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	owner(t, c, 0)
	n1 := c.Member("n1").Node
	const count = 30
	rooms := openRooms(t, c, n1, "idle", count)
	// Every room writes its first snapshots (its player's join changed it), and balance may hand a few rooms
	// over (a final and a takeover snapshot each); then nothing: no keys held, nobody moves. Balance pauses for
	// BalanceCalm after any sign of stream trouble (a slow renewal under -race), so writes are settled only
	// when none came for longer than that pause.
	prev := lastSeq(t, n1, wire.KVStream(wire.SnapshotsBucket))
	quiet := 0
	testingutil.WaitFor(t, 60*time.Second, "snapshot writes settled", func() bool {
		time.Sleep(time.Second)
		cur := lastSeq(t, n1, wire.KVStream(wire.SnapshotsBucket))
		if cur == prev {
			quiet++
		} else {
			quiet = 0
		}
		prev = cur
		return time.Duration(quiet)*time.Second > room.BalanceCalm
	})
	const window = 3 * time.Second
	ownersBefore, snapsBefore := lastSeq(t, n1, wire.KVStream(wire.OwnersBucket)), lastSeq(t, n1, wire.KVStream(wire.SnapshotsBucket))
	time.Sleep(window)
	owners := lastSeq(t, n1, wire.KVStream(wire.OwnersBucket)) - ownersBefore
	snaps := lastSeq(t, n1, wire.KVStream(wire.SnapshotsBucket)) - snapsBefore
	// Three sessions renewed every 250 ms: 36 writes in 3 s, whatever the rooms (per-room renewals were 4 per
	// room and second: 360 for these 30 rooms alone).
	perNode := int(window/(250*time.Millisecond)) + 2
	if owners > uint64(3*perNode) {
		t.Errorf("%d writes to the owners bucket in %v with %d rooms, want at most %d (three sessions)", owners, window, count+1, 3*perNode)
	}
	if snaps != 0 {
		t.Errorf("%d snapshot writes in %v while every room was idle, want 0: %v (distribution %v)", snaps, window,
			writtenSince(t, n1, snapsBefore), n1.Rooms().Distribution())
	}
	// A room where something happens writes its snapshot again.
	publishIn(t, n1, rooms[0], sim.Event{Kind: sim.KindInput, Player: "p-" + rooms[0], Seq: 2, Keys: 8})
	testingutil.WaitFor(t, 10*time.Second, "the changed room's snapshot written", func() bool {
		return lastSeq(t, n1, wire.KVStream(wire.SnapshotsBucket)) > snapsBefore+snaps
	})
	t.Logf("in %v with %d rooms: %d owners writes, %d snapshot writes", window, count+1, owners, snaps)
}

// When a node that owns many rooms dies, every one of them is taken over, by more than one survivor. Four nodes,
// every stream on all four (so that one node can lead every ownership stream and the three others own rooms).
// No node serves the rooms (their players are all on the dead node, say): the survivors take them over on the
// holder's silence alone (its beacons), in the order of a hash of each room and their names.
func TestTheRoomsOfAKilledNodeAreTakenOverAndSpreadOverTheSurvivors(t *testing.T) {
	c := nodetest.StartCluster(t, 4, func(cfg *node.Config) { cfg.Mesh.Replicas = 4 })
	owner(t, c, 0)
	n1 := c.Member("n1").Node
	rooms, releases := openRoomsOnce(t, n1, "many", 24)
	for _, r := range releases {
		r()
	}
	// The rooms spread over the nodes that lead no ownership stream (balance); take the busiest one down.
	var victim string
	testingutil.WaitFor(t, 60*time.Second, "rooms spread over three nodes", func() bool {
		d := n1.Rooms().Distribution()
		busy := 0
		for n, k := range d {
			if k > 0 {
				busy++
			}
			if k > d[victim] {
				victim = n
			}
		}
		return busy >= 3
	})
	var theirs []string
	epochs := map[string]uint64{}
	for _, r := range rooms {
		if o, e := n1.Rooms().Owner(r); o == victim {
			theirs = append(theirs, r)
			epochs[r] = e
		}
	}
	if len(theirs) < 2 {
		t.Fatalf("%s owns %d rooms, want several", victim, len(theirs))
	}
	t.Logf("before the kill: %v", n1.Rooms().Distribution())
	// Watch their ticks on a plain subscription (a node's relay following a room would make it the first to take
	// it over).
	w := c.Member(other(c, victim)).Node
	ticks := map[string]*fence.Fence{}
	var mu sync.Mutex
	for _, r := range theirs {
		f := fence.New()
		ticks[r] = f
		sub, err := w.Mesh().Conn().Subscribe(wire.TickSubject(r), func(m *nats.Msg) {
			e, s, err := wire.ParseTickHeader(m.Header)
			if err == nil {
				mu.Lock()
				f.Accept(r, e, s)
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	c.Kill(victim)
	newOwners := map[string]int{}
	for _, r := range theirs {
		testingutil.WaitFor(t, 60*time.Second, r+" taken over and ticking", func() bool {
			o, e := w.Rooms().Owner(r)
			mu.Lock()
			ticked := ticks[r].Get(r).Epoch
			mu.Unlock()
			return o != "" && o != victim && e > epochs[r] && ticked == e
		})
		o, _ := w.Rooms().Owner(r)
		newOwners[o]++
	}
	if len(newOwners) < 2 {
		t.Errorf("the %d rooms of %s all went to %v: want them spread over the survivors", len(theirs), victim, newOwners)
	}
	t.Logf("%d rooms of %s taken over: %v", len(theirs), victim, newOwners)
}

// A node that joins takes a fair share of the rooms from the others, by graceful handoff: the room's ticks go
// on at the next tick number under the new epoch.
func TestAJoiningNodeTakesItsShareByHandoffWithoutLosingATick(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	owner(t, c, 0)
	n1 := c.Member("n1").Node
	rooms := openRooms(t, c, n1, "share", 12)
	recs := map[string]*roomRecorder{}
	for _, r := range rooms {
		recs[r] = recordHandoffs(t, n1, r)
	}
	m, err := c.Start(c.JoinConfig("n4", "n1"))
	if err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 60*time.Second, "n4 owns a fair share", func() bool {
		return len(m.Node.Rooms().Owned()) >= 3
	})
	time.Sleep(time.Second) // the handed-over rooms tick under their new owner
	handed := 0
	for r, rec := range recs {
		o, _ := n1.Rooms().Owner(r)
		if o != "n4" {
			continue
		}
		handed++
		rec.checkHandoff(t, "n4")
	}
	if handed == 0 {
		t.Fatal("no room went to n4")
	}
	d := n1.Rooms().Distribution()
	t.Logf("distribution after n4 joined: %v (%d handed to n4)", d, handed)
}

// roomRecorder keeps the positions and owners of a room's ticks as a node relays them.
type roomRecorder struct {
	rec    *recorder
	owners []string
}

func recordHandoffs(t *testing.T, n *node.Node, r string) *roomRecorder {
	t.Helper()
	rr := &roomRecorder{rec: &recorder{node: n.Name()}}
	stop, err := n.Rooms().Relay().Listen(r, func(_ string, tk *room.Tick) {
		dec, err := tk.Decode()
		if err != nil {
			return
		}
		rr.rec.mu.Lock()
		rr.rec.pos = append(rr.rec.pos, tk.Pos)
		rr.rec.times = append(rr.rec.times, time.Now())
		rr.rec.last = *dec
		rr.owners = append(rr.owners, dec.Owner)
		rr.rec.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return rr
}

// checkHandoff fails unless the room's ticks went on to owner at the next tick number, in a higher epoch.
func (rr *roomRecorder) checkHandoff(t *testing.T, to string) {
	t.Helper()
	rr.rec.checkMonotonic(t)
	rr.rec.mu.Lock()
	defer rr.rec.mu.Unlock()
	i := slices.Index(rr.owners, to)
	if i <= 0 {
		t.Fatalf("no tick of %s after ticks of another owner: %v", to, rr.owners)
	}
	prev, next := rr.rec.pos[i-1], rr.rec.pos[i]
	if next.Epoch <= prev.Epoch || next.Seq != prev.Seq+1 {
		t.Fatalf("handoff to %s went from %+v to %+v: want the next tick number in a higher epoch", to, prev, next)
	}
}

// A room whose players left closes after EmptyAfter: its lease and snapshot go. It starts again, on whichever
// node, when a player comes back.
func TestAnEmptyRoomClosesAndStartsAgainWhenAPlayerComesBack(t *testing.T) {
	c := nodetest.StartCluster(t, 3, func(cfg *node.Config) { cfg.Room.EmptyAfter = time.Second })
	owner(t, c, 0)
	n1 := c.Member("n1").Node
	const r = "comeback"
	release := n1.Rooms().Want(r)
	defer release()
	joinRoom(t, n1, r)
	testingutil.WaitFor(t, 30*time.Second, "room held", func() bool { o, _ := n1.Rooms().Owner(r); return o != "" })
	publishIn(t, n1, r, sim.Event{Kind: sim.KindLeave, Player: "p-" + r, Conn: 1})
	testingutil.WaitFor(t, 30*time.Second, "empty room closed", func() bool {
		o, _ := n1.Rooms().Owner(r)
		return o == "" && !slices.ContainsFunc(n1.Rooms().Rooms(), func(i room.Info) bool { return i.Room == r })
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snaps, err := n1.Mesh().JetStream().KeyValue(ctx, wire.SnapshotsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.Get(ctx, r); err == nil {
		t.Fatal("a closed room's snapshot is still there")
	} else if err != jetstream.ErrKeyNotFound && err != jetstream.ErrKeyDeleted {
		t.Fatalf("snapshot of the closed room: %v", err)
	}
	publishIn(t, n1, r, sim.Event{Kind: sim.KindJoin, Player: "p-" + r, Name: r, Seq: 3})
	testingutil.WaitFor(t, 30*time.Second, "room open again with its player", func() bool {
		o, _ := n1.Rooms().Owner(r)
		_, tk, _, ok := n1.Rooms().Relay().LastTick(r) // the relay's state, read while it holds the room
		if o == "" || !ok {
			return false
		}
		_, in := tk.Player("p-" + r)
		return in
	})
}

// A bucket made by an older version (its keys expiring with a max age) is made to keep room keys.
func TestStoresOfAnOlderVersionArePrepared(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	n1 := c.Member("n1").Node
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := n1.Mesh().JetStream()
	s, err := js.Stream(ctx, wire.KVStream(wire.OwnersBucket))
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxAge, cfg.Duplicates = 10*time.Second, 10*time.Second
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := room.PrepareStores(ctx, js); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	s, err = js.Stream(ctx, wire.KVStream(wire.OwnersBucket))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 0 {
		t.Fatalf("owners bucket max age %v after prepare, want none", got)
	}
	ss, err := js.Stream(ctx, wire.KVStream(wire.SnapshotsBucket))
	if err != nil {
		t.Fatal(err)
	}
	if !ss.CachedInfo().Config.AllowAtomicPublish {
		t.Fatal("snapshots bucket does not allow atomic batches")
	}
}
