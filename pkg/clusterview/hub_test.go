package clusterview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickmesh/tickmesh/pkg/members"
)

// fakeSource is a node whose observations the test sets (pure logic: no NATS involved).
type fakeSource struct {
	mu  sync.Mutex
	obs Observation
}

func (f *fakeSource) Observe(bool, int) Observation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.obs
}

func threeNodes() Observation {
	var ms []members.Info
	for _, n := range []string{"n1", "n2", "n3"} {
		ms = append(ms, members.Info{Name: n, Ready: true, Updated: 1, Admin: "http://" + n})
	}
	return Observation{Nodes: NodesObs{Members: ms, Routed: map[string]bool{"n2": true, "n3": true}, Majority: true},
		Settled: true, Leaders: map[string]string{MetaStream: "n1"}, Rooms: []RoomView{{Room: "lobby", Owner: "n2", Epoch: 4}}, RoomsTotal: 1}
}

// startHub runs a hub and an HTTP server for it (with the given server WriteTimeout) until the test ends.
func startHub(t *testing.T, cfg Config, serverWriteTimeout time.Duration) (*Hub, *httptest.Server, context.CancelFunc) {
	t.Helper()
	h, err := NewHub(cfg, "n1", &fakeSource{obs: threeNodes()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.Run(ctx)
	}()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = serverWriteTimeout
	srv.Start()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return h, srv, cancel
}

func fastConfig() Config {
	cfg := DefaultConfig()
	cfg.Heartbeat = 50 * time.Millisecond
	cfg.Sample = 20 * time.Millisecond
	cfg.WriteTimeout = 300 * time.Millisecond
	return cfg
}

// stream is one client of the hub.
type stream struct {
	t    *testing.T
	resp *http.Response
	r    *Reader
}

func open(t *testing.T, url string) *stream {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	s := &stream{t: t, resp: resp, r: NewReader(resp.Body)}
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() { s.resp.Body.Close() }

// next returns the next message of one of the kinds given (others are skipped).
func (s *stream) next(kinds ...string) Message {
	s.t.Helper()
	for {
		m, err := s.r.Next()
		if err != nil {
			s.t.Fatalf("read stream: %v", err)
		}
		for _, k := range kinds {
			if m.Event == k {
				return m
			}
		}
	}
}

func (s *stream) event() Event {
	s.t.Helper()
	m := s.next("timeline")
	var e Event
	if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
		s.t.Fatalf("timeline data %q: %v", m.Data, err)
	}
	if m.ID != e.ID {
		s.t.Fatalf("SSE id %q, event id %q", m.ID, e.ID)
	}
	return e
}

// steal makes n lease events on room: takeovers between two nodes at rising epochs.
func steal(h *Hub, room string, from, n int) {
	for i := from; i < from+n; i++ {
		h.Lease(put(room, uint64(i), fmt.Sprintf("n%d", 2+i%2), uint64(i)))
	}
}

func TestAStreamStartsWithTheStateThenTheRecentEventsThenChanges(t *testing.T) {
	h, srv, _ := startHub(t, fastConfig(), time.Minute)
	h.Lease(put("lobby", 1, "n3", 1))
	h.LeasesCurrent()
	steal(h, "lobby", 2, 3) // seq 1..3: n2@2, n3@3, n2@4

	s := open(t, srv.URL)
	m := s.next("state", "timeline")
	if m.Event != "state" {
		t.Fatalf("first message %q, want the state", m.Event)
	}
	var st State
	if err := json.Unmarshal([]byte(m.Data), &st); err != nil {
		t.Fatal(err)
	}
	if st.Node != "n1" || st.Boot != h.Boot() || len(st.Nodes) != 3 || st.Rooms[0].Owner != "n2" || st.Leaders[MetaStream] != "n1" {
		t.Fatalf("state %+v", st)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if e := s.event(); e.Seq != seq || e.Kind != KindLease || e.How != HowStolen || e.Observer != "n1" {
			t.Fatalf("replayed event %+v, want seq %d, a takeover seen by n1", e, seq)
		}
	}
	h.Resumed("lobby", 3, 4, "n2", 1234567*time.Microsecond)
	if e := s.event(); e.Seq != 4 || e.Kind != KindResumed || e.GapMs != 1234.567 || e.Node != "n2" {
		t.Fatalf("live event %+v", e)
	}
	var hb struct{ At, Seq int64 }
	if err := json.Unmarshal([]byte(s.next("heartbeat").Data), &hb); err != nil || hb.Seq != 4 || hb.At == 0 {
		t.Fatalf("heartbeat %+v, %v", hb, err)
	}

	// Reconnecting after an event of this process: only what came later.
	again := open(t, srv.URL+"?since="+h.Boot()+"-2")
	if e := again.event(); e.Seq != 3 {
		t.Fatalf("after since=2: seq %d, want 3", e.Seq)
	}
	// An id of another process (a restarted node): everything kept.
	other := open(t, srv.URL+"?since=zzz-3")
	if e := other.event(); e.Seq != 1 {
		t.Fatalf("after another process's id: seq %d, want 1", e.Seq)
	}
	// The SSE reconnect header works too.
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Last-Event-ID", h.Boot()+"-3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	hs := &stream{t: t, resp: resp, r: NewReader(resp.Body)}
	if e := hs.event(); e.Seq != 4 {
		t.Fatalf("after Last-Event-ID 3: seq %d, want 4", e.Seq)
	}

	// A state is pushed when the picture changes, not otherwise.
	src := h.src.(*fakeSource)
	src.mu.Lock()
	src.obs.Rooms = []RoomView{{Room: "lobby", Owner: "n3", Epoch: 5}}
	src.mu.Unlock()
	if err := json.Unmarshal([]byte(s.next("state").Data), &st); err != nil || st.Rooms[0].Owner != "n3" {
		t.Fatalf("pushed state %+v, %v", st, err)
	}
}

func TestTheHistoryIsBounded(t *testing.T) {
	cfg := fastConfig()
	cfg.History = 4
	h, srv, _ := startHub(t, cfg, time.Minute)
	h.LeasesCurrent()
	steal(h, "lobby", 1, 10)
	if evs := h.Events(); len(evs) != 4 || evs[0].Seq != 7 || evs[3].Seq != 10 {
		t.Fatalf("ring %+v, want seq 7..10", evs)
	}
	s := open(t, srv.URL+"?since="+h.Boot()+"-2") // older than the ring: all of it
	for seq := uint64(7); seq <= 10; seq++ {
		if e := s.event(); e.Seq != seq {
			t.Fatalf("seq %d, want %d", e.Seq, seq)
		}
	}
}

// The admin listener has a WriteTimeout (profiles need one); it must not end a stream.
func TestTheStreamOutlivesTheServersWriteTimeout(t *testing.T) {
	_, srv, _ := startHub(t, fastConfig(), 100*time.Millisecond)
	s := open(t, srv.URL)
	start := time.Now()
	for time.Since(start) < time.Second {
		s.next("heartbeat")
	}
}

func TestTheClientBoundHolds(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxClients = 2
	h, srv, _ := startHub(t, cfg, time.Minute)
	a := open(t, srv.URL)
	open(t, srv.URL)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), ErrTooManyClients.Error()) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d %s, want 503 naming the bound", resp.StatusCode, body)
	}
	if got := value(h.refused.WithLabelValues("full")); got != 1 {
		t.Fatalf("refused %v, want 1", got)
	}
	a.close()
	waitFor(t, "a slot to free up", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.active == 1
	})
	open(t, srv.URL)
}

// A client that stops reading fills its socket, then its queue, and is dropped; the producer never waits for it
// and a client that reads gets every event.
func TestASlowClientIsDroppedWithoutHoldingUpOthers(t *testing.T) {
	cfg := fastConfig()
	cfg.QueueLen = 16
	cfg.Heartbeat = time.Hour
	h, srv, _ := startHub(t, cfg, time.Minute)
	h.LeasesCurrent()

	slow := dialSlow(t, srv.Listener.Addr().String(), "/")
	defer slow.Close()
	fast := open(t, srv.URL)
	waitFor(t, "both streams", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.clients) == 2
	})

	// Events in batches smaller than a queue, each batch read by the fast client before the next.
	next := uint64(1)
	for batch := 0; value(h.dropped.WithLabelValues("queue")) == 0; batch++ {
		if batch == 20000 {
			t.Fatalf("the slow client was not dropped after %d events", next-1)
		}
		steal(h, "lobby", int(next), 8)
		for range 8 {
			if e := fast.event(); e.Seq != next {
				t.Fatalf("fast client got seq %d, want %d", e.Seq, next)
			}
			next++
		}
	}
	t.Logf("slow client dropped after %d events", next-1)
	if got := value(h.dropped.WithLabelValues("queue")); got != 1 {
		t.Fatalf("dropped %v, want only the slow client", got)
	}
	// The fast one goes on, and the slow one's stream ends (its handler gives up the write at its deadline).
	steal(h, "lobby", int(next), 1)
	if e := fast.event(); e.Seq != next {
		t.Fatalf("fast client got seq %d after the drop, want %d", e.Seq, next)
	}
	waitFor(t, "the slow stream's handler to return", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.active == 1
	})
	if q, w := value(h.dropped.WithLabelValues("queue")), value(h.dropped.WithLabelValues("write_timeout")); q+w != 1 {
		t.Fatalf("dropped for its queue %v, at its write deadline %v: want one drop in all", q, w)
	}
}

func TestRunEndingEndsEveryStream(t *testing.T) {
	h, srv, cancel := startHub(t, fastConfig(), time.Minute)
	s := open(t, srv.URL)
	s.next("state")
	cancel()
	if m := s.next("bye"); !strings.Contains(m.Data, "shutting down") {
		t.Fatalf("bye %q", m.Data)
	}
	if _, err := s.r.Next(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("after bye: %v, want the end of the stream", err)
	}
	waitFor(t, "a refusal once closed", func() bool {
		resp, err := http.Get(srv.URL)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if got := value(h.refused.WithLabelValues("closed")); got < 1 {
		t.Fatalf("refused as closed %v", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// value is a counter's value.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// A client that stops reading while events come slowly: its queue never fills, but a write to it blocks, and it
// is dropped when that write's deadline passes.
func TestASlowClientIsDroppedAtItsWriteDeadline(t *testing.T) {
	cfg := fastConfig()
	cfg.QueueLen = 1 << 20
	cfg.Heartbeat = time.Hour
	cfg.WriteTimeout = 100 * time.Millisecond
	h, srv, _ := startHub(t, cfg, time.Minute)
	h.LeasesCurrent()
	slow := dialSlow(t, srv.Listener.Addr().String(), "/")
	defer slow.Close()
	waitFor(t, "the stream", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.clients) == 1
	})
	for i := 1; value(h.dropped.WithLabelValues("write_timeout")) == 0; i += 64 {
		if i > 1_000_000 {
			t.Fatal("the slow client was not dropped")
		}
		steal(h, "lobby", i, 64)
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "the slow stream's handler to return", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.active == 0
	})
	if got := value(h.dropped.WithLabelValues("queue")); got != 0 {
		t.Fatalf("dropped for its queue %v times, want 0", got)
	}
}

// dialSlow opens a stream with a tiny receive buffer and never reads it.
func dialSlow(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	return conn
}
