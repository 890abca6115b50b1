package clusterview

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config of a Hub. DefaultConfig gives every field; Validate checks them.
type Config struct {
	MaxClients   int           // concurrent streams; one more is refused with 503
	QueueLen     int           // messages queued for one stream; a client whose queue is full is dropped
	History      int           // recent events kept and replayed to a new client
	Heartbeat    time.Duration // a heartbeat message this often, so that clients notice a silent stream
	Sample       time.Duration // membership, routes, leaders and players are sampled this often
	MinPush      time.Duration // a lease change redraws the picture no sooner than this after the last sample
	WriteTimeout time.Duration // one write to a client (the stream as a whole has no deadline)
	MaxRooms     int           // rooms listed in a state (RoomsTotal counts them all)

	// Tracker settings (TrackerConfig; Stale is the node's membership staleness, set by pkg/node).
	Stale         time.Duration
	Abrupt        time.Duration
	HandoffWindow time.Duration
	ForgetRooms   time.Duration
	ForgetNodes   time.Duration
	MaxNodes      int

	Now func() time.Time // the clock of events and states; nil is time.Now
}

// DefaultConfig: 16 clients of 256 queued messages each, 256 events of history, a heartbeat every 2 s, samples
// every 500 ms (and 100 ms after a lease change), 5 s per write, 200 rooms per state.
func DefaultConfig() Config {
	return Config{
		MaxClients: 16, QueueLen: 256, History: 256, Heartbeat: 2 * time.Second, Sample: 500 * time.Millisecond,
		MinPush: 100 * time.Millisecond, WriteTimeout: 5 * time.Second, MaxRooms: 200,
		Stale: 5 * time.Second, Abrupt: 2 * time.Second, HandoffWindow: 5 * time.Second,
		ForgetRooms: time.Minute, ForgetNodes: time.Hour, MaxNodes: 64,
	}
}

// Validate checks every setting.
func (c Config) Validate() error {
	switch {
	case c.MaxClients < 1 || c.QueueLen < 1 || c.History < 1 || c.MaxRooms < 1 || c.MaxNodes < 1:
		return fmt.Errorf("cluster view: max clients, queue length, history, max rooms and max nodes must be at least 1: %+v", c)
	case c.Heartbeat <= 0 || c.Sample <= 0 || c.MinPush < 0 || c.WriteTimeout <= 0:
		return fmt.Errorf("cluster view: heartbeat, sample and write timeout must be positive: %+v", c)
	case c.Stale <= 0 || c.Abrupt <= 0 || c.HandoffWindow <= 0 || c.ForgetRooms <= 0 || c.ForgetNodes <= 0:
		return fmt.Errorf("cluster view: tracker durations must be positive: %+v", c)
	}
	return nil
}

// Observation is one sample of the node (Source.Observe).
type Observation struct {
	Nodes      NodesObs
	Settled    bool              // the node has been ready at least once
	Leaders    map[string]string // MetaStream and stream names → leader ("" = none)
	Rooms      []RoomView        // at most the maxRooms asked for, in the order shown
	RoomsTotal int
}

// Source is the node the hub observes.
type Source interface {
	// Observe samples the node. withPlayers asks for the rooms' player counts (a decode of each listed room's
	// last tick), which is only worth it while someone watches.
	Observe(withPlayers bool, maxRooms int) Observation
}

var (
	// ErrTooManyClients refuses a stream beyond Config.MaxClients.
	ErrTooManyClients = errors.New("too many cluster view streams")
	// ErrClosed refuses a stream once the hub stopped (the node is shutting down).
	ErrClosed = errors.New("cluster view closed: the node is shutting down")
)

// Hub derives the picture and the timeline from a Source and the ownership observations it is handed (Lease,
// LeasesCurrent, Resumed), and serves them as Server-Sent Events.
type Hub struct {
	cfg  Config
	self string
	boot string
	src  Source
	now  func() time.Time

	wake chan struct{} // a redraw is due (a lease changed hands, a client joined)
	done chan struct{} // closed when Run ends: every stream ends

	clientsGauge prometheus.GaugeFunc
	dropped      *prometheus.CounterVec
	refused      *prometheus.CounterVec
	events       *prometheus.CounterVec

	mu         sync.Mutex
	tracker    *Tracker             // guarded by mu
	ring       []Event              // guarded by mu: the last History events, oldest first
	frames     [][]byte             // guarded by mu: ring's SSE frames
	seq        uint64               // guarded by mu: the last event's Seq
	stateJSON  []byte               // guarded by mu: the last state pushed
	stateFrame []byte               // guarded by mu
	clients    map[*client]struct{} // guarded by mu: streams the hub sends to
	active     int                  // guarded by mu: streams being served (those dropped included, until their handler returns)
	closed     bool                 // guarded by mu
}

// client is one stream's queue.
type client struct {
	q    chan []byte
	gone chan struct{} // closed when the hub drops the client
}

// NewHub makes a hub for node self; Run starts it.
func NewHub(cfg Config, self string, src Source) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	h := &Hub{
		cfg: cfg, self: self, src: src, now: now, boot: strconv.FormatInt(time.Now().UnixNano(), 36),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		tracker: NewTracker(TrackerConfig{Self: self, Stale: cfg.Stale, Abrupt: cfg.Abrupt, HandoffWindow: cfg.HandoffWindow,
			ForgetRooms: cfg.ForgetRooms, ForgetNodes: cfg.ForgetNodes, MaxNodes: cfg.MaxNodes}),
		clients: map[*client]struct{}{},
	}
	ns := "tickmesh_view_"
	h.clientsGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ns + "clients", Help: "Cluster view streams served now."},
		func() float64 {
			h.mu.Lock()
			defer h.mu.Unlock()
			return float64(h.active)
		})
	h.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "dropped_total", Help: "Cluster view streams dropped because their client did not keep up: its queue filled (queue) or a write to it took longer than the write timeout (write_timeout)."}, []string{"reason"})
	h.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "refused_total", Help: "Cluster view streams refused, by reason."}, []string{"reason"})
	h.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "events_total", Help: "Timeline events derived by this node, by kind."}, []string{"kind"})
	return h, nil
}

// Collectors are the hub's Prometheus metrics.
func (h *Hub) Collectors() []prometheus.Collector {
	return []prometheus.Collector{h.clientsGauge, h.dropped, h.refused, h.events}
}

// Boot identifies this hub's process in event ids.
func (h *Hub) Boot() string { return h.boot }

// Run samples the source every Sample (and soon after each lease change), sends heartbeats, and when ctx ends
// ends every stream and returns.
func (h *Hub) Run(ctx context.Context) error {
	sample := time.NewTicker(h.cfg.Sample)
	defer sample.Stop()
	beat := time.NewTicker(h.cfg.Heartbeat)
	defer beat.Stop()
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	defer soon.Stop()
	armed := false
	last := time.Now()
	h.sample()
	for {
		select {
		case <-ctx.Done():
			h.mu.Lock()
			h.closed = true
			close(h.done)
			h.mu.Unlock()
			return nil
		case <-sample.C:
		case <-h.wake:
			if wait := h.cfg.MinPush - time.Since(last); wait > 0 {
				if !armed {
					soon.Reset(wait)
					armed = true
				}
				continue
			}
		case <-soon.C:
			armed = false
		case <-beat.C:
			h.heartbeat()
			continue
		}
		last = time.Now()
		h.sample()
	}
}

// poke asks Run for a redraw soon.
func (h *Hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// sample observes the source and pushes the node and leader events and, when it changed, the state.
func (h *Hub) sample() {
	h.mu.Lock()
	watched := len(h.clients) > 0
	h.mu.Unlock()
	obs := h.src.Observe(watched, h.cfg.MaxRooms)
	now := h.now()

	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.tracker.Nodes(now, obs.Nodes, obs.Settled)
	evs = append(evs, h.tracker.Leaders(now, obs.Leaders, obs.Settled)...)
	h.tracker.Sweep(now)
	h.recordLocked(evs)
	rooms := obs.Rooms
	if rooms == nil {
		rooms = []RoomView{}
	}
	st := State{Node: h.self, Boot: h.boot, Nodes: h.tracker.NodeViews(), Rooms: rooms[:min(len(rooms), h.cfg.MaxRooms)],
		RoomsTotal: obs.RoomsTotal, Leaders: h.tracker.LeaderMap()}
	if st.Leaders == nil {
		st.Leaders = map[string]string{}
	}
	data, err := json.Marshal(st)
	if err != nil || bytes.Equal(data, h.stateJSON) {
		return
	}
	h.stateJSON, h.stateFrame = data, frame("", "state", data)
	h.broadcastLocked(h.stateFrame)
}

// Lease takes an owners bucket entry (the owners watcher's goroutine: never blocks).
func (h *Hub) Lease(o LeaseObs) {
	h.mu.Lock()
	evs, changed := h.tracker.Lease(h.now(), o)
	h.recordLocked(evs)
	h.mu.Unlock()
	if changed {
		h.poke()
	}
}

// LeasesCurrent marks the end of the owners watcher's replay.
func (h *Hub) LeasesCurrent() {
	h.mu.Lock()
	h.tracker.LeasesCurrent()
	h.mu.Unlock()
}

// Resumed takes the relay's first tick of a new epoch, published by owner (a relay delivery goroutine: never
// blocks).
func (h *Hub) Resumed(room string, from, to uint64, owner string, gap time.Duration) {
	h.mu.Lock()
	h.recordLocked(h.tracker.Resumed(h.now(), room, from, to, owner, gap))
	h.mu.Unlock()
	h.poke()
}

// Events is a copy of the ring of recent events, oldest first.
func (h *Hub) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.ring...)
}

// recordLocked numbers events, keeps them in the ring and sends them to every client.
func (h *Hub) recordLocked(evs []Event) {
	for _, e := range evs {
		h.seq++
		e.Seq, e.ID, e.Observer = h.seq, h.boot+"-"+strconv.FormatUint(h.seq, 10), h.self
		data, err := json.Marshal(e)
		if err != nil {
			continue
		}
		f := frame(e.ID, "timeline", data)
		if len(h.ring) == h.cfg.History {
			copy(h.ring, h.ring[1:])
			copy(h.frames, h.frames[1:])
			h.ring, h.frames = h.ring[:len(h.ring)-1], h.frames[:len(h.frames)-1]
		}
		h.ring, h.frames = append(h.ring, e), append(h.frames, f)
		h.events.WithLabelValues(e.Kind).Inc()
		h.broadcastLocked(f)
	}
}

func (h *Hub) heartbeat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcastLocked(frame("", "heartbeat", fmt.Appendf(nil, `{"at":%d,"seq":%d}`, h.now().UnixMilli(), h.seq)))
}

// broadcastLocked queues f for every client; a client whose queue is full is dropped, never waited for.
func (h *Hub) broadcastLocked(f []byte) {
	for c := range h.clients {
		select {
		case c.q <- f:
		default:
			delete(h.clients, c)
			close(c.gone)
			h.dropped.WithLabelValues("queue").Inc()
		}
	}
}

// frame is one SSE message.
func frame(id, event string, data []byte) []byte {
	var b bytes.Buffer
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return b.Bytes()
}

// retryFrame tells EventSource how long to wait before reconnecting by itself.
var retryFrame = []byte("retry: 2000\n\n")

// join registers a stream and returns what it starts with: the retry hint, the state and the events after
// since (all of the ring when since is another process's or older than the ring).
func (h *Hub) join(since string) (*client, [][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		h.refused.WithLabelValues("closed").Inc()
		return nil, nil, ErrClosed
	case h.active >= h.cfg.MaxClients:
		h.refused.WithLabelValues("full").Inc()
		return nil, nil, ErrTooManyClients
	}
	h.active++
	c := &client{q: make(chan []byte, h.cfg.QueueLen), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	out := [][]byte{retryFrame}
	if h.stateFrame != nil {
		out = append(out, h.stateFrame)
	}
	from := 0
	if boot, seq, ok := strings.Cut(since, "-"); ok && boot == h.boot {
		if n, err := strconv.ParseUint(seq, 10, 64); err == nil {
			for from < len(h.ring) && h.ring[from].Seq <= n {
				from++
			}
		}
	}
	out = append(out, h.frames[from:]...)
	return c, out, nil
}

func (h *Hub) leave(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.gone)
	}
	h.active--
}

// maxBatch bounds the queued messages written before one flush.
const maxBatch = 64

// ServeHTTP streams the picture and the timeline: the state and the recent events at once (after the event id
// in ?since= or Last-Event-ID, when it is one of this process's), then every change, with heartbeats.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	since := r.URL.Query().Get("since")
	if since == "" {
		since = r.Header.Get("Last-Event-ID")
	}
	c, initial, err := h.join(since)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	defer h.leave(c)
	h.poke() // a state with player counts, which are only sampled while someone watches
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(frames [][]byte) (err error) {
		defer func() {
			select {
			case <-c.gone: // dropped already, for its queue
			default:
				if errors.Is(err, os.ErrDeadlineExceeded) {
					h.dropped.WithLabelValues("write_timeout").Inc()
				}
			}
		}()
		// Each write gets its own deadline, replacing the server's WriteTimeout (which would end the stream).
		if err := rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)); err != nil {
			return err
		}
		for _, f := range frames {
			if _, err := w.Write(f); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	if send(initial) != nil {
		return
	}
	batch := make([][]byte, 0, maxBatch)
	for {
		select {
		case f := <-c.q:
			batch = append(batch[:0], f)
		more:
			for len(batch) < maxBatch {
				select {
				case f := <-c.q:
					batch = append(batch, f)
				default:
					break more
				}
			}
			if send(batch) != nil {
				return
			}
		case <-c.gone:
			return
		case <-r.Context().Done():
			return
		case <-h.done:
			_ = send([][]byte{frame("", "bye", []byte(`{"reason":"the node is shutting down"}`))})
			return
		}
	}
}
