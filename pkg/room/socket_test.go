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

// hasPlayer waits until the socket's ticks show player id.
func (s *socketRecorder) hasPlayer(t *testing.T, id string) {
	t.Helper()
	testingutil.WaitFor(t, 10*time.Second, s.node+" sees "+id, func() bool {
		_, ok := player(s.lastTick(), id)
		return ok
	})
}
