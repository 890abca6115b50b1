package room_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// The relay's Epoch hook fires once per new epoch, at its first accepted tick, with the time since the last
// tick of the epoch before; not for the first tick after subscribing, nor for refused ticks.
func TestRelayReportsTheFirstTickOfANewEpochWithTheGap(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	nc := c.Members()[0].Node.Mesh().Conn()
	type call struct {
		from, to fence.Position
		gap      time.Duration
	}
	var mu sync.Mutex
	var calls []call
	r := room.NewRelay(nc, fence.New(), room.RelayHooks{Epoch: func(_ string, from fence.Position, to *room.Tick, gap time.Duration) {
		mu.Lock()
		calls = append(calls, call{from, to.Pos, gap})
		mu.Unlock()
	}})
	t.Cleanup(r.Close) // after the listener's stop: cleanups run last first
	next := delivered(t, r, "relaytest")
	const pause = 150 * time.Millisecond
	for _, p := range []fence.Position{{Epoch: 3, Seq: 10}, {Epoch: 3, Seq: 11}, {Epoch: 2, Seq: 12}, {Epoch: 4, Seq: 12}, {Epoch: 4, Seq: 13}} {
		if p.Epoch == 4 && p.Seq == 12 {
			time.Sleep(pause)
		}
		if err := nc.PublishMsg(bundleMsg("relaytest", p.Epoch, p.Seq, keyframe(t, "relaytest", p.Epoch, p.Seq), "", time.Time{})); err != nil {
			t.Fatal(err)
		}
		if p.Epoch == 2 {
			continue // fenced: never delivered
		}
		next(p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("Epoch hook calls %+v, want one", calls)
	}
	if cl := calls[0]; cl.from != (fence.Position{Epoch: 3, Seq: 11}) || cl.to != (fence.Position{Epoch: 4, Seq: 12}) || cl.gap < pause || cl.gap > 5*time.Second {
		t.Fatalf("Epoch hook %+v, want 3/11 → 4/12 after at least %v", cl, pause)
	}
}

// delivered listens to room rm on r until the test ends and returns a check that the next tick the relay
// delivers, within 5 s, is at want.
func delivered(t *testing.T, r *room.Relay, rm string) func(want fence.Position) {
	t.Helper()
	got := make(chan fence.Position, 16)
	stop, err := r.Listen(rm, func(_ string, tk *room.Tick) { got <- tk.Pos })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return func(want fence.Position) {
		t.Helper()
		select {
		case pos := <-got:
			if pos != want {
				t.Fatalf("delivered %+v, want %+v", pos, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("tick %+v not delivered", want)
		}
	}
}

// appliedOwner encodes the ticks of room r as an owner does: one player, pa, whose shown (durable) ack is the
// tick's seq, its x the seq too.
type appliedOwner struct {
	t      *testing.T
	nc     *nats.Conn
	room   string
	epoch  uint64
	enc    *compact.Encoder
	schema *compact.Schema
}

func (o *appliedOwner) fill(seq uint64) {
	o.t.Helper()
	v := game.View{Players: []game.PlayerView{{ID: "pa", Fields: []int64{int64(seq)}}}}
	roster := []compact.Roster{{ID: "pa", Name: "alice", Ack: seq, Conn: 1, Online: true}}
	if err := o.enc.Fill(compact.Header{Room: o.room, Owner: "nobody", Epoch: o.epoch, Seq: seq, Time: 1}, o.schema, roster, &v); err != nil {
		o.t.Fatal(err)
	}
}

// frames publishes tick seq as a keyframe or a delta (from the last committed tick), with applied as its
// Tm-Applied ("" for none), in a bundle; publish false only commits it (a tick the relay never gets).
func (o *appliedOwner) frames(seq uint64, key bool, applied string, publish bool) {
	o.t.Helper()
	o.fill(seq)
	var data []byte
	if key {
		data = o.enc.AppendKeyframe(nil)
	} else {
		data = o.enc.AppendDelta(nil)
	}
	o.enc.Commit()
	if !publish {
		return
	}
	if err := o.nc.PublishMsg(bundleMsg(o.room, o.epoch, seq, data, applied, time.Time{})); err != nil {
		o.t.Fatal(err)
	}
}

// json publishes tick seq as protocol 1 JSON only, as an owner from before protocol 2 does.
func (o *appliedOwner) json(seq uint64, applied string) {
	o.t.Helper()
	o.fill(seq)
	var tk protocol.Tick
	o.enc.Current().Tick(&tk)
	data, err := protocol.Encode(&tk)
	if err != nil {
		o.t.Fatal(err)
	}
	m := wire.TickMsg(o.room, o.epoch, seq, data)
	if applied != "" {
		m.Header.Set(wire.HeaderApplied, applied)
	}
	if err := o.nc.PublishMsg(m); err != nil {
		o.t.Fatal(err)
	}
}

// A new owner restores from its relay's last tick with that tick's Tm-Applied header: the relay keeps the header
// of the message that made its state, from frames (a keyframe, deltas) as from an old owner's JSON ticks, and a
// frame it cannot apply changes neither (the state and the header stay the last tick's, which stays readable).
func TestTheRelayKeepsTheAppliedAcksOfTheTickItsStateIs(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	nc := c.Members()[0].Node.Mesh().Conn()
	const r = "appliedtest"
	relay := room.NewRelay(nc, fence.New(), room.RelayHooks{})
	defer relay.Close()
	var accepted atomic.Uint64 // the seq of the last accepted tick
	stop, err := relay.Listen(r, func(_ string, tk *room.Tick) { accepted.Store(tk.Pos.Seq) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	o := &appliedOwner{t: t, nc: nc, room: r, epoch: 1, enc: compact.NewEncoder(),
		schema: &compact.Schema{Game: "test", Player: []string{"x"}}}
	flush := func() {
		t.Helper()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// last checks the relay's last tick: its seq, pa's ack and x (both the seq), and its Tm-Applied.
	last := func(seq uint64, applied string) {
		t.Helper()
		testingutil.WaitFor(t, 5*time.Second, fmt.Sprintf("tick %d accepted", seq), func() bool { return accepted.Load() >= seq })
		pos, tk, got, ok := relay.LastTick(r)
		if !ok || pos.Seq != seq || tk.Seq != seq || got != applied {
			t.Fatalf("last tick %+v (ok %v) with Tm-Applied %q: want tick %d with %q", pos, ok, got, seq, applied)
		}
		p, ok := tk.Player("pa")
		if x, _ := tk.Field(&p, "x"); !ok || p.Ack != seq || x != float64(seq) {
			t.Fatalf("tick %d: pa %+v at x %v", seq, p, x)
		}
	}

	o.frames(1, true, "pa=3", true)
	last(1, "pa=3")
	o.frames(2, false, "pa=4", true)
	last(2, "pa=4")
	o.frames(3, false, "", true) // every applied ack durable: no header, and none kept from tick 2
	last(3, "")
	o.frames(4, false, "pa=9", false) // never published: the relay misses tick 4
	o.frames(5, false, "pa=9", true)  // so tick 5's delta does not apply
	flush()
	o.frames(6, false, "pa=9", true)
	flush()
	time.Sleep(100 * time.Millisecond)
	last(3, "")

	// An owner from before protocol 2 (epoch 2): once the frames are silent for a second, the relay follows its
	// JSON ticks, with their Tm-Applied.
	o.epoch, o.enc = 2, compact.NewEncoder()
	seq := uint64(10)
	testingutil.WaitFor(t, 10*time.Second, "the relay follows the JSON ticks", func() bool {
		seq++
		o.json(seq, fmt.Sprintf("pa=%d", seq+5))
		flush()
		time.Sleep(50 * time.Millisecond)
		return accepted.Load() == seq
	})
	last(seq, fmt.Sprintf("pa=%d", seq+5))
	// A new owner's delta the relay cannot apply (it missed the keyframe): the JSON tick stays the state.
	o.epoch, o.enc = 3, compact.NewEncoder()
	o.frames(seq+1, true, "", false)
	o.frames(seq+2, false, "pa=99", true)
	flush()
	time.Sleep(100 * time.Millisecond)
	last(seq, fmt.Sprintf("pa=%d", seq+5))
	// Its keyframe applies, with its header.
	o.frames(seq+3, true, "pa=100", true)
	last(seq+3, "pa=100")
}

// The relay's Silence, a takeover signal of the control loop, ends with every tick it accepts of the room,
// whatever it is: a keyframe, a delta it cannot apply (its owner is alive all the same) and an old owner's JSON
// tick; a tick the fence refuses does not end it, and a room the relay does not follow has none.
func TestTheRelaysSilenceEndsWithEveryTickItAccepts(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	nc := c.Members()[0].Node.Mesh().Conn()
	const r = "silencetest"
	fenced, lost := make(chan struct{}, 1), make(chan struct{}, 1)
	signal := func(ch chan struct{}) func(string) {
		return func(string) {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	relay := room.NewRelay(nc, fence.New(), room.RelayHooks{Fenced: signal(fenced), Lost: signal(lost)})
	defer relay.Close()
	if _, ok := relay.Silence(r); ok {
		t.Fatal("a silence for a room the relay does not follow")
	}
	accepted := make(chan struct{}, 1)
	var last atomic.Uint64 // the seq of the last accepted tick
	stop, err := relay.Listen(r, func(_ string, tk *room.Tick) {
		last.Store(tk.Pos.Seq)
		signal(accepted)(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: not seen", what)
		}
	}
	// heardSince fails unless the room's silence began after before (a tick accepted since).
	heardSince := func(before time.Time, what string) {
		t.Helper()
		if d, ok := relay.Silence(r); !ok || d > time.Since(before) {
			t.Fatalf("%s: silence %v (ok %v), want at most the %v since it was sent", what, d, ok, time.Since(before))
		}
	}
	// silentFor fails unless the room has been silent for at least d.
	silentFor := func(d time.Duration, what string) {
		t.Helper()
		if got, ok := relay.Silence(r); !ok || got < d {
			t.Fatalf("%s: silence %v (ok %v), want at least %v", what, got, ok, d)
		}
	}
	const pause = 200 * time.Millisecond
	time.Sleep(pause)
	silentFor(pause, "following, nothing yet") // counted from when the relay began following the room

	o := &appliedOwner{t: t, nc: nc, room: r, epoch: 2, enc: compact.NewEncoder(),
		schema: &compact.Schema{Game: "test", Player: []string{"x"}}}
	before := time.Now()
	o.frames(1, true, "", true)
	wait(accepted, "keyframe")
	heardSince(before, "keyframe")

	time.Sleep(pause)
	o.frames(2, false, "", false) // missed
	before = time.Now()
	o.frames(3, false, "", true) // a delta that does not apply here
	wait(lost, "a delta without its base")
	heardSince(before, "a delta without its base")

	time.Sleep(pause)
	if err := nc.PublishMsg(bundleMsg(r, 1, 4, keyframe(t, r, 1, 4), "", time.Time{})); err != nil { // an older epoch's
		t.Fatal(err)
	}
	wait(fenced, "a tick of an older epoch")
	silentFor(pause, "a tick of an older epoch")

	// An owner from before protocol 2: the relay follows its JSON ticks once the frames are silent for a second.
	o.epoch = 3
	seq := uint64(10)
	var sent time.Time
	testingutil.WaitFor(t, 10*time.Second, "a JSON tick accepted", func() bool {
		seq++
		sent = time.Now()
		o.json(seq, "")
		time.Sleep(50 * time.Millisecond)
		return last.Load() == seq
	})
	heardSince(sent, "a JSON tick")
}

// A bundle that does not decode is counted, the entries before the bad one are taken, and the relay goes on
// taking the bundles after it: one bad message costs the rooms in its rest one tick, not the node its relay.
func TestAMalformedBundleIsCountedAndTheRelayGoesOn(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	nc := c.Members()[0].Node.Mesh().Conn()
	var malformed atomic.Int32
	relay := room.NewRelay(nc, fence.New(), room.RelayHooks{Malformed: func() { malformed.Add(1) }})
	t.Cleanup(relay.Close)
	next := delivered(t, relay, "badbundle")
	good := bundleMsg("badbundle", 1, 1, keyframe(t, "badbundle", 1, 1), "", time.Time{})
	good.Data = append(good.Data, 200, 200, 200) // a truncated entry after the good one
	if err := nc.PublishMsg(good); err != nil {
		t.Fatal(err)
	}
	next(fence.Position{Epoch: 1, Seq: 1})
	testingutil.WaitFor(t, 5*time.Second, "the bad bundle counted", func() bool { return malformed.Load() == 1 })
	bad := bundleMsg("badbundle", 1, 2, keyframe(t, "badbundle", 1, 2), "", time.Time{})
	bad.Data[0] = wire.BundleVersion + 1 // another version: nothing in it is taken
	if err := nc.PublishMsg(bad); err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(bundleMsg("badbundle", 1, 3, keyframe(t, "badbundle", 1, 3), "", time.Time{})); err != nil {
		t.Fatal(err)
	}
	next(fence.Position{Epoch: 1, Seq: 3})
	if n := malformed.Load(); n != 2 {
		t.Fatalf("%d malformed bundles counted, want 2", n)
	}
}

// Owners publish a room's frames on its own subject, with the tick's headers, only while something subscribes
// there (a relay from before bundles, a tool); the relays of the cluster take the bundles.
func TestAnOwnerPublishesARoomsOwnFramesWhileSomethingListens(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	_, epoch := c.AgreedOwner(room.Lobby, 0, 30*time.Second)
	nc := c.Members()[0].Node.Mesh().Conn()
	frames := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(wire.FramesSubject(room.Lobby), frames)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	select {
	case m := <-frames:
		e, _, err := wire.ParseTickHeader(m.Header)
		if err != nil || e != epoch {
			t.Fatalf("frames of epoch %d (%v), want %d", e, err, epoch)
		}
		if _, ok := wire.TickTime(m.Header); !ok {
			t.Fatalf("frames without %s: %v", wire.HeaderTime, m.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no frames on the room's own subject while something listens")
	}
}
