package gateway

import (
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// countingTick is a tick's frames, counting how often each is asked for.
type countingTick struct{ delta, key, json int }

func (c *countingTick) Delta() []byte    { c.delta++; return []byte{0xB2, 1} }
func (c *countingTick) Keyframe() []byte { c.key++; return []byte{0xB1, 1} }
func (c *countingTick) JSON() []byte     { c.json++; return []byte(`{"type":"tick"}`) }

func tickOf(src tickSource, seq uint64, chained bool) *tickFrames {
	return &tickFrames{pos: fence.Position{Epoch: 1, Seq: seq}, serial: 100 + seq, chained: chained, src: src, at: time.Now()}
}

// busySocket is a welcomed socket whose writer is busy: offered ticks wait in its one-slot queue.
func busySocket(g *Gateway, proto int, lastSeq uint64) *conn {
	c := &conn{g: g, proto: proto, welcome: true, flushing: true}
	c.lastSent, c.lastSer = fence.Position{Epoch: 1, Seq: lastSeq}, 100+lastSeq
	return c
}

func testGateway() *Gateway {
	return &Gateway{cfg: DefaultConfig("n1"), metrics: newMetrics()}
}

// Every socket gets the frame its protocol and its position call for, and each kind of frame is made once per
// tick, whatever the number of sockets.
func TestEachKindOfFrameIsMadeOncePerTickForEverySocket(t *testing.T) {
	g := testGateway()
	src := &countingTick{}
	tf := tickOf(src, 11, true)
	var inStep, behind, old []*conn
	for range 50 {
		inStep = append(inStep, busySocket(g, protocol.Version2, 10))
		behind = append(behind, busySocket(g, protocol.Version2, 8))
		old = append(old, busySocket(g, protocol.Version, 10))
	}
	for _, cs := range [][]*conn{inStep, behind, old} {
		for _, c := range cs {
			c.offerTick(tf)
		}
	}
	for i := range inStep {
		if k := inStep[i].tick.kind; k != kindDelta {
			t.Fatalf("a socket in step got a %s", kindNames[k])
		}
		if k := behind[i].tick.kind; k != kindKeyframe {
			t.Fatalf("a socket behind got a %s", kindNames[k])
		}
		if k := old[i].tick.kind; k != kindJSON {
			t.Fatalf("a protocol 1 socket got a %s", kindNames[k])
		}
	}
	if src.delta != 1 || src.key != 1 || src.json != 1 {
		t.Fatalf("frames made: %d deltas, %d keyframes, %d JSON; want one of each", src.delta, src.key, src.json)
	}
	if &inStep[0].tick.frame[0] != &inStep[1].tick.frame[0] {
		t.Fatal("two sockets got two copies of the same frame")
	}
}

// A tick that replaces an unsent one in a socket's queue goes out as a keyframe: the delta would start from the
// tick the socket never got. A tick that is not chained (a new epoch, a relay that resynchronised) goes out as a
// keyframe to everyone.
func TestASocketWhoseQueueSkippedATickGetsAKeyframe(t *testing.T) {
	g := testGateway()
	src := &countingTick{}
	c := busySocket(g, protocol.Version2, 10)
	c.offerTick(tickOf(src, 11, true))
	if c.tick.kind != kindDelta {
		t.Fatalf("first offer: %s", kindNames[c.tick.kind])
	}
	c.offerTick(tickOf(src, 12, true))
	if c.tick.kind != kindKeyframe || c.tick.pos.Seq != 12 {
		t.Fatalf("the offer that replaced an unsent tick: %s of %d", kindNames[c.tick.kind], c.tick.pos.Seq)
	}
	// The writer takes it (as flush does): the socket's base is tick 12 now.
	c.lastSent, c.lastSer, c.tick = c.tick.pos, c.tick.serial, nil
	c.offerTick(tickOf(src, 13, true))
	if c.tick.kind != kindDelta {
		t.Fatalf("the next tick after the keyframe: %s", kindNames[c.tick.kind])
	}
	c.lastSent, c.lastSer, c.tick = c.tick.pos, c.tick.serial, nil
	c.offerTick(tickOf(src, 14, false))
	if c.tick.kind != kindKeyframe {
		t.Fatalf("a tick that is not chained: %s", kindNames[c.tick.kind])
	}
	// Old and repeated ticks are not offered at all.
	c.lastSent, c.lastSer, c.tick = c.tick.pos, c.tick.serial, nil
	c.offerTick(tickOf(src, 14, true))
	c.offerTick(tickOf(src, 9, true))
	if c.tick != nil {
		t.Fatalf("a stale tick was queued: %+v", c.tick.pos)
	}
}
