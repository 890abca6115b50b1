package main

import (
	"context"
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

	"github.com/tickmesh/tickmesh/internal/procfs"
	tmclient "github.com/tickmesh/tickmesh/pkg/client"
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
	Nodes     []NodeSpec    // the nodes of the cluster under test (-node), for the input-heavy report
	Progress  io.Writer     // progress lines (nil: none)
	// Protocol is the protocol the clients speak: 1 (JSON ticks) or 2 (binary keyframes and deltas, read by a
	// light client: the tick's position and the client's own ack, without keeping the room's state).
	Protocol int
	// Moving is the share of each room's clients that hold a key all along (the arena's players walk), each
	// changing direction every TurnEvery, at its own moment.
	Moving    float64
	TurnEvery time.Duration
	// Stores are the clients' sessions, one per client (nil: new players). A run given the stores of an
	// earlier one resumes its players: the rooms keep their size from one run to the next.
	Stores []tmclient.Store
	// Between is the pause between the runs of several protocols (main's loop).
	Between time.Duration
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
	case c.Protocol < protocol.Version || c.Protocol > protocol.MaxVersion:
		return fmt.Errorf("-protocol %d: want 1 or 2", c.Protocol)
	case c.Moving < 0 || c.Moving > 1 || (c.Moving > 0 && c.TurnEvery <= 0):
		return errors.New("-moving must be in [0, 1], with a positive -turn-every")
	case c.Stores != nil && len(c.Stores) != c.Clients:
		return errors.New("one store per client")
	}
	return nil
}

// mover reports whether client i holds a key: the first Moving share of its room's clients.
func (c Config) mover(i int) bool {
	rooms := max(c.Rooms, 1)
	perRoom := (c.Clients + rooms - 1) / rooms
	return float64(i/rooms) < c.Moving*float64(perRoom)
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

// pendingInput is an input waiting for its acknowledgement in a tick.
type pendingInput struct {
	seq    uint64
	sentAt time.Time
}

// maxPending bounds the inputs a client waits for (a player refused by a full room never gets an ack).
const maxPending = 64

// client is one socket (a pkg/client Client that does not reconnect). Its Run goroutine owns the counters; the
// input sender goroutines only touch what is under mu.
type client struct {
	i      int
	win    *window
	sample int
	cl     *tmclient.Client

	welcomed atomic.Bool
	closed   atomic.Bool

	mu      sync.Mutex // the input side: pending, sent, inputs
	pending []pendingInput
	sent    uint64 // inputs sent within the window
	inputs  uint64 // inputs sent in all

	// Owned by Run's goroutine; read by the report after it ended.
	player    string
	failure   string
	closeCode int
	closedAt  time.Time
	seen      bool
	nTicks    uint64 // all ticks since the welcome
	ticks     uint64 // within the window
	bytes     uint64
	skipped   uint64
	disorder  uint64
	lastEpoch uint64
	lastSeq   uint64
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

// run connects, says hello and reads until the socket closes. settle is called once: welcomed or failed.
func (c *client) run(ctx context.Context, settle func()) {
	settled := false
	done := func() {
		if !settled {
			settled = true
			settle()
		}
	}
	defer done()
	defer c.closed.Store(true)
	_ = c.cl.Run(ctx, tmclient.Handler{
		Welcome: func(_ tmclient.Conn, w *protocol.Welcome) error {
			c.player = w.Player
			c.welcomed.Store(true)
			done()
			return nil
		},
		Tick: func(t *tmclient.Tick) error {
			c.tick(t)
			return nil
		},
		Message: func(_ tmclient.Conn, msg any) {
			if e, ok := msg.(*protocol.Error); ok {
				if c.errs == nil {
					c.errs = map[string]int{}
				}
				c.errs[e.Code]++
			}
		},
		Closed: func(d tmclient.Disconnect) {
			c.closeCode, c.closedAt = d.Code, d.At
			if !c.welcomed.Load() {
				c.failure = failure(ctx, d)
			}
		},
	})
}

// failure names why a client was never welcomed.
func failure(ctx context.Context, d tmclient.Disconnect) string {
	switch {
	case ctx.Err() != nil:
		return "cancelled"
	case d.Stage == tmclient.StageDial:
		return reason("dial", d.Err)
	case d.Stage == tmclient.StageHello:
		return reason("hello", d.Err)
	case d.Abandoned:
		return "before welcome: timeout"
	case d.Code != tmclient.CloseAbnormal:
		return "closed " + strconv.Itoa(d.Code)
	}
	return reason("before welcome", d.Err)
}

// tick counts one tick.
func (c *client) tick(t *tmclient.Tick) {
	in := c.win.contains(t.At)
	if !t.Fresh {
		if in {
			c.disorder++
		}
		return
	}
	if in && c.nTicks > 0 && t.Epoch == c.lastEpoch && t.Seq > c.lastSeq+1 {
		c.skipped += t.Seq - c.lastSeq - 1
	}
	c.lastEpoch, c.lastSeq = t.Epoch, t.Seq
	c.nTicks++
	if in {
		if !c.spanOpen || t.Epoch != c.spanEpoch {
			c.span = c.publishedSpan()
			c.spanOpen, c.spanEpoch, c.spanStart = true, t.Epoch, t.Seq
		}
		c.spanLast = t.Seq
		c.ticks++
		c.bytes += uint64(wireSize(len(t.Data)))
		if c.ticks%uint64(c.sample) == 0 {
			c.lat = append(c.lat, float64(t.At.UnixNano())/1e6-float64(t.Time))
		}
	}
	// The player's own entry: until it shows up once (every 10th tick), and while inputs wait for their ack.
	c.mu.Lock()
	waiting := len(c.pending) > 0
	c.mu.Unlock()
	if waiting || (!c.seen && c.nTicks%10 == 1) {
		if ack, found := t.Ack(c.player); found {
			c.seen = true
			c.resolve(ack, t.At)
		}
	}
}

// wireSize is the size of a WebSocket frame (server to client: no mask) with a payload of n bytes.
func wireSize(n int) int {
	switch {
	case n <= 125:
		return n + 2
	case n <= 0xffff:
		return n + 4
	}
	return n + 10
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
	c.inputMu(func() protocol.Keys { return keyCycle[c.inputs%uint64(len(keyCycle))] })
}

// directions are the eight ways a moving player walks.
var directions = []protocol.Keys{{Up: true}, {Down: true}, {Left: true}, {Right: true},
	{Up: true, Left: true}, {Up: true, Right: true}, {Down: true, Left: true}, {Down: true, Right: true}}

// turn sends the client's new direction (the n-th turn).
func (c *client) turn(n uint64) {
	c.inputMu(func() protocol.Keys { return directions[(uint64(c.i)*7+n*3)%uint64(len(directions))] })
}

// inputMu sends the key state keys returns, under mu (after counting the input).
func (c *client) inputMu(keys func() protocol.Keys) {
	if !c.welcomed.Load() || c.closed.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inputs++
	s, err := c.cl.Input(keys())
	if err != nil {
		return
	}
	if c.win.contains(s.At) {
		c.sent++
		if len(c.pending) == maxPending {
			c.pending = c.pending[1:]
		}
		c.pending = append(c.pending, pendingInput{seq: s.Seq, sentAt: s.At})
	}
}

// addrs matches the addresses in network errors, which would make every failure reason unique.
var addrs = regexp.MustCompile(`\[?[0-9a-fA-F:.]+\]?:[0-9]+`)

// reason names a failure for the report: what failed and the kind of error, without addresses.
func reason(stage string, err error) string {
	var ne net.Error
	if err == nil {
		return stage
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return stage + ": timeout"
	}
	for _, k := range []struct {
		err  error
		name string
	}{
		{io.EOF, "EOF"}, {io.ErrUnexpectedEOF, "EOF"}, {syscall.ECONNRESET, "connection reset"},
		{syscall.ECONNREFUSED, "connection refused"}, {syscall.EMFILE, "too many open files"},
		{syscall.ENFILE, "too many open files"}, {syscall.EADDRNOTAVAIL, "no local port left"},
		{websocket.ErrBadHandshake, "bad handshake"},
	} {
		if errors.Is(err, k.err) {
			return stage + ": " + k.name
		}
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

// turnMovers makes every client of cs hold a key from its welcome on, and change direction every `every`, each
// at its own moment, until ctx ends.
func turnMovers(ctx context.Context, cs []*client, every time.Duration) {
	if len(cs) == 0 {
		return
	}
	turns := make([]uint64, len(cs))
	next := make([]time.Time, len(cs))
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for i, c := range cs {
				if !c.welcomed.Load() || now.Before(next[i]) {
					continue
				}
				if next[i].IsZero() {
					// The first key at once; the turns after it spread over the period.
					next[i] = now.Add(every * time.Duration(i%97+1) / 98)
				} else {
					next[i] = now.Add(every)
				}
				c.turn(turns[i])
				turns[i]++
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
	var serverBefore procfs.Sample
	var serverErr error
	if cfg.PID > 0 {
		serverBefore, serverErr = procfs.Process(cfg.PID)
	}
	selfPID := os.Getpid()
	selfBefore, _ := procfs.Process(selfPID)

	win := &window{}
	// One dialer with one pool of write buffers for every socket: thousands of idle sockets need none.
	d := &websocket.Dialer{HandshakeTimeout: 15 * time.Second, WriteBufferPool: &sync.Pool{}}
	clients := make([]*client, cfg.Clients)
	for i := range clients {
		// Once: a client that closes is counted, not reconnected; no watchdog: a slow tick is measured, not
		// abandoned; no resend: every input is measured once, as it went.
		var store tmclient.Store
		if cfg.Stores != nil {
			store = cfg.Stores[i]
		}
		cl, err := tmclient.New(tmclient.Config{URLs: []string{cfg.URLs[i%len(cfg.URLs)]}, Name: fmt.Sprintf("%s%d", cfg.Name, i),
			Room: cfg.roomOf(i), Once: true, DialTimeout: time.Minute, WelcomeTimeout: 15 * time.Second, Watchdog: -1,
			ResendAfter: -1, Dialer: d, Protocol: cfg.Protocol, Light: true, Store: store})
		if err != nil {
			return nil, err
		}
		clients[i] = &client{i: i, win: win, sample: cfg.Sample, cl: cl}
	}
	cctx, cancel := context.WithCancel(ctx)
	var readers, settled, senders sync.WaitGroup
	defer func() {
		cancel()
		senders.Wait()
		readers.Wait()
	}()
	begin := time.Now()
	for i, c := range clients {
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
			c.run(cctx, settled.Done)
		}()
	}
	// Inputs: a few sender goroutines, each for a share of the clients.
	inCtx, stopInputs := context.WithCancel(cctx)
	defer stopInputs()
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

	if cfg.Moving > 0 {
		var movers []*client
		for i, c := range clients {
			if cfg.mover(i) {
				movers = append(movers, c)
			}
		}
		senders.Add(1)
		go func() {
			defer senders.Done()
			turnMovers(inCtx, movers, cfg.TurnEvery)
		}()
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
			progress("ramping: %d of %d welcomed after %v", count(clients, welcomed), len(clients), time.Since(begin).Round(time.Second))
		}
	}
	// Let the last joins land before measuring.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	connected := count(clients, open)
	progress("%d of %d clients welcomed and open after %v; measuring for %v", connected, len(clients), time.Since(begin).Round(100*time.Millisecond), cfg.Duration)

	var serverStart, serverEnd procfs.Sample
	if cfg.PID > 0 && serverErr == nil {
		serverStart, serverErr = procfs.Process(cfg.PID)
	}
	selfStart, _ := procfs.Process(selfPID)
	coresStart, coresErr := procfs.Cores()
	nodesStart := sampleNodes(ctx, cfg.Nodes)
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
			progress("%v: %d open", time.Since(startAt).Round(time.Second), len(clients)-count(clients, closed))
		}
	}
	endAt := time.Now()
	win.end.Store(endAt.UnixNano())
	nodesEnd := sampleNodes(ctx, cfg.Nodes)
	if cfg.PID > 0 && serverErr == nil {
		serverEnd, serverErr = procfs.Process(cfg.PID)
	}
	selfEnd, _ := procfs.Process(selfPID)
	coresEnd, coresEndErr := procfs.Cores()
	openAtEnd := len(clients) - count(clients, closed)

	stopInputs()
	senders.Wait()
	// Every client says goodbye (1000) and gives the server a second to answer before it cuts its socket.
	cancel()
	readers.Wait()

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
		r.CoreBusy = procfs.CoreBusy(coresStart, coresEnd)
	}
	if len(cfg.Nodes) > 0 {
		r.Inputs = inputsReport(cfg.Nodes, nodesStart, nodesEnd, windowSec, r.InputsAcked)
	}
	return r, nil
}

// count counts the clients for which f holds.
func count(cs []*client, f func(c *client) bool) int {
	n := 0
	for _, c := range cs {
		if f(c) {
			n++
		}
	}
	return n
}

func welcomed(c *client) bool { return c.welcomed.Load() }
func closed(c *client) bool   { return c.closed.Load() }
func open(c *client) bool     { return c.welcomed.Load() && !c.closed.Load() }

// build aggregates the clients' counters (their readers have ended) into a report.
func build(cfg Config, clients []*client, connected, openAtEnd int, startAt, endAt time.Time) *Report {
	windowSec := endAt.Sub(startAt).Seconds()
	r := &Report{
		Config: ReportConfig{URLs: cfg.URLs, Clients: cfg.Clients, Room: cfg.Room, Rooms: cfg.Rooms, Ramp: cfg.Ramp.String(),
			Duration: cfg.Duration.String(), InputRate: cfg.InputRate, Sample: cfg.Sample, Protocol: cfg.Protocol,
			Moving: cfg.Moving, TurnEvery: cfg.TurnEvery.String()},
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
	r.BytesIn = bytesIn
	r.finish(bytesIn)
	return r
}

// finish computes the derived rates.
func (r *Report) finish(bytesIn uint64) {
	if r.WindowSeconds > 0 {
		r.TicksPerSecond = float64(r.TicksDelivered) / r.WindowSeconds
		r.BytesPerSecond = float64(bytesIn) / r.WindowSeconds
	}
	if r.TicksDelivered > 0 {
		r.BytesPerTick = float64(bytesIn) / float64(r.TicksDelivered)
	}
	if r.Connected > 0 {
		r.BytesPerSocketSecond = r.BytesPerSecond / float64(r.Connected)
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
