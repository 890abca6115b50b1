package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/clusterview"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// sse is one client of a node's cluster view stream. A goroutine owned by the test reads it into msgs; the
// test keeps every message it took in log.
type sse struct {
	t    *testing.T
	resp *http.Response
	msgs chan clusterview.Message
	done chan struct{}
	err  error
	log  []clusterview.Message
}

func openSSE(t *testing.T, adminURL, origin string) *sse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, adminURL+"/api/cluster/events", nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s/api/cluster/events: %d %s", adminURL, resp.StatusCode, b)
	}
	s := &sse{t: t, resp: resp, msgs: make(chan clusterview.Message, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.msgs)
		r := clusterview.NewReader(resp.Body)
		for {
			m, err := r.Next()
			if err != nil {
				s.err = err
				return
			}
			s.msgs <- m
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sse) close() {
	s.resp.Body.Close()
	<-s.done
}

// until returns the first message, among those already taken and those to come, for which match returns
// true, and fails after timeout.
func (s *sse) until(timeout time.Duration, what string, match func(m clusterview.Message) bool) clusterview.Message {
	s.t.Helper()
	for _, m := range s.log {
		if match(m) {
			return m
		}
	}
	return s.next(timeout, what, match)
}

// next reads new messages until match returns true for one, and fails after timeout.
func (s *sse) next(timeout time.Duration, what string, match func(m clusterview.Message) bool) clusterview.Message {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				s.t.Fatalf("stream ended (%v) before %s", s.err, what)
			}
			s.log = append(s.log, m)
			if match(m) {
				return m
			}
		case <-deadline:
			s.t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

func decode[T any](t *testing.T, m clusterview.Message) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(m.Data), &v); err != nil {
		t.Fatalf("%s data %q: %v", m.Event, m.Data, err)
	}
	return v
}

func (s *sse) state(timeout time.Duration, what string, ok func(clusterview.State) bool) clusterview.State {
	s.t.Helper()
	var st clusterview.State
	s.until(timeout, what, func(m clusterview.Message) bool {
		if m.Event != "state" {
			return false
		}
		st = decode[clusterview.State](s.t, m)
		return ok(st)
	})
	return st
}

func (s *sse) event(timeout time.Duration, what string, ok func(clusterview.Event) bool) clusterview.Event {
	s.t.Helper()
	return s.eventBy(s.until, timeout, what, ok)
}

// nextEvent is event among the messages to come only.
func (s *sse) nextEvent(timeout time.Duration, what string, ok func(clusterview.Event) bool) clusterview.Event {
	s.t.Helper()
	return s.eventBy(s.next, timeout, what, ok)
}

func (s *sse) eventBy(read func(time.Duration, string, func(clusterview.Message) bool) clusterview.Message,
	timeout time.Duration, what string, ok func(clusterview.Event) bool) clusterview.Event {
	s.t.Helper()
	var e clusterview.Event
	read(timeout, what, func(m clusterview.Message) bool {
		if m.Event != "timeline" {
			return false
		}
		e = decode[clusterview.Event](s.t, m)
		return ok(e)
	})
	return e
}

func nodeState(st clusterview.State, name string) string {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n.State
		}
	}
	return ""
}

func lobbyOf(st clusterview.State) clusterview.RoomView {
	for _, r := range st.Rooms {
		if r.Room == room.Lobby {
			return r
		}
	}
	return clusterview.RoomView{}
}

// The cluster view's stream against a real cluster: the picture and the timeline arrive, the client bound
// holds, a client that stops reading is dropped while another reads every event, the admin listener's write
// timeout does not end a stream, and the takeover after the owner's death arrives with the tick gap.
func TestClusterViewStreamsTheClusterAndItsEvents(t *testing.T) {
	const writeTimeout = time.Second
	c := nodetest.StartCluster(t, 3, func(cfg *node.Config) {
		cfg.HTTP.AdminWriteTimeout = writeTimeout
		cfg.View.MaxClients = 3
		cfg.View.QueueLen = 64
		cfg.View.Heartbeat = 200 * time.Millisecond
		cfg.View.WriteTimeout = 2 * time.Second
		cfg.View.MinPush = 0 // every lease change is a new picture at once
	})
	owner, epoch := c.AgreedOwner(room.Lobby, 0, 30*time.Second)
	var observer string
	for _, m := range c.Members() {
		if m.Name != owner {
			observer = m.Name
			break
		}
	}
	obs := c.Member(observer).Node
	admin := obs.AdminURL()
	t.Logf("lobby owned by %s at epoch %d; watching from %s", owner, epoch, observer)

	// Pages served by another node's admin listener may read the stream (the view moves between nodes).
	other := c.Member(owner).Node.AdminURL()
	fast := openSSE(t, admin, other)
	if got := fast.resp.Header.Get("Access-Control-Allow-Origin"); got != strings.TrimSuffix(other, "/") {
		t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, other)
	}
	opened := time.Now()
	st := fast.state(10*time.Second, "a state with three ready nodes and the lobby's owner", func(st clusterview.State) bool {
		return len(st.Nodes) == 3 && nodeState(st, "n1") == clusterview.StateReady && nodeState(st, "n2") == clusterview.StateReady &&
			nodeState(st, "n3") == clusterview.StateReady && lobbyOf(st).Owner == owner
	})
	if st.Node != observer || lobbyOf(st).Epoch != epoch || st.Leaders[clusterview.MetaStream] == "" {
		t.Fatalf("state %+v", st)
	}
	for _, stream := range wire.PlacedStreams {
		if _, ok := st.Leaders[stream]; !ok {
			t.Fatalf("state names no leader entry for %s: %v", stream, st.Leaders)
		}
	}

	// The client bound: MaxClients streams, and a refusal beyond.
	extra := []*sse{openSSE(t, admin, ""), openSSE(t, admin, "")}
	resp, err := http.Get(admin + "/api/cluster/events")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), clusterview.ErrTooManyClients.Error()) {
		t.Fatalf("a fourth stream: %d %s, want 503", resp.StatusCode, body)
	}
	for _, s := range extra {
		s.close()
	}
	testingutil.WaitFor(t, 5*time.Second, "the extra streams' slots to free up", func() bool {
		return c.Metric(observer, "tickmesh_view_clients") == 1
	})

	// A client that stops reading: a tiny receive buffer, and never a read.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	u, _ := url.Parse(admin)
	slow, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /api/cluster/events HTTP/1.1\r\nHost: %s\r\n\r\n", u.Host)
	testingutil.WaitFor(t, 5*time.Second, "the slow stream", func() bool { return c.Metric(observer, "tickmesh_view_clients") == 2 })
	dropped := func() int {
		return c.Metric(observer, `tickmesh_view_dropped_total{reason="queue"}`) + c.Metric(observer, `tickmesh_view_dropped_total{reason="write_timeout"}`)
	}

	// Lease churn on rooms nobody serves, written straight to the owners bucket: each write is a takeover event
	// on every node and a new picture (of up to 150 rooms). The reading client gets every event, in order, while
	// the slow one is dropped (its queue fills, or a write to it outlasts the write timeout).
	ctx := context.Background()
	owners, err := obs.Mesh().JetStream().KeyValue(ctx, wire.OwnersBucket)
	if err != nil {
		t.Fatal(err)
	}
	const churnRooms = 150
	churnRoom := func(i uint64) string { return fmt.Sprintf("churn-%03d", i%churnRooms) }
	defer func() {
		for i := range uint64(churnRooms) {
			owners.Delete(ctx, churnRoom(i))
		}
	}()
	var last uint64
	churnStart := time.Now()
	for i := uint64(0); i < churnRooms || i%32 != 0 || dropped() == 0; i++ {
		if time.Since(churnStart) > 2*time.Minute {
			t.Fatalf("the slow client was not dropped after %d writes", i)
		}
		r, epoch := churnRoom(i), i/churnRooms+1
		v, _ := json.Marshal(lease.Value{Node: fmt.Sprintf("ghost-%d", epoch%2), Epoch: epoch, Since: time.Now().UnixMilli()})
		if _, err := owners.Put(ctx, r, v); err != nil {
			t.Fatal(err)
		}
		want := clusterview.HowTaken
		if epoch > 1 {
			want = clusterview.HowStolen
		}
		// Every event reaches the reading client, in order (others, such as leaders moving, may come between).
		e := fast.nextEvent(10*time.Second, fmt.Sprintf("the %s event of %s at epoch %d", want, r, epoch), func(e clusterview.Event) bool {
			if last != 0 && e.Seq != last+1 {
				t.Fatalf("event %+v after seq %d: a gap", e, last)
			}
			last = e.Seq
			return strings.HasPrefix(e.Room, "churn-")
		})
		if e.Room != r || e.Epoch != epoch || e.How != want {
			t.Fatalf("event %+v, want %s of %s at epoch %d", e, want, r, epoch)
		}
	}
	t.Logf("slow client dropped after %d events (queue: %d, write timeout: %d)", last,
		c.Metric(observer, `tickmesh_view_dropped_total{reason="queue"}`), c.Metric(observer, `tickmesh_view_dropped_total{reason="write_timeout"}`))
	testingutil.WaitFor(t, 10*time.Second, "the slow stream's handler to give up", func() bool {
		return c.Metric(observer, "tickmesh_view_clients") == 1
	})
	if got := dropped(); got != 1 {
		t.Fatalf("%d streams dropped, want only the slow one", got)
	}
	if err := owners.Delete(ctx, churnRoom(0)); err != nil {
		t.Fatal(err)
	}
	fast.nextEvent(10*time.Second, "a churn room released", func(e clusterview.Event) bool {
		return e.Room == churnRoom(0) && e.How == clusterview.HowReleased
	})
	fast.log = nil

	// The owner dies: the picture shows the new owner, the timeline the takeover and the pause players saw.
	killed := time.Now()
	c.Kill(owner)
	st = fast.state(30*time.Second, "a state with a new lobby owner", func(st clusterview.State) bool {
		return lobbyOf(st).Owner != owner && lobbyOf(st).Epoch > epoch
	})
	t.Logf("the picture shows %s owning the lobby at epoch %d, %v after the kill", lobbyOf(st).Owner, lobbyOf(st).Epoch, time.Since(killed).Round(time.Millisecond))
	newOwner, newEpoch := lobbyOf(st).Owner, lobbyOf(st).Epoch
	got := fast.event(30*time.Second, "the lobby's takeover", func(e clusterview.Event) bool {
		return e.Kind == clusterview.KindLease && e.Room == room.Lobby && e.Epoch == newEpoch
	})
	if got.How != clusterview.HowStolen || got.Node != newOwner || got.From != owner || got.FromEpoch != epoch || got.Observer != observer {
		t.Fatalf("takeover event %+v, want stolen by %s from %s@%d", got, newOwner, owner, epoch)
	}
	gap := fast.event(30*time.Second, "the lobby's first tick at the new epoch", func(e clusterview.Event) bool {
		return e.Kind == clusterview.KindResumed && e.Room == room.Lobby && e.Epoch == newEpoch
	})
	// The pause is at least the time to notice the death (steal-after, counted from the dead owner's last
	// renewal seen, which may precede its last tick by a renewal interval), and far below the lease TTL.
	rc := c.Member(observer).Config.Room
	if gap.GapMs < float64((rc.StealAfter-rc.RenewInterval).Milliseconds()) || gap.GapMs > 10000 || gap.Node != newOwner || gap.From != owner {
		t.Fatalf("resumed event %+v", gap)
	}
	t.Logf("ticks paused %.1f ms at %s", gap.GapMs, observer)
	dead := fast.event(30*time.Second, "the dead owner's state", func(e clusterview.Event) bool {
		return e.Kind == clusterview.KindNode && e.Node == owner
	})
	if dead.To != clusterview.StateDown && dead.To != clusterview.StateCutOff {
		t.Fatalf("the killed owner went %s → %s (%s), want down (or cut off)", dead.From, dead.To, dead.Detail)
	}

	// Heartbeats keep the stream alive past the admin listener's write timeout.
	fast.until(5*time.Second, "a heartbeat", func(m clusterview.Message) bool { return m.Event == "heartbeat" })
	if time.Since(opened) < 2*writeTimeout {
		t.Fatalf("the test ran %v, not long enough to show the stream outlives the %v write timeout", time.Since(opened), writeTimeout)
	}

	// A new client gets the picture and the recent events at once.
	late := openSSE(t, admin, "")
	late.event(5*time.Second, "the takeover replayed", func(e clusterview.Event) bool {
		return e.Kind == clusterview.KindLease && e.Room == room.Lobby && e.Epoch == newEpoch && e.How == clusterview.HowStolen
	})
}
