package failbench

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

func TestRecorderFencesAndCountsStaleTicks(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var events []string
	r := newRecorder([]string{"n1", "n2"}, func(node string, s staleRec, accepted bool) {
		mu.Lock()
		defer mu.Unlock()
		kind := "refused"
		if accepted {
			kind = "accepted"
		}
		events = append(events, node+" "+kind)
	})
	at := func(ms int) time.Time { return t0.Add(msD(ms)) }

	r.tick("n1", at(0), 1, 10, 0)
	r.tick("n2", at(1), 1, 10, 0)
	r.tick("n1", at(50), 1, 11, 0)
	r.tick("n1", at(60), 1, 11, 0) // duplicate: refused within the epoch, not stale
	// n2 sees the new owner's lease, n1 does not yet.
	r.lease("n2", 2)
	// A tick of the old epoch now: n2's fence refuses it (stale published); n1's fence accepts it, but epoch 2
	// was already seen: stale accepted.
	r.tick("n2", at(100), 1, 12, 0)
	r.tick("n1", at(101), 1, 12, 0)
	r.tick("n1", at(150), 2, 13, 0)
	r.tick("n2", at(151), 2, 13, 0)
	// The old owner again: refused everywhere.
	r.tick("n1", at(200), 1, 14, 0)

	pub, acc := r.staleCounts(at(0), at(1000))
	if pub != 2 || acc != 1 {
		t.Errorf("stale published %d, accepted %d; want 2, 1", pub, acc)
	}
	if pub, acc := r.staleCounts(at(102), at(1000)); pub != 1 || acc != 0 {
		t.Errorf("window [102, 1000]: stale published %d, accepted %d; want 1, 0", pub, acc)
	}
	if n := r.reorderedTotal(); n != 1 {
		t.Errorf("reordered = %d, want 1", n)
	}
	if got := len(r.tickTimes("n1")); got != 4 {
		t.Errorf("n1 accepted %d ticks, want 4", got)
	}
	last, ok := r.last("n2")
	if !ok || last.Epoch != 2 || last.Seq != 13 {
		t.Errorf("last(n2) = %+v", last)
	}
	first, ok := r.firstAfter("n1", at(0), func(tr tickRec) bool { return tr.Epoch > 1 })
	if !ok || !first.At.Equal(at(150)) {
		t.Errorf("firstAfter = %+v, %v", first, ok)
	}
	mu.Lock()
	got := strings.Join(events, ", ")
	mu.Unlock()
	if got != "n2 refused, n1 accepted, n1 refused" {
		t.Errorf("stale events = %q", got)
	}
}

func TestRecorderAcksAndTrim(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newRecorder([]string{"n1"}, nil)
	for i := range 10 {
		r.tick("n1", t0.Add(msD(50*i)), 1, uint64(i+1), uint64(i))
	}
	acks := r.acks("n1", t0.Add(msD(400)))
	if len(acks) != 2 || acks[0].Ack != 8 || acks[1].Ack != 9 {
		t.Errorf("acks = %+v", acks)
	}
	r.trim(t0.Add(msD(1000))) // after every tick: keeps the last one
	if got := r.tickTimes("n1"); len(got) != 1 || !got[0].Equal(t0.Add(msD(450))) {
		t.Errorf("after trim: %v", got)
	}
	r.trim(t0)
	if got := r.tickTimes("n1"); len(got) != 1 {
		t.Errorf("trim before every tick changed them: %v", got)
	}
}

func TestFencedDelta(t *testing.T) {
	before := map[string]float64{"n1": 2, "n2": 0, "n3": -1}
	after := map[string]float64{"n1": 5, "n2": 1, "n3": 7, "n4": 3}
	// n3's first read failed and n4 was not read before: neither counts.
	if d := fencedDelta(before, after); d != 4 {
		t.Errorf("fencedDelta = %d, want 4", d)
	}
}

// The bot's latency is input → applied: a tick's ack counts what is applied and stored, its Tm-Applied header
// what is applied beyond that (while INPUTS elects a leader, every input), and the observer takes the higher.
func TestObserverTakesTheAppliedAck(t *testing.T) {
	rec := newRecorder([]string{"n1"}, nil)
	var track atomic.Pointer[string]
	player := "pbot"
	track.Store(&player)
	o := &observer{node: "n1", rec: rec, track: &track}
	body, err := protocol.Encode(&protocol.Tick{Room: "lobby", Epoch: 2, Seq: 10, Owner: "n2",
		Players: []protocol.TickPlayer{{ID: "pbot", Name: "b", Ack: 5, Conn: 1, Online: true}}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	m := wire.TickMsg("lobby", 2, 10, body)
	o.onTick(at, m)
	m = wire.TickMsg("lobby", 2, 11, body)
	m.Header[wire.HeaderApplied] = []string{"pother=99,pbot=8"}
	o.onTick(at.Add(time.Millisecond), m)
	acks := rec.acks("n1", at)
	if len(acks) != 2 || acks[0].Ack != 5 || acks[1].Ack != 8 {
		t.Fatalf("acks %+v, want 5 (the tick's) then 8 (Tm-Applied's)", acks)
	}
}
