package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Config of a load run.
type Config struct {
	URLs      []string      // WebSocket endpoints, used round robin
	Clients   int           // sockets to open
	Room      string        // room, or room name prefix when Rooms > 1
	Rooms     int           // spread clients over this many rooms (Room-0 .. Room-<Rooms-1>) when > 1
	Ramp      time.Duration // connections are spread evenly over the ramp
	Duration  time.Duration // measurement window, after the ramp
	InputRate float64       // inputs per second per client; 0: idle
	TickRate  int           // the server's tick rate, for the expected tick count
	PID       int           // server process to sample (0: none)
	Sample    int           // record the tick latency of every Sample-th tick of a client
	Name      string        // player name prefix
	Progress  io.Writer     // progress lines (nil: none)
}

func (c Config) validate() error {
	switch {
	case len(c.URLs) == 0:
		return errors.New("no -url")
	case c.Clients < 1:
		return errors.New("-n must be at least 1")
	case c.Rooms < 1:
		return errors.New("-rooms must be at least 1")
	case !protocol.ValidRoom(c.roomOf(c.Clients - 1)):
		return fmt.Errorf("room %q is not a valid room name", c.roomOf(c.Clients-1))
	case c.Duration <= 0 || c.Ramp < 0:
		return errors.New("-duration must be positive and -ramp not negative")
	case c.InputRate < 0 || c.InputRate > protocol.DefaultRate:
		return fmt.Errorf("-input-rate must be in [0, %d] (the server's sustained limit)", protocol.DefaultRate)
	case c.TickRate < 1 || c.Sample < 1:
		return errors.New("-tick-rate and -sample must be positive")
	}
	return nil
}

// roomOf is client i's room.
func (c Config) roomOf(i int) string {
	if c.Rooms <= 1 {
		return c.Room
	}
	return fmt.Sprintf("%s-%d", c.Room, i%c.Rooms)
}

// window is the measurement window: ticks and inputs count when their time falls inside it.
type window struct{ start, end atomic.Int64 } // Unix nanoseconds; 0: not yet

func (w *window) contains(t time.Time) bool {
	s, e := w.start.Load(), w.end.Load()
	n := t.UnixNano()
	return s != 0 && n >= s && (e == 0 || n < e)
}

// frameBufs recycles frame buffers across clients: a tick of a big room is 100+ KB.
var frameBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// pendingInput is an input waiting for its acknowledgement in a tick.
type pendingInput struct {
	seq    uint64
	sentAt time.Time
}

// maxPending bounds the inputs a client waits for (a player refused by a full room never gets an ack).
const maxPending = 64

// client is one socket. Its reader goroutine owns the counters; the input sender goroutines only touch what
// is under mu.
type client struct {
	i      int
	url    string
	room   string
	name   string
	win    *window
	sample int
	ws     *websocket.Conn

	welcomed atomic.Bool
	closed   atomic.Bool
	needle   []byte // `"id":"<player>"`, set before welcomed

	mu      sync.Mutex // the writer side: ws writes, seq, pending
	seq     uint64
	pending []pendingInput
	sent    uint64 // inputs sent within the window

	// Reader-owned; read by the report after the reader ended.
	failure   string
	closeCode int
	closedAt  time.Time
	seen      bool
	haveLast  bool
	lastEpoch uint64
	lastSeq   uint64
	nTicks    uint64 // all ticks since the welcome
	ticks     uint64 // within the window
	bytes     uint64
	skipped   uint64
	disorder  uint64
	lat       []float64
	inLat     []float64
	acked     uint64
	errs      map[string]int
	// The span of tick seqs of the client's room within the window, per epoch: what its owner published.
	spanOpen                       bool
	spanEpoch, spanStart, spanLast uint64
	span                           uint64
}

// publishedSpan is the number of ticks the client's room published within the window (as far as seen).
func (c *client) publishedSpan() uint64 {
	if !c.spanOpen {
		return c.span
	}
	return c.span + c.spanLast - c.spanStart + 1
}

// tickHeader is what loadgen reads of a tick.
type tickHeader struct {
	epoch, seq uint64
	time       int64 // owner's publish time, Unix ms
}

var tickPrefix = []byte(`{"type":"tick",`)

// parseTickHeader reads epoch, seq and time from a tick frame in canonical form (docs/PROTOCOL.md: "type"
// first, then the fields in order, players last), without decoding the players. ok is false for any other
// frame.
func parseTickHeader(data []byte) (h tickHeader, ok bool) {
	if !bytes.HasPrefix(data, tickPrefix) {
		return h, false
	}
	head := data[:min(len(data), 512)]
	if i := bytes.Index(head, []byte(`"players":`)); i >= 0 {
		head = head[:i]
	}
	var e, s, t bool
	h.epoch, e = uintAfter(head, []byte(`,"epoch":`))
	h.seq, s = uintAfter(head, []byte(`,"seq":`))
	tm, t := uintAfter(head, []byte(`,"time":`))
	h.time = int64(tm)
	return h, e && s && t
}

// uintAfter parses the unsigned integer that follows key in data.
func uintAfter(data, key []byte) (uint64, bool) {
	i := bytes.Index(data, key)
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(key):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 19 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	return v, err == nil
}

// findAck returns the ack of the player whose `"id":"..."` member is needle in a tick frame. A literal `"ack":`
// cannot occur inside a JSON string (its quotes would be escaped), and a player's members come in a fixed order
// (id, name, ..., ack), so the first one after the id is the player's.
func findAck(data, needle []byte) (uint64, bool) {
	i := bytes.Index(data, needle)
	if i < 0 {
		return 0, false
	}
	return uintAfter(data[i+len(needle):], []byte(`"ack":`))
}

// serverFrame is what loadgen reads of a frame other than a tick.
type serverFrame struct {
	Type   string `json:"type"`
	Player string `json:"player"`
	Code   string `json:"code"`
}

// run connects, says hello and reads until the socket closes. settle is called once: welcomed or failed.
func (c *client) run(ctx context.Context, d *websocket.Dialer, settle func()) {
	settled := false
	done := func() {
		if !settled {
			settled = true
			settle()
		}
	}
	defer done()
	defer c.closed.Store(true)
	ws, resp, err := d.DialContext(ctx, c.url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		c.failure = reason("dial", err)
		return
	}
	defer ws.Close()
	hello, _ := protocol.Encode(&protocol.Hello{Protocol: protocol.Version, Name: c.name, Room: c.room})
	c.mu.Lock()
	c.ws = ws
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err = ws.WriteMessage(websocket.TextMessage, hello)
	c.seq = 1
	c.mu.Unlock()
	if err != nil {
		c.failure = reason("hello", err)
		return
	}
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			c.closeCode = websocket.CloseAbnormalClosure
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closeCode = ce.Code
			}
			if !c.welcomed.Load() {
				if ctx.Err() != nil {
					c.failure = "cancelled"
				} else if c.closeCode != websocket.CloseAbnormalClosure {
					c.failure = "closed " + strconv.Itoa(c.closeCode)
				} else {
					c.failure = reason("before welcome", err)
				}
			}
			c.closedAt = time.Now()
			return
		}
		buf := frameBufs.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(r)
		now := time.Now()
		if err == nil {
			if c.frame(buf.Bytes(), now) {
				done()
				_ = ws.SetReadDeadline(time.Time{})
			}
		}
		frameBufs.Put(buf)
	}
}

// frame handles one server frame; it reports whether it was the welcome.
func (c *client) frame(data []byte, now time.Time) bool {
	h, ok := parseTickHeader(data)
	if !ok {
		var f serverFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return false
		}
		switch f.Type {
		case protocol.TypeWelcome:
			c.needle = []byte(`"id":"` + f.Player + `"`)
			c.welcomed.Store(true)
			return true
		case protocol.TypeError:
			if c.errs == nil {
				c.errs = map[string]int{}
			}
			c.errs[f.Code]++
		}
		return false
	}
	in := c.win.contains(now)
	if c.haveLast && (h.epoch < c.lastEpoch || h.epoch == c.lastEpoch && h.seq <= c.lastSeq) {
		if in {
			c.disorder++
		}
		return false
	}
	if in && c.haveLast && h.epoch == c.lastEpoch && h.seq > c.lastSeq+1 {
		c.skipped += h.seq - c.lastSeq - 1
	}
	c.haveLast, c.lastEpoch, c.lastSeq = true, h.epoch, h.seq
	c.nTicks++
	if in {
		if !c.spanOpen || h.epoch != c.spanEpoch {
			c.span = c.publishedSpan()
			c.spanOpen, c.spanEpoch, c.spanStart = true, h.epoch, h.seq
		}
		c.spanLast = h.seq
		c.ticks++
		c.bytes += uint64(len(data))
		if c.ticks%uint64(c.sample) == 0 {
			c.lat = append(c.lat, float64(now.UnixNano())/1e6-float64(h.time))
		}
	}
	// The player's own entry: until it shows up once (every 10th tick), and while inputs wait for their ack.
	c.mu.Lock()
	waiting := len(c.pending) > 0
	c.mu.Unlock()
	if waiting || (!c.seen && c.nTicks%10 == 1) {
		if ack, found := findAck(data, c.needle); found {
			c.seen = true
			c.resolve(ack, now)
		}
	}
	return false
}

// resolve records the latency of every pending input that ack acknowledges.
func (c *client) resolve(ack uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for _, p := range c.pending {
		if p.seq <= ack {
			c.inLat = append(c.inLat, float64(now.Sub(p.sentAt))/1e6)
			c.acked++
			continue
		}
		c.pending[k] = p
		k++
	}
	c.pending = c.pending[:k]
}

// keyCycle walks a player around a square.
var keyCycle = []protocol.Keys{{Right: true}, {Down: true}, {Left: true}, {Up: true}}

// input sends the client's next key state.
func (c *client) input() {
	if !c.welcomed.Load() || c.closed.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	frame, _ := protocol.Encode(&protocol.Input{Seq: c.seq, Keys: keyCycle[c.seq%uint64(len(keyCycle))]})
	now := time.Now()
	_ = c.ws.SetWriteDeadline(now.Add(time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return
	}
	if c.win.contains(now) {
		c.sent++
		if len(c.pending) == maxPending {
			c.pending = c.pending[1:]
		}
		c.pending = append(c.pending, pendingInput{seq: c.seq, sentAt: now})
	}
}

// close says goodbye (1000).
func (c *client) close() {
	if c.ws == nil || c.closed.Load() {
		return
	}
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"), time.Now().Add(time.Second))
}

// addrs matches the addresses in network errors, which would make every failure reason unique.
var addrs = regexp.MustCompile(`\[?[0-9a-fA-F:.]+\]?:[0-9]+`)

// reason names a failure for the report: what failed and the kind of error, without addresses.
func reason(stage string, err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return stage + ": timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return stage + ": EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return stage + ": connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return stage + ": connection refused"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return stage + ": too many open files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return stage + ": no local port left"
	case errors.Is(err, websocket.ErrBadHandshake):
		return stage + ": bad handshake"
	}
	s := addrs.ReplaceAllString(err.Error(), "ADDR")
	if len(s) > 80 {
		s = s[:80]
	}
	return stage + ": " + s
}

// sendInputs sends every client of cs an input rate times a second, spread evenly, until ctx ends.
func sendInputs(ctx context.Context, cs []*client, rate float64) {
	if rate <= 0 || len(cs) == 0 {
		return
	}
	start := time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var sent uint64
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := uint64(now.Sub(start).Seconds() * rate * float64(len(cs)))
			for ; sent < due; sent++ {
				cs[next].input()
				next = (next + 1) % len(cs)
			}
		}
	}
}

// Run performs a load run and reports on it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	progress := func(format string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "loadgen: "+format+"\n", a...)
		}
	}
	var serverBefore procSample
	var serverErr error
	if cfg.PID > 0 {
		serverBefore, serverErr = sampleProc(cfg.PID)
	}
	selfPID := os.Getpid()
	selfBefore, _ := sampleProc(selfPID)

	win := &window{}
	d := &websocket.Dialer{HandshakeTimeout: 15 * time.Second, WriteBufferPool: &sync.Pool{}}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clients := make([]*client, cfg.Clients)
	var readers, settled sync.WaitGroup
	begin := time.Now()
	for i := range clients {
		c := &client{i: i, url: cfg.URLs[i%len(cfg.URLs)], room: cfg.roomOf(i), name: fmt.Sprintf("%s%d", cfg.Name, i),
			win: win, sample: cfg.Sample}
		clients[i] = c
		at := begin
		if cfg.Clients > 1 {
			at = begin.Add(cfg.Ramp * time.Duration(i) / time.Duration(cfg.Clients))
		}
		readers.Add(1)
		settled.Add(1)
		go func() {
			defer readers.Done()
			if wait := time.Until(at); wait > 0 {
				select {
				case <-time.After(wait):
				case <-cctx.Done():
					settled.Done()
					c.failure = "cancelled"
					c.closed.Store(true)
					return
				}
			}
			c.run(cctx, d, settled.Done)
		}()
	}
	// Inputs: a few sender goroutines, each for a share of the clients.
	inCtx, stopInputs := context.WithCancel(cctx)
	defer stopInputs()
	var senders sync.WaitGroup
	if cfg.InputRate > 0 {
		shards := min(8, len(clients))
		for s := range shards {
			var cs []*client
			for i := s; i < len(clients); i += shards {
				cs = append(cs, clients[i])
			}
			senders.Add(1)
			go func() {
				defer senders.Done()
				sendInputs(inCtx, cs, cfg.InputRate)
			}()
		}
	}

	waitCh := make(chan struct{})
	go func() {
		settled.Wait()
		close(waitCh)
	}()
	progressTick := time.NewTicker(5 * time.Second)
	defer progressTick.Stop()
wait:
	for {
		select {
		case <-waitCh:
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-progressTick.C:
			progress("ramping: %d of %d welcomed after %v", countWelcomed(clients), len(clients), time.Since(begin).Round(time.Second))
		}
	}
	// Let the last joins land before measuring.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	connected := countOpen(clients)
	progress("%d of %d clients welcomed and open after %v; measuring for %v", connected, len(clients), time.Since(begin).Round(100*time.Millisecond), cfg.Duration)

	var serverStart, serverEnd procSample
	if cfg.PID > 0 && serverErr == nil {
		serverStart, serverErr = sampleProc(cfg.PID)
	}
	selfStart, _ := sampleProc(selfPID)
	coresStart, coresErr := sampleCores()
	startAt := time.Now()
	win.start.Store(startAt.UnixNano())
	end := time.NewTimer(cfg.Duration)
	defer end.Stop()
measure:
	for {
		select {
		case <-end.C:
			break measure
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-progressTick.C:
			progress("%v: %d open", time.Since(startAt).Round(time.Second), len(clients)-countClosed(clients))
		}
	}
	endAt := time.Now()
	win.end.Store(endAt.UnixNano())
	if cfg.PID > 0 && serverErr == nil {
		serverEnd, serverErr = sampleProc(cfg.PID)
	}
	selfEnd, _ := sampleProc(selfPID)
	coresEnd, coresEndErr := sampleCores()
	openAtEnd := len(clients) - countClosed(clients)

	stopInputs()
	senders.Wait()
	for _, c := range clients {
		if c.welcomed.Load() {
			c.mu.Lock()
			c.close()
			c.mu.Unlock()
		}
	}
	// Give the server a moment to answer the closes, then cut whatever is left.
	finished := make(chan struct{})
	go func() {
		readers.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		cancel()
		for _, c := range clients {
			c.mu.Lock()
			if c.ws != nil {
				c.ws.Close()
			}
			c.mu.Unlock()
		}
		<-finished
	}

	windowSec := endAt.Sub(startAt).Seconds()
	r := build(cfg, clients, connected, openAtEnd, startAt, endAt)
	if cfg.PID > 0 {
		if serverErr != nil {
			r.Server = &ProcReport{PID: cfg.PID, SampleErrorsText: serverErr.Error()}
		} else {
			r.Server = procReport(cfg.PID, serverBefore, serverStart, serverEnd, windowSec, r.TicksDelivered, connected)
		}
	}
	r.Loadgen = procReport(selfPID, selfBefore, selfStart, selfEnd, windowSec, r.TicksDelivered, connected)
	if coresErr == nil && coresEndErr == nil {
		r.CoreBusy = coreBusy(coresStart, coresEnd)
	}
	return r, nil
}

func countWelcomed(cs []*client) int {
	n := 0
	for _, c := range cs {
		if c.welcomed.Load() {
			n++
		}
	}
	return n
}

// countOpen counts the welcomed clients still open.
func countOpen(cs []*client) int {
	n := 0
	for _, c := range cs {
		if c.welcomed.Load() && !c.closed.Load() {
			n++
		}
	}
	return n
}

func countClosed(cs []*client) int {
	n := 0
	for _, c := range cs {
		if c.closed.Load() {
			n++
		}
	}
	return n
}

// build aggregates the clients' counters (their readers have ended) into a report.
func build(cfg Config, clients []*client, connected, openAtEnd int, startAt, endAt time.Time) *Report {
	windowSec := endAt.Sub(startAt).Seconds()
	r := &Report{
		Config: ReportConfig{URLs: cfg.URLs, Clients: cfg.Clients, Room: cfg.Room, Rooms: cfg.Rooms, Ramp: cfg.Ramp.String(),
			Duration: cfg.Duration.String(), InputRate: cfg.InputRate, Sample: cfg.Sample},
		Requested: cfg.Clients, Connected: connected, OpenAtWindowEnd: openAtEnd, WindowSeconds: windowSec, TickRate: cfg.TickRate,
		Failed: map[string]int{}, ClosedInWindow: map[string]int{}, ClosedBeforeWindow: map[string]int{}, ErrorFrames: map[string]int{},
	}
	var lat, inLat []float64
	var bytesIn uint64
	for _, c := range clients {
		if c.failure != "" {
			r.Failed[c.failure]++
		}
		if c.welcomed.Load() && !c.closedAt.IsZero() {
			switch {
			case c.closedAt.Before(startAt):
				r.ClosedBeforeWindow[strconv.Itoa(c.closeCode)]++
			case c.closedAt.Before(endAt):
				r.ClosedInWindow[strconv.Itoa(c.closeCode)]++
			}
		}
		if c.seen {
			r.SeenInTicks++
		}
		r.TicksDelivered += c.ticks
		r.TicksPublished += c.publishedSpan()
		r.TicksSkipped += c.skipped
		r.TicksOutOfOrder += c.disorder
		r.InputsSent += c.sent
		r.InputsAcked += c.acked
		bytesIn += c.bytes
		lat = append(lat, c.lat...)
		inLat = append(inLat, c.inLat...)
		for code, n := range c.errs {
			r.ErrorFrames[code] += n
		}
	}
	r.TickLatency = summarize(lat)
	r.InputLatency = summarize(inLat)
	r.finish(bytesIn)
	return r
}

// finish computes the derived rates.
func (r *Report) finish(bytesIn uint64) {
	if r.WindowSeconds > 0 {
		r.TicksPerSecond = float64(r.TicksDelivered) / r.WindowSeconds
		r.BytesPerSecond = float64(bytesIn) / r.WindowSeconds
	}
	r.TicksExpected = r.WindowSeconds * float64(r.TickRate) * float64(r.Connected)
	if r.TicksExpected > 0 {
		r.FractionDelivered = float64(r.TicksDelivered) / r.TicksExpected
	}
	if r.TicksPublished > 0 {
		r.FractionOfPublished = float64(r.TicksDelivered) / float64(r.TicksPublished)
	}
	if r.Connected > 0 && r.WindowSeconds > 0 {
		r.RoomTickRate = float64(r.TicksPublished) / float64(r.Connected) / r.WindowSeconds
	}
}
