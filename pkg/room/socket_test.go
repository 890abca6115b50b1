package room_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
)

// socketRecorder is a player's browser speaking protocol 2 to a node: it joins room r and records, like a
// recorder, every tick its frames make (a keyframe, then deltas; a keyframe again at a new epoch).
type socketRecorder struct {
	*recorder
	ws        *websocket.Conn
	done      chan struct{}
	ticks     []protocol.Tick // every tick, decoded (under mu)
	keyframes int             // under mu
	errs      []string        // under mu
}

func recordSocket(t *testing.T, c *nodetest.Cluster, name, r string) *socketRecorder {
	t.Helper()
	url := strings.Replace(c.Member(name).Node.URL(), "http://", "ws://", 1) + "/ws"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := protocol.Encode(&protocol.Hello{Protocol: protocol.Version2, Name: "watcher", Room: r})
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	s := &socketRecorder{recorder: &recorder{node: name + " (protocol 2 socket)"}, ws: ws, done: make(chan struct{})}
	go s.read()
	t.Cleanup(func() {
		ws.Close()
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.errs {
			t.Error(e)
		}
	})
	return s
}

func (s *socketRecorder) read() {
	defer close(s.done)
	var dec compact.Decoder
	for {
		mt, data, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		if mt != websocket.BinaryMessage {
			continue // welcome, nodes
		}
		if err := dec.Apply(data); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, s.node+": a frame that does not apply: "+err.Error())
			s.mu.Unlock()
			continue
		}
		var tk protocol.Tick
		dec.State().Tick(&tk)
		s.mu.Lock()
		if data[0] == compact.Keyframe {
			s.keyframes++
		}
		s.pos = append(s.pos, fence.Position{Epoch: tk.Epoch, Seq: tk.Seq})
		s.times = append(s.times, time.Now())
		s.last = tk
		s.ticks = append(s.ticks, tk)
		s.mu.Unlock()
	}
}

// received is a copy of every tick so far.
func (s *socketRecorder) received() []protocol.Tick {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]protocol.Tick(nil), s.ticks...)
}

// appliedTicks is every tick so far with the acks a node restoring from it would take: the socket shows the
// acks that are applied and durable, and rel, the recorder of the same node's relay (which sent the socket its
// ticks), has each tick's Tm-Applied. Only ticks rel recorded are returned (a socket's first tick may be the
// relay's last one from before rel listened), waiting for rel to record the last one (the relay's listeners run
// in no set order: the socket may get a tick before rel does).
func (s *socketRecorder) appliedTicks(t *testing.T, rel *recorder) []protocol.Tick {
	t.Helper()
	ticks := s.received()
	if len(ticks) == 0 {
		return nil
	}
	last := fence.Position{Epoch: ticks[len(ticks)-1].Epoch, Seq: ticks[len(ticks)-1].Seq}
	testingutil.WaitFor(t, 5*time.Second, rel.node+"'s relay records the socket's last tick", func() bool {
		rel.mu.Lock()
		defer rel.mu.Unlock()
		_, ok := rel.applied[last]
		return ok
	})
	rel.mu.Lock()
	defer rel.mu.Unlock()
	out := ticks[:0]
	for _, tk := range ticks {
		if applied, ok := rel.applied[fence.Position{Epoch: tk.Epoch, Seq: tk.Seq}]; ok {
			out = append(out, withApplied(tk, applied))
		}
	}
	return out
}

// appliedLast is the socket's last tick with the acks a node restoring from it would take (appliedTicks).
func (s *socketRecorder) appliedLast(t *testing.T, rel *recorder) protocol.Tick {
	t.Helper()
	ticks := s.appliedTicks(t, rel)
	if len(ticks) == 0 {
		t.Fatalf("%s: no tick", s.node)
	}
	return ticks[len(ticks)-1]
}

// hasPlayer waits until the socket's ticks show player id.
// joined waits until the socket's own player (named "watcher") is in the room's ticks: its join is applied.
func (s *socketRecorder) joined(t *testing.T) {
	t.Helper()
	testingutil.WaitFor(t, 10*time.Second, s.node+" sees its own player", func() bool {
		for _, p := range s.lastTick().Players {
			if p.Name == "watcher" {
				return true
			}
		}
		return false
	})
}

func (s *socketRecorder) hasPlayer(t *testing.T, id string) {
	t.Helper()
	testingutil.WaitFor(t, 10*time.Second, s.node+" sees "+id, func() bool {
		_, ok := player(s.lastTick(), id)
		return ok
	})
}
