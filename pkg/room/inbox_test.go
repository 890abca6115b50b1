package room

import (
	"sync"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/sim"
)

func msgOf(seq uint64) inbound { return inbound{evs: []sim.Event{{Seq: seq}}} }

func TestAnInboxKeepsOrderRefusesBeyondItsBoundAndSignalsOnce(t *testing.T) {
	b := newInbox(3)
	if got := b.take(); len(got) != 0 {
		t.Fatalf("empty inbox took %d", len(got))
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if !b.put(msgOf(seq)) {
			t.Fatalf("put %d refused below the bound", seq)
		}
	}
	if b.put(msgOf(4)) {
		t.Fatal("put beyond the bound accepted")
	}
	select {
	case <-b.ready:
	default:
		t.Fatal("no signal after the first put")
	}
	select {
	case <-b.ready:
		t.Fatal("a second signal for the same wait")
	default:
	}
	got := b.take()
	if len(got) != 3 || got[0].evs[0].Seq != 1 || got[2].evs[0].Seq != 3 {
		t.Fatalf("took %+v, want 1, 2, 3 in order", got)
	}
	// Room again after the take, and a new signal for the new wait.
	if !b.put(msgOf(5)) {
		t.Fatal("put refused after a take")
	}
	select {
	case <-b.ready:
	default:
		t.Fatal("no signal for the put after a take")
	}
	next := b.take()
	if len(next) != 1 || next[0].evs[0].Seq != 5 {
		t.Fatalf("took %+v, want 5", next)
	}
	// The storage of the earlier take went back to the queue cleared: the queue holds no applied events.
	for i, in := range got[:3] {
		if in.evs != nil {
			t.Fatalf("spare entry %d still holds its events", i)
		}
	}
}

func TestAnInboxReusesSmallStorageAndDropsWhatABurstGrew(t *testing.T) {
	b := newInbox(1024)
	b.put(msgOf(1))
	small := b.take()
	b.take() // hands small's storage back to the queue
	b.put(msgOf(2))
	if got := b.take(); &got[:1][0] != &small[:1][0] {
		t.Fatal("the storage of an earlier take was not reused")
	}
	for seq := uint64(0); seq < 2*inboxKeep; seq++ {
		b.put(msgOf(seq))
	}
	b.take()
	b.take()
	if c := cap(b.q); c > inboxKeep {
		t.Fatalf("the queue kept a burst's storage of %d entries", c)
	}
}

func TestAnInboxTakesEveryPutOnceUnderConcurrency(t *testing.T) {
	const writers, each = 4, 2000
	b := newInbox(writers * each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if !b.put(msgOf(uint64(w*each + i))) {
					t.Error("put refused below the bound")
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := make(map[uint64]bool)
	collect := func() {
		for _, in := range b.take() {
			s := in.evs[0].Seq
			if seen[s] {
				t.Fatalf("message %d taken twice", s)
			}
			seen[s] = true
		}
	}
	for running := true; running; {
		select {
		case <-b.ready:
			collect()
		case <-done:
			running = false
		}
	}
	collect()
	if len(seen) != writers*each {
		t.Fatalf("took %d messages, want %d", len(seen), writers*each)
	}
}
