package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// lobbyOwner waits until every running node agrees on the lobby's owner, with an epoch above above.
func lobbyOwner(t *testing.T, c *nodetest.Cluster, above uint64) (string, uint64) {
	t.Helper()
	return c.AgreedOwner(room.Lobby, above, waitLong)
}

// online is a tick condition: the player is in the tick and online.
func online(id string) func(*protocol.Tick) bool {
	return func(tk *protocol.Tick) bool {
		p, ok := find(tk, id)
		return ok && p.Online
	}
}

// ticksUntil waits until a tick received by cl after since satisfies cond, and returns how many ticks cl
// received after since up to and including that one.
// aliceInTheLobby starts a 3-node cluster, waits for the lobby's owner and joins alice on node name; it returns
// once a tick shows her online, with her socket and player id.
func aliceInTheLobby(t *testing.T, name string) (*nodetest.Cluster, *client, string) {
	t.Helper()
	c := nodetest.StartCluster(t, 3)
	lobbyOwner(t, c, 0)
	a := join(t, c, name, "alice")
	id := a.id()
	a.waitTick(waitShort, "alice in the lobby", online(id))
	return c, a, id
}

// ackedUpTo is true for a tick in which the player id's events up to seq are applied.
func ackedUpTo(id string, seq uint64) func(*protocol.Tick) bool {
	return func(tk *protocol.Tick) bool {
		p, ok := find(tk, id)
		return ok && p.Ack >= seq
	}
}

func ticksUntil(t *testing.T, cl *client, since time.Time, what string, cond func(*protocol.Tick) bool) int {
	t.Helper()
	n := 0
	testingutil.WaitFor(t, waitShort, cl.name+" on "+cl.node+": "+what, func() bool {
		n = 0
		for _, r := range cl.received() {
			if r.at.Before(since) {
				continue
			}
			n++
			if cond(cl.decoded(r)) {
				return true
			}
		}
		return false
	})
	return n
}

// fill adds n players with long names to the lobby, to make its ticks big: joins published on the owner's fast
// path (core NATS), again until cl sees them all (they are idempotent).
func fill(t *testing.T, c *nodetest.Cluster, via string, n int, cl *client) {
	t.Helper()
	nc := c.Member(via).Node.Mesh().Conn()
	deadline := time.Now().Add(waitLong)
	for {
		for i := range n {
			ev := sim.Event{Kind: sim.KindJoin, Player: fmt.Sprintf("filler%03d", i), Name: fmt.Sprintf("filler player with a long na%04d", i), Seq: 1}
			data, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Publish(wire.LiveSubject(room.Lobby), data); err != nil {
				t.Fatalf("publish filler join: %v", err)
			}
		}
		waitUntil := time.Now().Add(3 * time.Second)
		for time.Now().Before(waitUntil) {
			if tk := cl.last(); tk != nil && len(tk.Players) > n {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lobby did not get %d filler players", n)
		}
	}
}

func TestPlayerJoiningOnNode1IsSeenByClientOnNode3(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	lobbyOwner(t, c, 0)
	bob := join(t, c, "n3", "bob")
	bob.waitTicks(3)

	alice := join(t, c, "n1", "alice")
	n := ticksUntil(t, bob, alice.welcomeAtTime(), "alice online", online(alice.id()))
	if n > 5 {
		t.Errorf("alice showed up on n3 %d ticks after her welcome, want within a few", n)
	}
	t.Logf("alice seen on n3 in tick %d after her welcome", n)
	// And alice sees bob.
	alice.waitTick(waitShort, "bob online", online(bob.id()))
}

func TestResumeOnAnotherNodeKeepsPlayerIDAndPosition(t *testing.T) {
	c, a, id := aliceInTheLobby(t, "n1")

	right := a.input(protocol.KeyRight)
	a.waitTick(waitShort, "alice moving right", func(tk *protocol.Tick) bool {
		p, ok := find(tk, id)
		return ok && p.Ack >= right && p.VX > 0
	})
	a.waitTicks(3)
	release := a.input(0)
	stopped := a.waitTick(waitShort, "alice stopped", func(tk *protocol.Tick) bool {
		p, ok := find(tk, id)
		return ok && p.Ack >= release
	})
	at, _ := find(stopped, id)
	if at.VX != 0 || at.VY != 0 || at.X == 0 && at.Y == 0 {
		t.Fatalf("alice after releasing the keys: %+v", at)
	}
	a.waitTicks(3)
	if p, _ := find(a.last(), id); p.X != at.X || p.Y != at.Y {
		t.Fatalf("alice kept moving after the release: %+v then %+v", at, p)
	}

	token, next := a.token(), a.nextSeq()
	a.leave()
	b := resume(t, c, "n2", "alice", token, next)
	w := b.waitWelcome()
	if w.Player != id || w.Node != "n2" || w.Resume == "" {
		t.Fatalf("welcome on resume: %+v, want player %s on n2 with a token", w, id)
	}
	if w.Ack < release {
		t.Errorf("welcome ack %d, want at least %d (the last input applied)", w.Ack, release)
	}
	tk := b.waitTick(waitShort, "alice's new connection applied", func(tk *protocol.Tick) bool {
		p, ok := find(tk, id)
		return ok && p.Conn == next && p.Online
	})
	p, _ := find(tk, id)
	if p.X != at.X || p.Y != at.Y || p.Ack != next {
		t.Fatalf("alice after resuming on n2: %+v, want position (%v, %v) and ack %d", p, at.X, at.Y, next)
	}
	// The fresh token works too.
	b.leave()
	b2 := resume(t, c, "n3", "alice", w.Resume, b.nextSeq())
	if b2.id() != id {
		t.Fatalf("resume with the welcome's token gave player %s, want %s", b2.id(), id)
	}
}

func TestKillingTheLobbyOwnerKeepsTicksFlowingOnSurvivorsWithAHigherEpoch(t *testing.T) {
	for _, proto := range []int{protocol.Version, protocol.Version2} {
		t.Run(fmt.Sprintf("protocol %d", proto), func(t *testing.T) { testKillingTheLobbyOwner(t, proto) })
	}
}

func testKillingTheLobbyOwner(t *testing.T, proto int) {
	c := nodetest.StartCluster(t, 3)
	name, epoch := lobbyOwner(t, c, 0)
	var survivors []*client
	for _, m := range c.Members() {
		if m.Name != name {
			survivors = append(survivors, joinProto(t, c, m.Name, "on-"+m.Name, "", proto))
		}
	}
	doomed := join(t, c, name, "on-owner")
	for _, s := range survivors {
		s.waitTick(waitShort, "own player in an epoch-"+fmt.Sprint(epoch)+" tick", func(tk *protocol.Tick) bool {
			p, ok := find(tk, s.id())
			return ok && p.Online && tk.Epoch == epoch
		})
	}

	killed := time.Now()
	c.Kill(name)
	newOwner, newEpoch := lobbyOwner(t, c, epoch)
	if newOwner == name {
		t.Fatalf("killed node %s still owns the lobby", name)
	}
	for _, s := range survivors {
		s.waitTick(waitLong, "ticks of the new epoch", func(tk *protocol.Tick) bool { return tk.Epoch == newEpoch })
		s.waitTicks(10)
		if !s.open() {
			t.Fatalf("%s closed (%d) during the failover", s.name, s.closeCodeNow())
		}
		if p, ok := find(s.last(), s.id()); !ok || !p.Online {
			t.Errorf("%s after the failover: %+v (present %v)", s.name, p, ok)
		}
		// On every received frame: the epoch never went down, and (epoch, seq) only grew.
		var high uint64
		var gap time.Duration
		prev := time.Time{}
		for _, r := range s.received() {
			if r.pos.Epoch < high {
				t.Errorf("%s received epoch %d after epoch %d", s.name, r.pos.Epoch, high)
			}
			high = max(high, r.pos.Epoch)
			if !prev.IsZero() && r.at.After(killed) {
				gap = max(gap, r.at.Sub(prev))
			}
			prev = r.at
		}
		if high != newEpoch {
			t.Errorf("%s: highest epoch %d, want %d", s.name, high, newEpoch)
		}
		if v := s.fenceViolations(); len(v) > 0 {
			t.Errorf("%s: ticks out of order: %v", s.name, v)
		}
		t.Logf("%s: longest gap between ticks across the failover %v (epoch %d → %d, owner %s → %s)", s.name, gap, epoch, newEpoch, name, newOwner)
	}
	code := doomed.waitClose(waitLong)
	t.Logf("client on the killed owner closed with %d", code)
	if proto >= protocol.Version2 {
		for _, s := range survivors {
			// The new epoch's first tick is a keyframe for everyone: the first keyframe, and at least one more.
			if keys, deltas := s.frameKinds(); keys < 2 || deltas < 10 {
				t.Errorf("%s: %d keyframes, %d deltas", s.name, keys, deltas)
			}
		}
	}
}

func TestSlowClientIsClosedWithoutDelayingAFastClientOnTheSameNode(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	lobbyOwner(t, c, 0)
	// Big ticks (about 50 KB, 1 MB/s) fill a stalled socket's buffers (up to 4 MB of send buffer on loopback)
	// within a few seconds.
	const fillers = 400
	fast := join(t, c, "n2", "fast")
	fast.waitTicks(2)
	fill(t, c, "n1", fillers, fast)
	fast.waitTicks(5)

	gw := c.Member("n2").Node.Gateway()
	start := time.Now()
	slow := dial(t, c, "n2", "slow", dialOpts{noRead: true, rcvBuf: 2048})
	slow.hello("", 1) // and never read, not even the welcome
	testingutil.WaitFor(t, waitShort, "two sockets on n2", func() bool { return gw.Count() == 2 })
	testingutil.WaitFor(t, waitLong, "the slow socket closed by n2", func() bool { return gw.Count() == 1 })
	closed := time.Now()
	fast.waitTicks(5)
	if !fast.open() {
		t.Fatalf("fast client closed with %d", fast.closeCodeNow())
	}
	// Every tick (give or take a skipped one on a busy machine), in order, while the slow one was stuck and
	// after (20 ticks/s; allow for a slow machine).
	steady(t, fast, start, time.Now(), int(time.Since(start)/(100*time.Millisecond)))

	if got := c.Metric("n2", `tickmesh_gateway_closed_total{code="4001"}`); got != 1 {
		t.Errorf("n2 closed %d sockets as too slow, want 1", got)
	}
	// The slow client finds its stream cut (its writer was stuck, so no close frame made it).
	code := endOf(t, slow)
	if code != websocket.CloseAbnormalClosure {
		t.Errorf("slow client ended with %d, want %d", code, websocket.CloseAbnormalClosure)
	}
	t.Logf("slow socket closed %v after its hello (code %d)", closed.Sub(start).Round(time.Millisecond), code)
}

// endOf finds out how a socket that was never read ended. A server that gives up on a stalled socket closes it
// with its send queue full: the kernel drops such an orphaned socket without a FIN once its peer's window stays
// shut, and reading the backlog can take minutes of zero-window probes. So poke the peer instead (a masked
// empty ping frame on the raw connection): a socket that is gone answers with a reset. It returns 1006
// (abnormal closure) for a reset or an end of stream, and fails the test if the socket is still served.
func endOf(t *testing.T, cl *client) int {
	t.Helper()
	nc := cl.ws.NetConn()
	deadline := time.Now().Add(waitShort)
	var buf [64 << 10]byte
	for time.Now().Before(deadline) {
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write([]byte{0x89, 0x80, 0, 0, 0, 0}); err != nil {
			t.Logf("%s: poke: %v", cl.name, err)
			return websocket.CloseAbnormalClosure
		}
		_ = nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			_, err := nc.Read(buf[:])
			if err == nil {
				continue
			}
			if !isTimeout(err) {
				t.Logf("%s: after a poke: %v", cl.name, err)
				return websocket.CloseAbnormalClosure
			}
			break
		}
	}
	t.Fatalf("%s: still served %v after the server closed it", cl.name, waitShort)
	return 0
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestBadClientFramesGetErrorsAndClosesWhileOthersKeepTicking(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	lobbyOwner(t, c, 0)
	watcher := join(t, c, "n1", "watcher")
	watcher.waitTicks(3)
	start := time.Now()

	t.Run("oversized frame is dropped with too_large", func(t *testing.T) {
		cl := join(t, c, "n1", "big")
		// One frame, as a browser sends it (gorilla's writer would split a message this big into fragments).
		if err := cl.writeFrame(0x81, []byte(`{"type":"ping","t":1,"pad":"`+strings.Repeat("x", 5000)+`"}`), true); err != nil {
			t.Fatal(err)
		}
		cl.waitError(protocol.CodeTooLarge)
		cl.sendRaw(`{"type":"ping","t":7}`)
		cl.waitTicks(2)
		if !cl.open() {
			t.Fatalf("closed with %d after one oversized frame", cl.closeCodeNow())
		}
	})
	t.Run("frame far above the limit closes 1009", func(t *testing.T) {
		cl := join(t, c, "n1", "huge")
		_ = cl.writeFrame(0x81, bytes.Repeat([]byte("x"), 2<<20), true)
		if code := cl.waitClose(waitShort); code != websocket.CloseMessageTooBig {
			t.Fatalf("close %d, want %d", code, websocket.CloseMessageTooBig)
		}
	})
	t.Run("fragmented message closes 1009", func(t *testing.T) {
		cl := join(t, c, "n1", "fragments")
		if err := cl.writeFrame(0x01, []byte(`{"type":`), true); err != nil { // text, FIN clear
			t.Fatal(err)
		}
		if code := cl.waitClose(waitShort); code != websocket.CloseMessageTooBig {
			t.Fatalf("close %d, want %d", code, websocket.CloseMessageTooBig)
		}
	})
	t.Run("unmasked frame closes 1002", func(t *testing.T) {
		cl := join(t, c, "n1", "unmasked")
		if err := cl.writeFrame(0x81, []byte(`{"type":"ping"}`), false); err != nil {
			t.Fatal(err)
		}
		if code := cl.waitClose(waitShort); code != websocket.CloseProtocolError {
			t.Fatalf("close %d, want %d", code, websocket.CloseProtocolError)
		}
	})
	t.Run("garbage frame is bad_json", func(t *testing.T) {
		cl := join(t, c, "n1", "garbage")
		cl.sendRaw(`{"type":"input",`)
		cl.waitError(protocol.CodeBadJSON)
		cl.sendRaw(`{"type":"ping","t":7}`)
		cl.waitTicks(2)
		if !cl.open() {
			t.Fatalf("closed with %d after one bad frame", cl.closeCodeNow())
		}
	})
	t.Run("binary frame is bad_json", func(t *testing.T) {
		cl := join(t, c, "n1", "binary")
		if err := cl.write(websocket.BinaryMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		cl.waitError(protocol.CodeBadJSON)
	})
	t.Run("unknown field is bad_field", func(t *testing.T) {
		cl := join(t, c, "n1", "unknown")
		cl.sendRaw(`{"type":"input","seq":5,"keys":{},"jump":true}`)
		cl.waitError(protocol.CodeBadField)
		if !cl.open() {
			t.Fatalf("closed with %d after one bad frame", cl.closeCodeNow())
		}
	})
	t.Run("message before hello is bad_state", func(t *testing.T) {
		cl := dial(t, c, "n1", "early", dialOpts{})
		cl.sendRaw(`{"type":"ping"}`)
		cl.waitError(protocol.CodeBadState)
		cl.hello("", 1)
		cl.waitWelcome()
	})
	t.Run("wrong protocol is bad_protocol then close 4500", func(t *testing.T) {
		cl := dial(t, c, "n1", "future", dialOpts{})
		cl.sendRaw(`{"type":"hello","protocol":3,"name":"future"}`)
		if code := cl.waitClose(waitShort); code != protocol.CloseBadProtocol {
			t.Fatalf("close %d, want %d", code, protocol.CloseBadProtocol)
		}
		if codes := cl.errorCodes(); len(codes) != 1 || codes[0] != protocol.CodeBadProtocol {
			t.Fatalf("errors %v, want [%s]", codes, protocol.CodeBadProtocol)
		}
	})
	t.Run("bad resume token closes 4501", func(t *testing.T) {
		cl := dial(t, c, "n1", "forger", dialOpts{})
		cl.hello("eyJ2IjoxLCJwIjoicDAwMDAwMDAwMDAwMDAwMDEiLCJpYXQiOjF9.AAAA", 5)
		if code := cl.waitClose(waitShort); code != protocol.CloseBadResume {
			t.Fatalf("close %d, want %d", code, protocol.CloseBadResume)
		}
	})
	t.Run("input burst is rate limited", func(t *testing.T) {
		cl := join(t, c, "n1", "burst")
		for i := range 100 {
			frame, _ := protocol.Encode(&protocol.Input{Seq: uint64(2 + i), Keys: protocol.KeysFromMask(uint8(i % 16))})
			if err := cl.write(websocket.TextMessage, frame); err != nil {
				break // closed by the server (error budget) before the end of the burst
			}
		}
		cl.waitError(protocol.CodeRateLimited)
		// About 40 of the 100 exceed the burst of 60, and each counts against the error budget of 20.
		if code := cl.waitClose(waitShort); code != protocol.CloseTooManyErrors {
			t.Fatalf("close %d, want %d", code, protocol.CloseTooManyErrors)
		}
		n := 0
		for _, code := range cl.errorCodes() {
			if code == protocol.CodeRateLimited {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d rate_limited errors, want one (at most one a second)", n)
		}
	})
	t.Run("too many bad frames close 4502", func(t *testing.T) {
		cl := join(t, c, "n1", "errors")
		for range 21 {
			if err := cl.write(websocket.TextMessage, []byte("nope")); err != nil {
				break // the server may already have closed
			}
		}
		if code := cl.waitClose(waitShort); code != protocol.CloseTooManyErrors {
			t.Fatalf("close %d, want %d", code, protocol.CloseTooManyErrors)
		}
		if n := len(cl.errorCodes()); n < 20 {
			t.Errorf("%d error frames before the close, want at least 20", n)
		}
	})

	watcher.waitTicks(3)
	if !watcher.open() {
		t.Fatalf("watcher closed with %d", watcher.closeCodeNow())
	}
	steady(t, watcher, start, time.Now(), int(time.Since(start)/(100*time.Millisecond)))
}

func TestNewerSocketWithTheSameTokenTakesOverTheOlderOne(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	lobbyOwner(t, c, 0)
	watcher := join(t, c, "n3", "watcher")
	a := join(t, c, "n1", "alice")
	id := a.id()
	watcher.waitTick(waitShort, "alice's first connection", func(tk *protocol.Tick) bool {
		p, ok := find(tk, id)
		return ok && p.Online && p.Conn == 1
	})

	// Same node: the newer socket wins at once.
	b := resume(t, c, "n1", "alice", a.token(), a.nextSeq())
	if code := a.waitClose(waitShort); code != protocol.CloseTakenOver {
		t.Fatalf("older socket on the same node closed with %d, want %d", code, protocol.CloseTakenOver)
	}
	watcher.waitTick(waitShort, "alice's second connection", func(tk *protocol.Tick) bool {
		p, ok := find(tk, id)
		return ok && p.Online && p.Conn == 2
	})

	// Across nodes: the old node sees the newer connection in the ticks and closes its socket.
	cc := resume(t, c, "n2", "alice", b.token(), b.nextSeq())
	if code := b.waitClose(waitShort); code != protocol.CloseTakenOver {
		t.Fatalf("older socket on n1 closed with %d, want %d", code, protocol.CloseTakenOver)
	}
	if cc.id() != id {
		t.Fatalf("newest socket is player %s, want %s", cc.id(), id)
	}
	cc.waitTicks(10)
	if !cc.open() {
		t.Fatalf("newest socket closed with %d", cc.closeCodeNow())
	}
	// The losers left no trace: the player is online on its newest connection.
	p, ok := find(watcher.waitTick(waitShort, "alice's third connection", func(tk *protocol.Tick) bool {
		p, ok := find(tk, id)
		return ok && p.Conn == 3
	}), id)
	watcher.waitTicks(5)
	if p, ok = find(watcher.last(), id); !ok || !p.Online || p.Conn != 3 {
		t.Fatalf("alice after two takeovers: %+v (present %v), want online on connection 3", p, ok)
	}
}

func TestDrainClosesEveryClientOfTheNodeWith4000(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	lobbyOwner(t, c, 0)
	var on2, on3 []*client
	for i := range 3 {
		on2 = append(on2, join(t, c, "n2", fmt.Sprintf("two-%d", i)))
		on3 = append(on3, join(t, c, "n3", fmt.Sprintf("three-%d", i)))
	}
	silent := dial(t, c, "n2", "silent", dialOpts{}) // upgraded, no hello yet
	gw := c.Member("n2").Node.Gateway()
	testingutil.WaitFor(t, waitShort, "four sockets on n2", func() bool { return gw.Count() == 4 })
	for _, cl := range append(on2, on3...) {
		cl.waitTicks(2)
	}

	gw.Drain()
	for _, cl := range append(on2, silent) {
		if code := cl.waitClose(waitShort); code != protocol.CloseDraining {
			t.Errorf("%s on n2 closed with %d, want %d", cl.name, code, protocol.CloseDraining)
		}
	}
	late := dial(t, c, "n2", "late", dialOpts{})
	if code := late.waitClose(waitShort); code != protocol.CloseDraining {
		t.Errorf("socket opened during the drain closed with %d, want %d", code, protocol.CloseDraining)
	}
	for _, cl := range on3 {
		cl.waitTicks(3)
		if !cl.open() {
			t.Fatalf("%s on n3 closed with %d by n2's drain", cl.name, cl.closeCodeNow())
		}
	}

	// A graceful stop of the node drains too.
	c.Stop("n3")
	for _, cl := range on3 {
		if code := cl.waitClose(waitShort); code != protocol.CloseDraining {
			t.Errorf("%s on stopped n3 closed with %d, want %d", cl.name, code, protocol.CloseDraining)
		}
	}
}

func TestPresenceJoinAndLeaveAreSeenOnEveryNode(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	lobbyOwner(t, c, 0)
	var observers []*client
	for _, m := range c.Members() {
		observers = append(observers, join(t, c, m.Name, "observer-"+m.Name))
	}
	for _, o := range observers {
		o.waitTicks(3)
	}

	alice := join(t, c, "n2", "alice")
	id := alice.id()
	for _, o := range observers {
		n := ticksUntil(t, o, alice.welcomeAtTime(), "alice online", online(id))
		if n > 3 {
			t.Errorf("%s saw alice %d ticks after her welcome, want within one or two", o.name, n)
		}
		t.Logf("%s saw alice online in tick %d after her welcome", o.name, n)
	}

	left := time.Now()
	alice.leave()
	for _, o := range observers {
		n := ticksUntil(t, o, left, "alice offline", func(tk *protocol.Tick) bool {
			p, ok := find(tk, id)
			return ok && !p.Online && p.Away > 0
		})
		t.Logf("%s saw alice offline in tick %d after she closed", o.name, n)
	}
}

// Every event is acknowledged by INPUTS at the first attempt on a healthy cluster. The fast path's copy goes on
// the live subject, which no stream captures: a copy the stream also stored would race the durable publish of
// the same message id, and JetStream refuses that one ("duplicate message id is in process") until the first
// copy is replicated, so every event would wait for a retry.
func TestEventsAreAcknowledgedByTheStreamAtTheFirstAttempt(t *testing.T) {
	c, a, id := aliceInTheLobby(t, "n2")
	// A new owner moves the leaders of the streams it writes off its own node (FAILOVER.md, placement). Each
	// move leaves INPUTS without a leader for a moment, and an event sent then is rightly sent again: count
	// from when the leaders have settled.
	owner, _ := lobbyOwner(t, c, 0)
	testingutil.WaitFor(t, waitLong, "stream leaders moved off the lobby owner "+owner, func() bool {
		for _, stream := range wire.PlacedStreams {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			leader, _, err := c.Member("n2").Node.Mesh().StreamLeader(ctx, stream)
			cancel()
			if err != nil || leader == "" || leader == owner {
				return false
			}
		}
		return true
	})
	retriesBefore := c.Metric("n2", "tickmesh_gateway_event_publish_retries_total")
	const inputs = 40
	var last uint64
	for i := range inputs {
		last = a.input(uint8(i % 16))
		time.Sleep(40 * time.Millisecond) // 25/s: under the rate limit
	}
	a.waitTick(waitShort, "every input applied", ackedUpTo(id, last))
	acked := 0
	testingutil.WaitFor(t, waitShort, "n2's events acknowledged by the stream", func() bool {
		acked = c.Metric("n2", "tickmesh_gateway_events_acked_total")
		return acked >= inputs+1 // the join and the inputs
	})
	if got := c.Metric("n2", "tickmesh_gateway_event_publish_retries_total") - retriesBefore; got != 0 {
		t.Errorf("n2 retried %d durable publishes of %d inputs on a healthy cluster with settled leaders, want 0", got, inputs)
	}
}

// Events sent while INPUTS has lost its quorum are sent again until it is back, then acknowledged and applied:
// none is lost, and the retries show in the metrics.
func TestEventsSentWhileTheInputStreamHasNoQuorumAreStoredWhenItReturns(t *testing.T) {
	c, a, id := aliceInTheLobby(t, "n1")
	count := func(series string) int { return c.Metric("n1", series) }
	testingutil.WaitFor(t, waitShort, "alice's join acknowledged", func() bool {
		return count("tickmesh_gateway_events_acked_total") >= 1
	})
	ackedBefore := count("tickmesh_gateway_events_acked_total")

	c.Kill("n2")
	c.Kill("n3")
	const inputs = 10
	var last uint64
	for i := range inputs {
		last = a.input(uint8(i%15 + 1))
		time.Sleep(50 * time.Millisecond)
	}
	testingutil.WaitFor(t, waitShort, "n1 retrying the inputs", func() bool {
		return count("tickmesh_gateway_event_publish_retries_total") > 0
	})
	if got := count("tickmesh_gateway_events_acked_total"); got >= ackedBefore+inputs {
		t.Fatalf("n1 had %d events acknowledged without a stream quorum, want fewer than %d", got, ackedBefore+inputs)
	}
	c.Restart("n2")
	c.Restart("n3")
	testingutil.WaitFor(t, waitLong, "every input acknowledged once the quorum is back", func() bool {
		return count("tickmesh_gateway_events_acked_total") >= ackedBefore+inputs
	})
	a.waitTick(waitLong, "alice's last input applied", ackedUpTo(id, last))
}
