package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// storedMsg is one message of a room's events in INPUTS.
type storedMsg struct {
	seq   uint64
	id    string // Nats-Msg-Id
	batch bool   // the batch form (a JSON array), not a single event
	evs   []sim.Event
}

// stored reads every message of room's events that INPUTS holds, in stream order, through node via.
func stored(t *testing.T, c *nodetest.Cluster, via, room string) []storedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.Member(via).Node.Mesh().JetStream().Stream(ctx, wire.InputsStream)
	if err != nil {
		t.Fatalf("inputs stream: %v", err)
	}
	var out []storedMsg
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(wire.InputSubject(room)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("read %s's events: %v", room, err)
		}
		evs, bad := wire.DecodeEvents(m.Data)
		if bad > 0 {
			t.Fatalf("stored message %d does not decode: %s", m.Sequence, m.Data)
		}
		out = append(out, storedMsg{seq: m.Sequence, id: m.Header.Get(jetstream.MsgIDHeader), batch: len(m.Data) > 0 && m.Data[0] == '[', evs: evs})
		seq = m.Sequence + 1
	}
}

// shape is "kind:player:seq" of every event of every message, one string per message.
func shape(msgs []storedMsg) []string {
	var out []string
	for _, m := range msgs {
		s := ""
		for i, ev := range m.evs {
			if i > 0 {
				s += " "
			}
			n := ev.Seq
			if ev.Kind == sim.KindLeave {
				n = ev.Conn
			}
			s += fmt.Sprintf("%s:%s:%d", ev.Kind, ev.Player, n)
		}
		out = append(out, s)
	}
	return out
}

// liveLog keeps the sizes of the messages on a room's live subject.
type liveLog struct {
	mu    sync.Mutex
	sizes []int
}

func watchLive(t *testing.T, c *nodetest.Cluster, via, room string) *liveLog {
	t.Helper()
	l := &liveLog{}
	sub, err := c.Member(via).Node.Mesh().Conn().Subscribe(wire.LiveSubject(room), func(m *nats.Msg) {
		evs, _ := wire.DecodeEvents(m.Data)
		l.mu.Lock()
		l.sizes = append(l.sizes, len(evs))
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return l
}

func (l *liveLog) since(i int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sizes[i:])
}

// waitStored waits until room has n messages in INPUTS and returns them.
func waitStored(t *testing.T, c *nodetest.Cluster, via, room string, n int) []storedMsg {
	t.Helper()
	var msgs []storedMsg
	testingutil.WaitFor(t, waitShort, fmt.Sprintf("%d messages of %s stored", n, room), func() bool {
		msgs = stored(t, c, via, room)
		return len(msgs) >= n
	})
	if len(msgs) != n {
		t.Fatalf("%d messages of %s stored, want %d: %v", len(msgs), room, n, shape(msgs))
	}
	return msgs
}

// batchNode is a one-node cluster whose gateway waits window for a batch of at most max events, without
// snapshots that would purge what the tests read.
func batchNode(t *testing.T, window time.Duration, max int, tune ...func(*node.Config)) *nodetest.Cluster {
	t.Helper()
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) {
		cfg.Gateway.BatchWindow, cfg.Gateway.BatchMax = window, max
		cfg.Room.SnapshotInterval = time.Minute
		for _, f := range tune {
			f(cfg)
		}
	})
	lobbyOwner(t, c, 0)
	return c
}

// Where a batch ends: a lone event after the window; a burst in full batches, one in flight at a time, with the
// rest after the window; several players' events of one window in one batch, in the order they came; other
// rooms' events in batches of their own. The live copies go in the same groups.
func TestARoomsEventsAreStoredInBatchesBoundedByWindowAndSize(t *testing.T) {
	const window = 100 * time.Millisecond // the largest a node takes
	c := batchNode(t, window, 8)
	lobbyLive := watchLive(t, c, "n1", "lobby")

	// One event: the join, alone, once the window has passed.
	sent := time.Now()
	a := join(t, c, "n1", "alice")
	aid := a.id()
	msgs := waitStored(t, c, "n1", "lobby", 1)
	if waited := time.Since(sent); waited < window {
		t.Fatalf("the join was stored %v after it was sent, before its window of %v passed", waited, window)
	}
	if got := shape(msgs); !slices.Equal(got, []string{"join:" + aid + ":1"}) || !msgs[0].batch {
		t.Fatalf("stored %v (batch form %v), want alice's join alone in a batch", got, msgs[0].batch)
	}
	if want := "lobby:batch:n1:"; len(msgs[0].id) <= len(want) || msgs[0].id[:len(want)] != want {
		t.Fatalf("message id %q, want a batch id of n1", msgs[0].id)
	}

	// A burst of 20 inputs: 8, 8 (filled while the first was in flight), then 4 once their window passed.
	liveMark := len(lobbyLive.since(0))
	for range 20 {
		a.input(protocol.KeyRight)
	}
	msgs = waitStored(t, c, "n1", "lobby", 4)
	var sizes []int
	var seqs []uint64
	for _, m := range msgs[1:] {
		sizes = append(sizes, len(m.evs))
		for _, ev := range m.evs {
			seqs = append(seqs, ev.Seq)
		}
	}
	if !slices.Equal(sizes, []int{8, 8, 4}) {
		t.Fatalf("the burst was stored in batches of %v, want 8, 8, 4", sizes)
	}
	for i, s := range seqs {
		if s != uint64(i+2) {
			t.Fatalf("the burst was stored in the order %v", seqs)
		}
	}
	testingutil.WaitFor(t, waitShort, "the burst's live copies", func() bool { return len(lobbyLive.since(liveMark)) >= 3 })
	if got := lobbyLive.since(liveMark); !slices.Equal(got, []int{8, 8, 4}) {
		t.Fatalf("live copies in groups of %v, want 8, 8, 4", got)
	}
	a.waitTick(waitShort, "the burst applied and acknowledged", ackedUpTo(aid, 21))

	// Several players and two rooms in one window.
	b := join(t, c, "n1", "bob")
	cc := join(t, c, "n1", "carol")
	d := dial(t, c, "n1", "dave", dialOpts{})
	d.helloIn("other", "", 1)
	d.waitWelcome()
	bid, cid, did := b.id(), cc.id(), d.id()
	waitStored(t, c, "n1", "other", 1)
	testingutil.WaitFor(t, waitShort, "bob's and carol's joins stored", func() bool {
		n := 0
		for _, m := range stored(t, c, "n1", "lobby") {
			n += len(m.evs)
		}
		return n == 1+20+2
	})
	before := len(stored(t, c, "n1", "lobby"))
	a.input(0)
	d.input(protocol.KeyUp)
	b.input(protocol.KeyLeft)
	cc.input(protocol.KeyDown)
	msgs = waitStored(t, c, "n1", "lobby", before+1)
	// Three sockets: their readers hand the events over in whatever order they run.
	got := shape(msgs[before:])
	want := []string{"input:" + aid + ":22", "input:" + bid + ":2", "input:" + cid + ":2"}
	if len(msgs[before].evs) != 3 {
		t.Fatalf("the lobby's window was stored as %v, want one batch of %v", got, want)
	}
	evs := strings.Fields(got[0])
	slices.Sort(evs)
	slices.Sort(want)
	if !slices.Equal(evs, want) {
		t.Fatalf("the lobby's window was stored as %v, want one batch of %v", got, want)
	}
	other := waitStored(t, c, "n1", "other", 2)
	if got := shape(other[1:]); !slices.Equal(got, []string{"input:" + did + ":2"}) {
		t.Fatalf("the other room's window was stored as %v, want dave's input alone", got)
	}
}

// A batch whose PubAck is lost is sent again whole, with the same message id: INPUTS stores it once, and the
// owner applies each of its events once.
func TestABatchWhosePubAckIsLostIsSentAgainAndAppliedOnce(t *testing.T) {
	c := batchNode(t, 50*time.Millisecond, 64)
	a := join(t, c, "n1", "alice")
	aid := a.id()
	waitStored(t, c, "n1", "lobby", 1)
	metric := func(series string) int { return c.Metric("n1", series) }
	retries := metric("tickmesh_gateway_event_publish_retries_total")
	applied := metric(`tickmesh_room_events_applied_total{kind="input",room="lobby"}`)

	c.Member("n1").Node.Gateway().LosePubAcks(1)
	first := a.input(protocol.KeyRight)
	second := a.input(protocol.KeyLeft)
	a.waitTick(waitShort, "both inputs acknowledged", ackedUpTo(aid, second))
	testingutil.WaitFor(t, waitShort, "the batch acknowledged by INPUTS", func() bool {
		return metric("tickmesh_gateway_events_acked_total") >= 3
	})
	if got := metric("tickmesh_gateway_event_publish_retries_total") - retries; got != 1 {
		t.Fatalf("%d retries, want 1 (the attempt whose PubAck was lost)", got)
	}
	msgs := stored(t, c, "n1", "lobby")
	if got, want := shape(msgs[1:]), []string{fmt.Sprintf("input:%s:%d input:%s:%d", aid, first, aid, second)}; !slices.Equal(got, want) {
		t.Fatalf("stored %v, want the batch once: %v", got, want)
	}
	if got := metric(`tickmesh_room_events_applied_total{kind="input",room="lobby"}`) - applied; got != 2 {
		t.Fatalf("the owner applied %d inputs, want 2 (each once)", got)
	}
}

// When INPUTS stops acknowledging, the node holds at most MaxPending inputs; each input beyond is answered
// not_ready at once (nothing is dropped without an answer), and once the stream acknowledges again, everything
// held is stored and the client's resent input is taken.
func TestInputsBeyondWhatTheNodeHoldsUnstoredAreAnsweredNotReady(t *testing.T) {
	const maxPending = 8
	c := batchNode(t, 10*time.Millisecond, 4, func(cfg *node.Config) { cfg.Gateway.MaxPending = maxPending })
	a := join(t, c, "n1", "alice")
	aid := a.id()
	waitStored(t, c, "n1", "lobby", 1)
	gw := c.Member("n1").Node.Gateway()
	gw.LosePubAcks(1 << 30) // every PubAck lost: nothing the node sends counts as stored
	const inputs = 20
	var last uint64
	for range inputs {
		last = a.input(protocol.KeyRight)
	}
	testingutil.WaitFor(t, waitShort, "an answer to every input beyond the bound", func() bool {
		n := 0
		for _, code := range a.errorCodes() {
			if code == protocol.CodeNotReady {
				n++
			}
		}
		return n >= inputs-maxPending
	})
	time.Sleep(200 * time.Millisecond)
	notReady := 0
	for _, code := range a.errorCodes() {
		if code != protocol.CodeNotReady {
			t.Fatalf("error %q, want only not_ready", code)
		}
		notReady++
	}
	if notReady != inputs-maxPending {
		t.Fatalf("%d inputs answered not_ready, want %d (held %d of %d)", notReady, inputs-maxPending, maxPending, inputs)
	}
	if got := c.Metric("n1", "tickmesh_gateway_events_pending"); got != maxPending {
		t.Fatalf("%d events pending, want %d", got, maxPending)
	}
	// The stream acknowledges again: what was held is settled, and the latest input, resent, is taken.
	gw.LosePubAcks(0)
	testingutil.WaitFor(t, waitShort, "nothing pending", func() bool { return c.Metric("n1", "tickmesh_gateway_events_pending") == 0 })
	a.send(&protocol.Input{Seq: last, Keys: protocol.KeysFromMask(protocol.KeyRight)})
	a.waitTick(waitShort, "the resent input acknowledged", ackedUpTo(aid, last))
}

// With a batch size of 1 a node writes one event per message with the event's own message id: the form nodes
// without batches read (a rolling upgrade from them runs with it).
func TestABatchSizeOfOneWritesEventsAsNodesWithoutBatchesDo(t *testing.T) {
	c := batchNode(t, 2*time.Millisecond, 1)
	a := join(t, c, "n1", "alice")
	aid := a.id()
	a.input(protocol.KeyRight)
	a.input(0)
	msgs := waitStored(t, c, "n1", "lobby", 3)
	for i, m := range msgs {
		want := fmt.Sprintf("lobby:%s", m.evs[0].MsgID())
		if m.batch || len(m.evs) != 1 || m.id != want {
			t.Fatalf("message %d: batch form %v, %d events, id %q; want one event alone with id %q", i, m.batch, len(m.evs), m.id, want)
		}
	}
	if got := shape(msgs); !slices.Equal(got, []string{"join:" + aid + ":1", "input:" + aid + ":2", "input:" + aid + ":3"}) {
		t.Fatalf("stored %v", got)
	}
	a.waitTick(waitShort, "the inputs acknowledged", ackedUpTo(aid, 3))
}
