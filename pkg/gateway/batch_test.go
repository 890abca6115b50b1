package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/sim"
)

// The collector's tests drive it with explicit instants: no clock, no NATS. What they check is when a room's
// events leave as a group (window, size), that groups never mix rooms, and that a room has one durable batch in
// flight at a time.

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func ev(room, player string, seq uint64, at time.Time) *event {
	return &event{room: room, ev: sim.Event{Kind: sim.KindInput, Player: player, Seq: seq}, at: at}
}

// step is one call of due at now, with the batches it makes recorded (and kept in flight).
type step struct {
	lives [][]*event
	sends []*batch
	next  time.Time
}

func run(c *collector, now time.Time) step {
	var s step
	s.lives, s.sends, s.next = c.due(now, func(room string, evs []*event) *batch { return &batch{room: room, events: evs} })
	return s
}

// seqs lists the events' "room/player:seq".
func seqs(evs []*event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s/%s:%d", e.room, e.ev.Player, e.ev.Seq))
	}
	return out
}

func TestOneEventLeavesWhenTheWindowPasses(t *testing.T) {
	c := newCollector(newBatching(ms(2), 64))
	c.add(ev("lobby", "pa", 1, t0))
	if s := run(c, t0.Add(ms(1))); len(s.lives)+len(s.sends) != 0 || !s.next.Equal(t0.Add(ms(2))) {
		t.Fatalf("1 ms in: %d live groups, %d batches, next %v; want nothing before %v", len(s.lives), len(s.sends), s.next, t0.Add(ms(2)))
	}
	s := run(c, t0.Add(ms(2)))
	if len(s.lives) != 1 || len(s.sends) != 1 || !slices.Equal(seqs(s.lives[0]), []string{"lobby/pa:1"}) || !slices.Equal(seqs(s.sends[0].events), []string{"lobby/pa:1"}) {
		t.Fatalf("at the window: live %v, batches %d", s.lives, len(s.sends))
	}
	if !s.next.IsZero() {
		t.Fatalf("next %v with the batch in flight and nothing else waiting", s.next)
	}
	c.stored(s.sends[0])
	if s := run(c, t0.Add(ms(3))); len(c.rooms) != 0 || len(s.sends) != 0 {
		t.Fatalf("after the batch is stored the room is kept (%d rooms) or sent again (%d)", len(c.rooms), len(s.sends))
	}
}

func TestEventsOfSeveralPlayersWithinTheWindowGoInOneBatchInOrder(t *testing.T) {
	c := newCollector(newBatching(ms(2), 64))
	c.add(ev("lobby", "pa", 1, t0))
	c.add(ev("lobby", "pb", 7, t0.Add(ms(1))))
	c.add(ev("lobby", "pa", 2, t0.Add(ms(1))))
	s := run(c, t0.Add(ms(2)))
	want := []string{"lobby/pa:1", "lobby/pb:7", "lobby/pa:2"}
	if len(s.sends) != 1 || !slices.Equal(seqs(s.sends[0].events), want) || len(s.lives) != 1 || !slices.Equal(seqs(s.lives[0]), want) {
		t.Fatalf("batches %d, live %d; want one of each with %v", len(s.sends), len(s.lives), want)
	}
}

func TestABatchLeavesAsSoonAsItIsFullAndTheRestWaits(t *testing.T) {
	c := newCollector(newBatching(ms(2), 4))
	for i := range 9 {
		c.add(ev("lobby", "pa", uint64(i+1), t0))
	}
	s := run(c, t0) // no time has passed: only full groups leave
	if len(s.lives) != 2 || len(s.lives[0]) != 4 || len(s.lives[1]) != 4 {
		t.Fatalf("live groups %v, want two full ones", s.lives)
	}
	if len(s.sends) != 1 || !slices.Equal(seqs(s.sends[0].events), []string{"lobby/pa:1", "lobby/pa:2", "lobby/pa:3", "lobby/pa:4"}) {
		t.Fatalf("batches %v, want one full one (one in flight per room)", s.sends)
	}
	flight := s.sends[0]
	// The ninth event's live copy leaves with its window; the durable ones wait for the batch in flight.
	s = run(c, t0.Add(ms(2)))
	if len(s.lives) != 1 || !slices.Equal(seqs(s.lives[0]), []string{"lobby/pa:9"}) || len(s.sends) != 0 {
		t.Fatalf("at the window: live %v, batches %d; want pa:9 live and no batch while one is in flight", s.lives, len(s.sends))
	}
	// Stored: the next batch is full and its window has passed: it leaves at once, then the last event.
	c.stored(flight)
	s = run(c, t0.Add(ms(3)))
	if len(s.sends) != 1 || !slices.Equal(seqs(s.sends[0].events), []string{"lobby/pa:5", "lobby/pa:6", "lobby/pa:7", "lobby/pa:8"}) {
		t.Fatalf("after the first is stored: %v", s.sends)
	}
	c.stored(s.sends[0])
	s = run(c, t0.Add(ms(3)))
	if len(s.sends) != 1 || !slices.Equal(seqs(s.sends[0].events), []string{"lobby/pa:9"}) {
		t.Fatalf("the last one: %v", s.sends)
	}
}

// Events that come while a batch is in flight wait for it, then leave together; the window counts from the
// oldest of them.
func TestEventsArrivingDuringAFlightLeaveTogetherWhenItIsStored(t *testing.T) {
	c := newCollector(newBatching(ms(2), 64))
	c.add(ev("lobby", "pa", 1, t0))
	first := run(c, t0.Add(ms(2))).sends
	if len(first) != 1 {
		t.Fatalf("first batch: %d", len(first))
	}
	for i := range 10 {
		c.add(ev("lobby", "pb", uint64(i+1), t0.Add(ms(3))))
	}
	if s := run(c, t0.Add(ms(6))); len(s.sends) != 0 || len(s.lives) != 1 || len(s.lives[0]) != 10 {
		t.Fatalf("during the flight: %d batches (want 0), live %v (want the 10)", len(s.sends), s.lives)
	}
	c.stored(first[0])
	s := run(c, t0.Add(ms(6)))
	if len(s.sends) != 1 || len(s.sends[0].events) != 10 {
		t.Fatalf("after the flight: %v, want one batch of 10", s.sends)
	}
}

func TestRoomsNeverShareABatch(t *testing.T) {
	c := newCollector(newBatching(ms(2), 64))
	for i := range 3 {
		c.add(ev("alpha", "pa", uint64(i+1), t0))
		c.add(ev("beta", "pb", uint64(i+1), t0))
	}
	c.add(ev("gamma", "pc", 1, t0.Add(ms(1))))
	s := run(c, t0.Add(ms(2)))
	got := map[string][]string{}
	for _, b := range s.sends {
		got[b.room] = seqs(b.events)
	}
	if len(s.sends) != 2 || !slices.Equal(got["alpha"], []string{"alpha/pa:1", "alpha/pa:2", "alpha/pa:3"}) ||
		!slices.Equal(got["beta"], []string{"beta/pb:1", "beta/pb:2", "beta/pb:3"}) {
		t.Fatalf("batches %v, want alpha's and beta's apart (gamma's window has not passed)", got)
	}
	if len(s.lives) != 2 || !s.next.Equal(t0.Add(ms(3))) {
		t.Fatalf("live groups %d, next %v; want 2 and gamma's window end", len(s.lives), s.next)
	}
	// A room's batch in flight holds back no other room.
	c.add(ev("alpha", "pa", 4, t0.Add(ms(2))))
	s = run(c, t0.Add(ms(4)))
	if len(s.sends) != 1 || s.sends[0].room != "gamma" {
		t.Fatalf("batches %v, want gamma's only (alpha's next waits for its flight)", s.sends)
	}
}

func TestAFailedBatchIsSentAgainWholeAtItsRetryTimeAndHoldsItsRoom(t *testing.T) {
	c := newCollector(newBatching(0, 64))
	c.add(ev("lobby", "pa", 1, t0))
	c.add(ev("lobby", "pa", 2, t0))
	first := run(c, t0).sends
	if len(first) != 1 {
		t.Fatalf("batches %d", len(first))
	}
	c.failed(first[0], t0.Add(ms(100)))
	c.add(ev("lobby", "pa", 3, t0.Add(ms(10))))
	s := run(c, t0.Add(ms(50)))
	if len(s.sends) != 0 || !s.next.Equal(t0.Add(ms(100))) {
		t.Fatalf("before the retry time: %d batches, next %v", len(s.sends), s.next)
	}
	s = run(c, t0.Add(ms(100)))
	if len(s.sends) != 1 || s.sends[0] != first[0] || !slices.Equal(seqs(s.sends[0].events), []string{"lobby/pa:1", "lobby/pa:2"}) {
		t.Fatalf("retry: %v, want the same batch, whole", s.sends)
	}
	if c.held() != 3 {
		t.Fatalf("held %d, want 3 (two in flight, one waiting)", c.held())
	}
	c.stored(first[0])
	s = run(c, t0.Add(ms(100)))
	if len(s.sends) != 1 || !slices.Equal(seqs(s.sends[0].events), []string{"lobby/pa:3"}) {
		t.Fatalf("after the retry is stored: %v", s.sends)
	}
}

// With a batch size of 1 every event goes alone, in a message of its own, and a room's are pipelined (as before
// batches): each fails and is sent again on its own.
func TestABatchSizeOfOneSendsEveryEventAloneAndPipelinesThem(t *testing.T) {
	c := newCollector(newBatching(ms(2), 1))
	for i := range legacyFlights + 2 {
		c.add(ev("lobby", "pa", uint64(i+1), t0))
	}
	s := run(c, t0)
	if len(s.lives) != legacyFlights+2 || len(s.sends) != legacyFlights {
		t.Fatalf("%d live, %d durable: want every event alone, %d in flight", len(s.lives), len(s.sends), legacyFlights)
	}
	for _, b := range s.sends {
		if len(b.events) != 1 {
			t.Fatalf("a durable publish of %d events", len(b.events))
		}
	}
	c.failed(s.sends[0], t0.Add(ms(100)))
	c.stored(s.sends[1])
	s2 := run(c, t0.Add(ms(1)))
	if len(s2.sends) != 1 || !slices.Equal(seqs(s2.sends[0].events), []string{fmt.Sprintf("lobby/pa:%d", legacyFlights+1)}) {
		t.Fatalf("after one stored: %v, want the next event", s2.sends)
	}
	if s3 := run(c, t0.Add(ms(100))); len(s3.sends) != 1 || s3.sends[0] != s.sends[0] {
		t.Fatalf("at the retry time: %v, want the failed one again", s3.sends)
	}
}
