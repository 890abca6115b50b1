package room

import (
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func sizeOf(n int) func() int            { return func() int { return n } }

func TestContactNeedsBeaconsFromAMajorityOrACommittedWriteWithinContactLoss(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveness("n1", 300*time.Millisecond, sizeOf(3), clk.now)
	if l.contact() {
		t.Fatal("contact before hearing from anyone")
	}
	l.beat("n2", 1)
	if !l.contact() {
		t.Fatal("no contact with n1 + n2 of 3")
	}
	clk.add(300 * time.Millisecond)
	if !l.contact() {
		t.Fatal("contact lost at exactly ContactLoss")
	}
	clk.add(time.Millisecond)
	if l.contact() {
		t.Fatal("contact past ContactLoss without beacons")
	}
	// A committed lease write proves a majority too (the stream's replicas acknowledged it).
	l.confirmed(clk.now().Add(-100 * time.Millisecond))
	if !l.contact() {
		t.Fatal("no contact right after a committed write")
	}
	clk.add(201 * time.Millisecond)
	if l.contact() {
		t.Fatal("a write sent more than ContactLoss ago still counts")
	}
	// Its own beacons never count: a node alone is no majority.
	l.beat("n1", 5)
	if l.contact() {
		t.Fatal("own beacon counted")
	}
}

func TestContactInAFiveNodeClusterNeedsTwoPeersAndAStandaloneNodeAlwaysHasIt(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveness("a", 300*time.Millisecond, sizeOf(5), clk.now)
	l.beat("b", 1)
	if l.contact() {
		t.Fatal("2 of 5 is a majority?")
	}
	l.beat("c", 1)
	if !l.contact() {
		t.Fatal("3 of 5 is no majority?")
	}
	if !newLiveness("solo", time.Second, sizeOf(1), clk.now).contact() {
		t.Fatal("a standalone node has no contact")
	}
}

func TestSilenceCountsFromTheLastBeaconAndFromTheLastMoveOfTheTickCount(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveness("n1", 300*time.Millisecond, sizeOf(3), clk.now)
	if _, _, ok := l.silence("n2"); ok {
		t.Fatal("silence of a node never heard from")
	}
	l.beat("n2", 10)
	clk.add(100 * time.Millisecond)
	l.beat("n2", 10) // alive, but its owner loops published nothing
	clk.add(50 * time.Millisecond)
	beacon, ticks, ok := l.silence("n2")
	if !ok || beacon != 50*time.Millisecond || ticks != 150*time.Millisecond {
		t.Fatalf("silence = %v, %v, %v; want 50ms, 150ms", beacon, ticks, ok)
	}
	l.beat("n2", 11)
	if _, ticks, _ := l.silence("n2"); ticks != 0 {
		t.Fatalf("tick silence %v after the count moved", ticks)
	}
}

func TestBeaconsOfForgedNodeNamesAreBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveness("n1", 300*time.Millisecond, sizeOf(3), clk.now)
	for i := range 2 * maxPeers {
		l.beat("x"+string(rune('a'+i%26))+time.Duration(i).String(), 1)
	}
	if got := len(l.peers); got != maxPeers {
		t.Fatalf("%d peers remembered, want the bound %d", got, maxPeers)
	}
	// Old entries make room for new ones.
	clk.add(peerForget + time.Second)
	l.beat("n2", 1)
	if _, _, ok := l.silence("n2"); !ok {
		t.Fatal("a live peer was not recorded once the forged ones aged")
	}
}

func TestTickSilenceLeavesAStalledButRoutedOwnerMoreTimeAndCoversContactLoss(t *testing.T) {
	c := DefaultConfig("n1")
	if got := c.tickSilence(false); got != c.StealAfter {
		t.Fatalf("tick silence of an unrouted holder %v, want steal-after %v", got, c.StealAfter)
	}
	if got, want := c.tickSilence(true), 700*time.Millisecond; got != want {
		t.Fatalf("tick silence of a routed holder %v, want %v", got, want)
	}
	c.TickRate = 2 // a tick every 500 ms: a takeover must not happen between two ticks
	c.PauseThreshold = 1500 * time.Millisecond
	if got, want := c.tickSilence(false), c.PauseThreshold+500*time.Millisecond; got != want {
		t.Fatalf("tick silence at 2 Hz %v, want %v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("2 Hz config refused: %v", err)
	}
	c = DefaultConfig("n1")
	c.ContactLoss = c.StealAfter
	if err := c.Validate(); err == nil {
		t.Fatal("contact loss equal to steal-after accepted: the owner would stop after the takeover")
	}
	c = DefaultConfig("n1")
	c.HangAfter = c.StealAfter - time.Millisecond
	if err := c.Validate(); err == nil {
		t.Fatal("hang-after below steal-after accepted")
	}
}
