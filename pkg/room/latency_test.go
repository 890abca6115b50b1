package room_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// roomHistogram gathers the room manager's collectors of member name and returns the histogram family's series
// for room r (nil when it has none).
func roomHistogram(t *testing.T, c *nodetest.Cluster, name, family, r string) *dto.Histogram {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Member(name).Node.Rooms().Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "room" && l.GetValue() == r {
					return m.GetHistogram()
				}
			}
		}
	}
	return nil
}

func histCount(h *dto.Histogram) uint64 {
	if h == nil {
		return 0
	}
	return h.GetSampleCount()
}

func TestInputToTickIsObservedOnceForEveryAppliedEvent(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	owner(t, c, 0)
	// Only events that arrive during a term are observed (a term's replay of the stream has no arrival time):
	// publish once the owner has ticked for a second in one epoch, past the start of its first term.
	rec := record(t, c, "n1")
	testingutil.WaitFor(t, 20*time.Second, "the owner ticking for a second", func() bool {
		return rec.lastTick().Seq >= 20
	})
	// Each event goes twice (core NATS and the stream): the owner applies it once and observes it once, from
	// the first copy's arrival to the tick that carries it.
	publish(t, c, "n1", sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1})
	publish(t, c, "n1", sim.Event{Kind: sim.KindInput, Player: "pa", Seq: 2, Keys: 8})
	count := func() uint64 {
		return histCount(roomHistogram(t, c, "n1", "tickmesh_room_input_to_tick_seconds", room.Lobby))
	}
	testingutil.WaitFor(t, 10*time.Second, "two events observed", func() bool { return count() >= 2 })
	time.Sleep(500 * time.Millisecond) // ten more ticks, and time for the stream's copies to arrive
	h := roomHistogram(t, c, "n1", "tickmesh_room_input_to_tick_seconds", room.Lobby)
	if got := histCount(h); got != 2 {
		t.Fatalf("%d input → tick observations for 2 applied events", got)
	}
	applied := c.Metric("n1", `tickmesh_room_events_applied_total{kind="join",room="lobby"}`) +
		c.Metric("n1", `tickmesh_room_events_applied_total{kind="input",room="lobby"}`)
	if applied != 2 {
		t.Fatalf("%d events applied, want 2", applied)
	}
	if h.GetSampleSum() <= 0 {
		t.Fatalf("input → tick sum %v: an event is applied before the tick that carries it is published", h.GetSampleSum())
	}
}

func TestRelayObservesTickGapsAndTheAgeOfTicksThatCarryTheOwnersTime(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	owner(t, c, 0)
	const r = "delivery-test" // no socket wants it: no owner, only the ticks published below
	var got atomic.Int32
	stop, err := c.Member("n1").Node.Rooms().Relay().Listen(r, func(string, *room.Tick) { got.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	nc := c.Member("n1").Node.Mesh().Conn()
	send := func(seq uint64, sent time.Time) {
		t.Helper()
		if err := nc.PublishMsg(bundleMsg(r, 1, seq, keyframe(t, r, 1, seq), "", sent)); err != nil {
			t.Fatal(err)
		}
	}
	send(1, time.Now().Add(-300*time.Millisecond)) // published by its owner 300 ms ago
	testingutil.WaitFor(t, 5*time.Second, "the first tick relayed", func() bool { return got.Load() == 1 })
	time.Sleep(200 * time.Millisecond)
	send(2, time.Time{}) // a tick without the owner's time: relayed, not observed; 200 ms or more after the first
	send(2, time.Now())  // a repeat: fenced, neither relayed nor observed
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 5*time.Second, "two ticks relayed", func() bool { return got.Load() == 2 })
	testingutil.WaitFor(t, 5*time.Second, "one repeat fenced", func() bool {
		return c.Metric("n1", `tickmesh_room_ticks_fenced_total{room="delivery-test"}`) == 1
	})
	h := roomHistogram(t, c, "n1", "tickmesh_room_tick_delivery_seconds", r)
	if histCount(h) != 1 {
		t.Fatalf("%d delivery observations, want 1 (only the tick carrying %s)", histCount(h), wire.HeaderTime)
	}
	if h.GetSampleSum() < 0.3 {
		t.Fatalf("delivery age %.3f s of a tick published 300 ms ago", h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() < 0.3 && b.GetCumulativeCount() != 0 {
			t.Fatalf("bucket le=%v counts %d: the age is at least 0.3 s", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	// One gap, between the two accepted ticks: none before the room's first tick, none for the fenced repeat.
	g := roomHistogram(t, c, "n1", "tickmesh_room_tick_gap_seconds", r)
	if histCount(g) != 1 || g.GetSampleSum() < 0.2 {
		t.Fatalf("tick gaps: %d observed, sum %.3f s; want 1 of at least 0.2 s", histCount(g), g.GetSampleSum())
	}
}

// keyframe is the keyframe of an empty arena tick of room r.
// bundleMsg is a bundle of one tick of room r (its frames data, its Tm-Applied applied, its owner's publish time
// sent unless zero) as the node "nobody" publishes it.
func bundleMsg(r string, epoch, seq uint64, data []byte, applied string, sent time.Time) *nats.Msg {
	bt := wire.BundledTick{Room: r, Epoch: epoch, Seq: seq, Applied: applied, Data: data}
	if !sent.IsZero() {
		bt.Time = sent.UnixMicro()
	}
	return &nats.Msg{Subject: wire.BundleSubject(wire.BundleShard(r), "nobody"), Data: wire.AppendBundledTick(wire.NewBundle(nil), &bt)}
}

func keyframe(t testing.TB, r string, epoch, seq uint64) []byte {
	t.Helper()
	g, err := arena.New(arena.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	info := g.Info()
	var v game.View
	g.New(1).View(&v)
	enc := compact.NewEncoder()
	if err := enc.Fill(compact.Header{Room: r, Owner: "nobody", Epoch: epoch, Seq: seq, Time: 1}, compact.SchemaOf(info.Name, &info.Schema), nil, &v); err != nil {
		t.Fatal(err)
	}
	return enc.AppendKeyframe(nil)
}
