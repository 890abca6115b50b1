package room

import (
	"reflect"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// ownerOf is a term with a fresh arena room and nothing else: enough for apply and the acks.
func ownerOf(t *testing.T) *term {
	t.Helper()
	g, err := arena.New(arena.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	met := newMetrics()
	return &term{room: "acks", cfg: DefaultConfig("n1"), met: met, series: met.room("acks"), acks: newAcks(),
		state: sim.New(g, sim.DefaultConfig(), sim.Seed("acks"))}
}

func live(evs ...sim.Event) inbound { return inbound{evs: evs} }

func stored(seq uint64, evs ...sim.Event) inbound { return inbound{evs: evs, streamSeq: seq} }

func input(player string, seq uint64, keys uint8) sim.Event {
	return sim.Event{Kind: sim.KindInput, Player: player, Seq: seq, Keys: keys}
}

func join(player string, seq uint64) sim.Event {
	return sim.Event{Kind: sim.KindJoin, Player: player, Name: player, Seq: seq}
}

// shown is the ack a tick shows for player.
func (t *term) shown(tb testing.TB, player string) uint64 {
	tb.Helper()
	p, ok := t.state.Player(player)
	if !ok {
		tb.Fatalf("no player %s", player)
	}
	return t.acks.of(p)
}

// A tick acknowledges an event only once it is both applied and stored in INPUTS, whichever path brought it
// first; the players above their durable ack are listed, with their applied ack, for Tm-Applied and snapshots.
func TestATickAcknowledgesOnlyEventsThatAreAppliedAndStored(t *testing.T) {
	tm := ownerOf(t)
	tm.apply(stored(1, join("pa", 1)))
	if got := tm.shown(t, "pa"); got != 1 {
		t.Fatalf("a join that came through the stream shows ack %d, want 1", got)
	}
	// Inputs 2 and 3 arrive on core NATS only: applied, not acknowledged.
	tm.apply(live(input("pa", 2, 8), input("pa", 3, 0)))
	if p, _ := tm.state.Player("pa"); p.Ack != 3 {
		t.Fatalf("applied ack %d, want 3", p.Ack)
	}
	if got := tm.shown(t, "pa"); got != 1 {
		t.Fatalf("inputs not stored yet show ack %d, want 1", got)
	}
	if got, want := tm.acks.pending(tm.state), []wire.Applied{{Player: "pa", Seq: 3}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Tm-Applied entries %v, want %v", got, want)
	}
	if got, want := tm.acks.notDurable(tm.state), map[string]uint64{"pa": 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot's durable member %v, want %v", got, want)
	}
	// Their batch is stored: the stream's copy is not applied again, and the ack reaches it.
	tm.apply(stored(2, input("pa", 2, 8), input("pa", 3, 0)))
	if got := tm.shown(t, "pa"); got != 3 {
		t.Fatalf("stored inputs show ack %d, want 3", got)
	}
	if got := tm.acks.pending(tm.state); got != nil {
		t.Fatalf("Tm-Applied entries %v once everything is stored, want none", got)
	}
	if tm.inputSeq != 2 {
		t.Fatalf("input position %d after the batch at 2", tm.inputSeq)
	}

	// An event overtaken by a later one of its player (5 applied first, 4 then ignored) is covered: once it is
	// stored, the ack reaches it, and no further than what is stored.
	tm.apply(live(input("pa", 5, 4)))
	tm.apply(stored(3, input("pa", 4, 1)))
	if got := tm.shown(t, "pa"); got != 4 {
		t.Fatalf("after 5 (live) and 4 (stored, overtaken) the ack is %d, want 4", got)
	}

	// Stored events that the room did not apply move nothing: an input of a player it does not know, an event
	// refused for its seq jump, a leave.
	tm.apply(stored(4, input("pz", 9, 1), input("pa", 5+sim.MaxSeqJump+1, 1), sim.Event{Kind: sim.KindLeave, Player: "pa", Conn: 1}))
	if got := tm.shown(t, "pa"); got != 4 {
		t.Fatalf("events that did not apply moved the ack to %d", got)
	}
	if _, ok := tm.acks.durable["pz"]; ok {
		t.Fatal("a durable ack kept for a player the room does not have")
	}
	if tm.inputSeq != 4 {
		t.Fatalf("input position %d: a message whose events do not apply still moves it", tm.inputSeq)
	}
}

// Restoring keeps the applied acks in the roster (so that the stream's later copies are not applied again) and
// starts the acks players see at the durable ones; a removed player's durable ack is forgotten.
func TestRestoredAcksStartAtTheDurableOnesAndForgetRemovedPlayers(t *testing.T) {
	tm := ownerOf(t)
	tm.apply(live(join("pa", 1), input("pa", 2, 8), join("pb", 1)))
	tm.acks.restored(tm.state, map[string]uint64{"pa": 1, "pb": 5}) // pb's durable ack above its applied one: capped
	if got := tm.shown(t, "pa"); got != 1 {
		t.Fatalf("pa shows %d after restore, want its durable 1", got)
	}
	if got := tm.shown(t, "pb"); got != 1 {
		t.Fatalf("pb shows %d after restore, want its applied 1", got)
	}
	// The stream brings pa's input 2 (applied before the restore): not applied again, now acknowledged.
	tm.apply(stored(7, input("pa", 2, 8)))
	if p, _ := tm.state.Player("pa"); p.Ack != 2 || tm.shown(t, "pa") != 2 {
		t.Fatalf("pa %+v shows %d, want ack 2 applied and shown", p, tm.shown(t, "pa"))
	}
	// Nothing listed: every player durable. A snapshot from before acks meant durable restores the same way.
	tm.acks.restored(tm.state, nil)
	if got := tm.acks.pending(tm.state); got != nil {
		t.Fatalf("pending %v after restoring without a durable member", got)
	}
	// pb leaves and is removed after the grace period: its durable ack goes too.
	tm.apply(stored(8, sim.Event{Kind: sim.KindLeave, Player: "pb", Conn: 1}))
	for range tm.state.Config().GraceTicks {
		tm.state.Step()
	}
	tm.acks.pending(tm.state)
	if _, ok := tm.acks.durable["pb"]; ok || len(tm.acks.durable) != 1 {
		t.Fatalf("durable acks %v after pb was removed", tm.acks.durable)
	}
}

// A tick that shows events applied but not stored asks the follower to read the stream once they have waited
// unstoredWait, then at most once per unstoredWait while it lasts; a tick with none starts the wait afresh.
func TestTicksWithInputsNotStoredAskTheFollowerToReadTheStream(t *testing.T) {
	o := &term{recheck: make(chan struct{}, 1)}
	asked := func() bool {
		select {
		case <-o.recheck:
			return true
		default:
			return false
		}
	}
	t0 := time.Unix(1000, 0)
	tick := func(i int) time.Time { return t0.Add(time.Duration(i) * 50 * time.Millisecond) }
	var got []int
	for i := 0; i <= 30; i++ {
		o.noteUnstored(i < 25, tick(i)) // applied, not stored, for 25 ticks (1.25 s); then stored
		if asked() {
			got = append(got, i)
		}
	}
	// First seen at tick 0: asked at 10 (500 ms), again at 20; not after tick 25.
	if want := []int{10, 20}; !reflect.DeepEqual(got, want) {
		t.Fatalf("asked at ticks %v, want %v", got, want)
	}
	// Unstored again: the wait starts from its first tick, not from the last request.
	got = nil
	for i := 40; i <= 52; i++ {
		o.noteUnstored(true, tick(i))
		if asked() {
			got = append(got, i)
		}
	}
	if want := []int{50}; !reflect.DeepEqual(got, want) {
		t.Fatalf("asked at ticks %v, want %v", got, want)
	}
}
