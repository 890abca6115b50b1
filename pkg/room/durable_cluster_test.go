package room_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// ackLog records, for one player, every tick of the lobby a node's relay accepted: the ack it shows, its
// Tm-Applied header and the player's arena fields.
type ackLog struct {
	mu    sync.Mutex
	ticks []ackEntry
}

type ackEntry struct {
	epoch, seq uint64
	found      bool
	ack        uint64
	applied    string
	x, vx      float64
	tick       protocol.Tick
}

func logAcks(t *testing.T, c *nodetest.Cluster, via, player string) *ackLog {
	t.Helper()
	l := &ackLog{}
	stop, err := c.Member(via).Node.Rooms().Relay().Listen(room.Lobby, func(_ string, tk *room.Tick) {
		dec, err := tk.Decode()
		if err != nil {
			return
		}
		e := ackEntry{epoch: tk.Pos.Epoch, seq: tk.Pos.Seq, applied: tk.Applied(), tick: *dec}
		if p, ok := dec.Player(player); ok {
			e.found, e.ack = true, p.Ack
			e.x, _ = dec.Field(&p, "x")
			e.vx, _ = dec.Field(&p, "vx")
		}
		l.mu.Lock()
		l.ticks = append(l.ticks, e)
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return l
}

func (l *ackLog) last() ackEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ticks) == 0 {
		return ackEntry{}
	}
	return l.ticks[len(l.ticks)-1]
}

// since returns the entries from index i on, and the index after them.
func (l *ackLog) since(i int) ([]ackEntry, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]ackEntry(nil), l.ticks[i:]...)
	return out, len(l.ticks)
}

// liveOnly sends events as one batch on the room's live subject through node via, and nowhere else: the owner
// applies them, INPUTS never hears of them (a durable publish that has not landed yet, or never will).
func liveOnly(t *testing.T, c *nodetest.Cluster, via string, evs ...sim.Event) {
	t.Helper()
	if err := c.Member(via).Node.Mesh().Conn().Publish(wire.LiveSubject(room.Lobby), encodeBatch(t, evs)); err != nil {
		t.Fatal(err)
	}
}

// encodeBatch is evs as one batch message's data.
func encodeBatch(t *testing.T, evs []sim.Event) []byte {
	t.Helper()
	var enc [][]byte
	for _, ev := range evs {
		d, err := wire.EncodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, d)
	}
	return wire.EncodeBatch(enc)
}

// storeBatch stores evs in INPUTS as one batch through node via (a gateway's durable publish of a batch, with its
// own id), again until the stream acknowledges it.
func storeBatch(t *testing.T, c *nodetest.Cluster, via, id string, evs ...sim.Event) {
	t.Helper()
	m, err := wire.BatchMsg(room.Lobby, id, encodeBatch(t, evs))
	if err != nil {
		t.Fatal(err)
	}
	js := c.Member(via).Node.Mesh().JetStream()
	testingutil.WaitFor(t, 30*time.Second, "batch "+id+" stored", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.PublishMsg(ctx, m)
		return err == nil
	})
}

// An owner applies inputs whose batch has not landed in INPUTS: its ticks show them applied (the player moves,
// then stops) but never acknowledge them, and name them in Tm-Applied. The owner then dies (or stops), and the
// batch lands afterwards, as a gateway's retry would: the new owner, restored from the last tick relayed (kill)
// or from the final snapshot (stop), does not apply the inputs again (the player would move on), acknowledges
// them once they are stored, and applies the rest of the batch (replay across a takeover in the middle of a
// batch).
func TestAnInputAppliedBeforeItsBatchLandsIsAcknowledgedOnlyWhenStoredAndNeverAppliedTwice(t *testing.T) {
	for _, c := range []struct {
		name     string
		fromTick bool
	}{{"owner killed, restored from the relayed tick", true}, {"owner stopped, restored from its final snapshot", false}} {
		t.Run(c.name, func(t *testing.T) { testAppliedBeforeStored(t, c.fromTick) })
	}
}

func testAppliedBeforeStored(t *testing.T, kill bool) {
	// Snapshots are rare here, so that a killed owner's last one predates the inputs: only the relayed tick (with
	// its Tm-Applied header) tells the new owner that they are applied.
	c := nodetest.StartCluster(t, 3, func(cfg *node.Config) { cfg.Room.SnapshotInterval = time.Minute })
	name, epoch := owner(t, c, 0)
	var logs []*ackLog
	for _, m := range c.Members() {
		if m.Name != name {
			logs = append(logs, logAcks(t, c, m.Name, "pa"))
		}
	}
	via := other(c, name)
	publish(t, c, via, sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	testingutil.WaitFor(t, 10*time.Second, "alice's join acknowledged", func() bool {
		e := logs[0].last()
		return e.found && e.ack == 1 && e.applied == ""
	})
	// She moves away from the nearer wall, on core NATS only.
	keys := uint8(8) // right
	if logs[0].last().x > 500 {
		keys = 4 // left
	}
	_, mark := logs[0].since(0)
	liveOnly(t, c, via, sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 2, Keys: keys})
	testingutil.WaitFor(t, 10*time.Second, "alice moving", func() bool { return logs[0].last().vx != 0 })
	liveOnly(t, c, via, sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 3})
	testingutil.WaitFor(t, 10*time.Second, "alice stopped", func() bool {
		e := logs[0].last()
		return e.vx == 0 && e.applied == "pa=3"
	})
	// Applied, never acknowledged: not in the ticks since, not for a second more.
	time.Sleep(time.Second)
	before := logs[0].last()
	seen, _ := logs[0].since(mark)
	for _, e := range seen {
		if e.ack != 1 {
			t.Fatalf("tick %d/%d acknowledges %d: inputs that are applied but not stored are acknowledged", e.epoch, e.seq, e.ack)
		}
	}
	if before.applied != "pa=3" || before.vx != 0 {
		t.Fatalf("last tick before the fault: %+v, want alice stopped with Tm-Applied pa=3", before)
	}

	if kill {
		c.Kill(name)
	} else {
		c.Stop(name)
	}
	// Input 2's batch lands now (a gateway's retry), with a new player's join behind it.
	storeBatch(t, c, via, "test:late:1",
		sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 2, Keys: keys},
		sim.Event{Kind: sim.KindJoin, Player: "pb", Name: "bob", Seq: 1})
	newName, newEpoch := c.AgreedOwner(room.Lobby, epoch, 30*time.Second)
	var at ackEntry
	testingutil.WaitFor(t, 10*time.Second, "the new owner acknowledging input 2 and applying bob's join", func() bool {
		at = logs[0].last()
		_, bob := at.tick.Player("pb")
		return at.epoch == newEpoch && at.ack == 2 && bob
	})
	// Input 2 was not applied again: she stays where she stopped, still, for a while.
	time.Sleep(500 * time.Millisecond)
	after := logs[0].last()
	if after.x != before.x || after.vx != 0 || at.x != before.x {
		t.Fatalf("alice moved again after the takeover (x %v, then %v, %v; vx %v): input 2 was applied twice", before.x, at.x, after.x, after.vx)
	}
	// Input 3 is still applied, not stored: listed, not acknowledged.
	if after.ack != 2 || after.applied != "pa=3" {
		t.Fatalf("new owner's tick: ack %d, Tm-Applied %q; want 2 and pa=3", after.ack, after.applied)
	}
	// Stored at last (in the form nodes wrote before batches): acknowledged, not applied again.
	publish(t, c, via, sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 3})
	testingutil.WaitFor(t, 10*time.Second, "input 3 acknowledged", func() bool {
		e := logs[0].last()
		return e.ack == 3 && e.applied == ""
	})
	if e := logs[0].last(); e.x != before.x {
		t.Fatalf("alice at x %v after input 3 was stored, want %v", e.x, before.x)
	}
	fromTick := c.Metric(newName, fmt.Sprintf(`tickmesh_room_restored_from_tick_total{room=%q}`, room.Lobby))
	if kill && fromTick != 1 {
		t.Fatalf("the new owner restored from a relayed tick %d times, want once (this case is about the tick)", fromTick)
	}
	if !kill && fromTick != 0 {
		t.Fatalf("the new owner restored from a relayed tick, want from the final snapshot (this case is about the snapshot)")
	}
	for _, l := range logs {
		l.mu.Lock()
		for i := 1; i < len(l.ticks); i++ {
			if l.ticks[i].found && l.ticks[i-1].found && l.ticks[i].ack < l.ticks[i-1].ack {
				t.Errorf("alice's ack went back from %d to %d at tick %d/%d", l.ticks[i-1].ack, l.ticks[i].ack, l.ticks[i].epoch, l.ticks[i].seq)
			}
		}
		l.mu.Unlock()
	}
}

// The owner's buffer of live copies is bounded: copies that arrive while its loop is stalled and the buffer is
// full are dropped and counted, and the stream's copies of the same events apply them, so none is lost and each
// is applied once.
func TestLiveCopiesBeyondTheOwnersBufferAreDroppedAndTheStreamAppliesThem(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	name, _ := owner(t, c, 0)
	l := logAcks(t, c, name, "pa")
	publish(t, c, name, sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	testingutil.WaitFor(t, 10*time.Second, "alice's join acknowledged", func() bool { return l.last().ack == 1 })
	dropped := fmt.Sprintf(`tickmesh_room_live_events_dropped_total{room=%q}`, room.Lobby)
	applied := fmt.Sprintf(`tickmesh_room_events_applied_total{kind="input",room=%q}`, room.Lobby)
	before := c.Metric(name, applied)

	// More live copies than the buffer holds, one input each, while the owner's loop stands still; then all of
	// them stored, as one batch.
	const n = room.LiveBuffer + 200
	evs := make([]sim.Event, n)
	live := make([][]byte, n)
	for i := range evs {
		evs[i] = sim.Event{Kind: sim.KindInput, Player: "pa", Seq: uint64(i + 2), Keys: uint8(i % 16)}
		live[i] = encodeBatch(t, evs[i:i+1])
	}
	rooms := c.Member(name).Node.Rooms()
	nc := c.Member(name).Node.Mesh().Conn()
	// A stall of 300 ms: long enough to send every copy into it (they are encoded already), short enough that
	// the lease outlives it (TestSaturatedOwnerKeepsItsRoom stalls owners up to this long).
	stallEnd := time.Now().Add(300 * time.Millisecond)
	rooms.InjectFault(room.Lobby, room.Fault{Until: stallEnd})
	time.Sleep(60 * time.Millisecond) // the next tick, at most a period away, begins the stall
	for _, data := range live {
		if err := nc.Publish(wire.LiveSubject(room.Lobby), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	rooms.InjectFault(room.Lobby, room.Fault{})
	storeBatch(t, c, name, "test:burst:1", evs...)
	testingutil.WaitFor(t, 20*time.Second, "every input applied and acknowledged", func() bool { return l.last().ack == n+1 })
	if got := c.Metric(name, dropped); got == 0 {
		t.Fatalf("no live copy dropped: %d copies sent while the loop stood still (the last %v before the stall's end), the buffer holds %d",
			n, stallEnd.Sub(sent).Round(time.Millisecond), room.LiveBuffer)
	}
	if got := c.Metric(name, applied) - before; got != n {
		t.Fatalf("%d inputs applied, want %d (each once)", got, n)
	}
}

// The owner follows the stream by INPUTS' stored copies, which core NATS may lose. A test relay passes the copies
// on to the owner and loses some: every other one (the next copy shows the gap), the last one of an input the
// owner applied from its live copy (the tick shows it applied and not stored), and the last one of an input that
// came only through the stream (nothing shows it: the follower's periodic read finds it). Every input is applied
// once, in order, and acknowledged.
func TestAnOwnerReadsTheStoredInputsWhoseCopiesItMissed(t *testing.T) {
	room.StoredCopiesOn(t, func(r string) string { return "test.stored." + r })
	c := nodetest.StartCluster(t, 1)
	name, _ := owner(t, c, 0)
	nc := c.Member(name).Node.Mesh().Conn()
	var lost sync.Map // player seqs whose stored copy the relay loses
	sub, err := nc.Subscribe(wire.StoredSubject(room.Lobby), func(m *nats.Msg) {
		if evs, _ := wire.DecodeEvents(m.Data); len(evs) == 1 {
			if _, drop := lost.Load(evs[0].Seq); drop {
				return
			}
		}
		_ = nc.PublishMsg(&nats.Msg{Subject: "test.stored." + room.Lobby, Header: m.Header, Data: m.Data})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	l := logAcks(t, c, name, "pa")
	gaps := `tickmesh_room_stored_gaps_total`
	applied := fmt.Sprintf(`tickmesh_room_events_applied_total{kind="input",room=%q}`, room.Lobby)
	publish(t, c, name, sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	testingutil.WaitFor(t, 10*time.Second, "alice's join acknowledged", func() bool { return l.last().ack == 1 })
	before, gapsBefore := c.Metric(name, applied), c.Metric(name, gaps)

	// Inputs 2-11 through the stream only, one message each; the copies of 4, 6, 8, 10 are lost. An input
	// applied out of order would be ignored (its seq below the player's ack), and fewer than ten would count.
	for seq := uint64(2); seq <= 11; seq++ {
		if seq%2 == 0 && seq > 2 {
			lost.Store(seq, true)
		}
		storeBatch(t, c, name, fmt.Sprintf("test:gap:%d", seq), sim.Event{Kind: sim.KindInput, Player: "pa", Seq: seq, Keys: uint8(seq % 16)})
	}
	testingutil.WaitFor(t, 10*time.Second, "inputs 2-11 acknowledged", func() bool { return l.last().ack == 11 })
	if got := c.Metric(name, applied) - before; got != 10 {
		t.Fatalf("%d inputs applied, want 10 (each once, in order)", got)
	}
	if got := c.Metric(name, gaps) - gapsBefore; got < 4 {
		t.Fatalf("%d gaps read, want at least 4 (one per lost copy with a copy after it)", got)
	}

	// Input 12 applied from its live copy, its stored copy lost, nothing after it: the tick shows it applied and
	// not stored, which makes the owner read the stream within a second (the periodic read is 10 s away).
	lost.Store(uint64(12), true)
	ev12 := sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 12}
	liveOnly(t, c, name, ev12)
	storeBatch(t, c, name, "test:tail:12", ev12)
	start := time.Now()
	testingutil.WaitFor(t, 20*time.Second, "input 12 acknowledged", func() bool { return l.last().ack == 12 })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("input 12 acknowledged after %v: not by the read that applied-but-unstored asks for", d.Round(time.Millisecond))
	}

	// Input 13 only through the stream, its copy lost, nothing after it: the periodic read applies it.
	lost.Store(uint64(13), true)
	storeBatch(t, c, name, "test:tail:13", sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 13})
	testingutil.WaitFor(t, 30*time.Second, "input 13 applied and acknowledged", func() bool { return l.last().ack == 13 })
	if got := c.Metric(name, applied) - before; got != 12 {
		t.Fatalf("%d inputs applied, want 12", got)
	}
}
