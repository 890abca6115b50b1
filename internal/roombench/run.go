package roombench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/procfs"
	tmclient "github.com/tickmesh/tickmesh/pkg/client"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Streams whose writes are counted.
var counted = []string{wire.KVStream(wire.OwnersBucket), wire.KVStream(wire.SnapshotsBucket), wire.InputsStream}

// result is one room count.
type result struct {
	Rooms, Clients, Welcomed int
	Delivered                float64 // ticks received / ticks expected (20 per second per open client)
	DeliveryP99              time.Duration
	CPU                      float64 // ms of the three nodes' CPU per second
	RSSMB                    float64 // the three nodes' resident memory at the end of the window
	Writes                   map[string]float64
	// Failover.
	Killed, KilledRooms, Measured, Moved, Unrecovered int
	GapP50, GapP99, GapMax                            time.Duration
	TakenBy                                           map[string]int
	KilledName                                        string
	Note                                              string
}

// Run measures every room count of o, each on a fresh cluster, and writes its progress and the results as text
// to stdout.
func Run(ctx context.Context, o Config, stdout io.Writer) (rep *Report, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "roombench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.Keep || err != nil {
			fmt.Fprintf(stdout, "node logs and data kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	bin := filepath.Join(dir, "tickmesh-node")
	data, err := os.ReadFile(o.Bin)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		return nil, err
	}
	var results []result
	started := time.Now()
	load := []float64{procfs.LoadAvg()}
	for _, rooms := range o.Rooms {
		fmt.Fprintf(stdout, "%s %d clients in %d rooms\n", time.Now().Format("15:04:05"), o.Clients, rooms)
		r, err := runRooms(ctx, o, bin, filepath.Join(dir, fmt.Sprintf("rooms-%d", rooms)), rooms, stdout)
		load = append(load, procfs.LoadAvg())
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	rep = &Report{o: o, results: results, started: started, took: time.Since(started), load: load}
	rep.Write(stdout, false)
	return rep, nil
}

// runRooms measures one room count on a fresh cluster.
func runRooms(ctx context.Context, o Config, bin, dir string, rooms int, stdout io.Writer) (result, error) {
	r := result{Rooms: rooms, Clients: o.Clients, Writes: map[string]float64{}, TakenBy: map[string]int{}}
	nodes := cluster.Local(3, o.Ports, filepath.Join(dir, "data"))
	flags := []string{"-cluster-name", "roombench", "-log-level", o.LogLevel, "-tick-rate", strconv.Itoa(o.TickRate),
		"-max-conns-per-ip", strconv.Itoa(o.Clients + 100), "-max-rooms", strconv.Itoa(max(1000, rooms+10)),
		"-max-rooms-per-ip", strconv.Itoa(max(1000, rooms+10))}
	flags = append(flags, o.NodeFlags...)
	for i := range nodes {
		nodes[i].Flags = flags
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	c, err := cluster.New(cluster.Config{Bin: bin, Nodes: nodes, Env: cluster.CleanEnv(), LogDir: dir, ParentDeath: true})
	if err != nil {
		return r, err
	}
	defer func() {
		c.StopAll()
		c.Close()
	}()
	for i := range c.Len() {
		if err := c.Start(i); err != nil {
			return r, err
		}
	}
	if err := c.WaitReady(ctx, 2*time.Minute, nil); err != nil {
		return r, err
	}
	nc, err := cluster.Connect(c.Node(0), cluster.AsAdmin(c.Secrets()), "roombench")
	if err != nil {
		return r, err
	}
	defer nc.Close()
	js, err := jetstreamOf(nc)
	if err != nil {
		return r, err
	}

	cctx, cancel := context.WithCancel(ctx)
	clients := make([]*client, o.Clients)
	d := &websocket.Dialer{HandshakeTimeout: 15 * time.Second, WriteBufferPool: &sync.Pool{}}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	welcomed := make(chan struct{}, o.Clients)
	begin := time.Now()
	for i := range clients {
		// Client i is in room i mod R, on node (i + i div R) mod N: a room's clients go round the nodes, and so
		// do the rooms when there is one client per room.
		node := (i + i/rooms) % c.Len()
		cl, err := tmclient.New(tmclient.Config{URLs: []string{c.Node(node).WSURL()}, Name: fmt.Sprintf("rb%d", i),
			Room: fmt.Sprintf("room-%d", i%rooms), Once: true, DialTimeout: time.Minute, WelcomeTimeout: 15 * time.Second,
			Watchdog: -1, ResendAfter: -1, Dialer: d})
		if err != nil {
			return r, err
		}
		clients[i] = &client{node: c.Node(node).Name, room: fmt.Sprintf("room-%d", i%rooms), cl: cl}
		at := begin.Add(o.Ramp * time.Duration(i) / time.Duration(len(clients)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !cluster.Sleep(cctx, time.Until(at)) {
				welcomed <- struct{}{}
				return
			}
			clients[i].run(cctx, func() { welcomed <- struct{}{} })
		}()
	}
	for range clients {
		select {
		case <-welcomed:
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
	for _, cl := range clients {
		if cl.isWelcomed() {
			r.Welcomed++
		}
	}
	fmt.Fprintf(stdout, "  %d of %d clients welcomed after %v; settling %v\n", r.Welcomed, o.Clients, time.Since(begin).Round(time.Second), o.Settle)
	cluster.Sleep(ctx, o.Settle)

	// The window.
	before := sampleNodes(c)
	seqBefore := streamSeqs(ctx, js)
	from := time.Now()
	for _, cl := range clients {
		cl.startWindow(from)
	}
	cluster.Sleep(ctx, o.Duration)
	to := time.Now()
	for _, cl := range clients {
		cl.endWindow()
	}
	after := sampleNodes(c)
	seqAfter := streamSeqs(ctx, js)
	secs := to.Sub(from).Seconds()
	var cpuTicks, rss uint64
	for i := range before {
		cpuTicks += after[i].CPUTicks - before[i].CPUTicks
		rss += after[i].RSSKB
	}
	r.CPU = float64(cpuTicks) * 1000 / float64(clockTicks()) / secs
	r.RSSMB = float64(rss) / 1024
	for _, s := range counted {
		r.Writes[s] = float64(seqAfter[s]-seqBefore[s]) / secs
	}
	var got, open float64
	var lat []time.Duration
	for _, cl := range clients {
		n, l, ok := cl.window()
		if ok {
			open++
			got += float64(n)
			lat = append(lat, l...)
		}
	}
	if open > 0 {
		r.Delivered = got / (open * secs * float64(o.TickRate))
	}
	r.DeliveryP99 = percentile(lat, 0.99)
	fmt.Fprintf(stdout, "  window: cluster CPU %.0f ms/s, delivered %.2f%%, delivery p99 %v\n", r.CPU, 100*r.Delivered, r.DeliveryP99)
	if o.Failover {
		failover(ctx, o, c, clients, &r, stdout)
	}
	return r, nil
}

// failover kills the node that owns the most rooms and measures, per room of it with a client elsewhere, the
// gap from the last tick before the kill to the first of a newer epoch at those clients.
func failover(ctx context.Context, o Config, c *cluster.Cluster, clients []*client, r *result, stdout io.Writer) {
	v, steady, err := steadyView(ctx, c.Node(0), ownershipSteady, ownershipWait)
	if err != nil {
		r.Note = "failover: " + err.Error()
		return
	}
	if !steady {
		r.Note = fmt.Sprintf(" (rooms still changing hands %v after the window)", ownershipWait)
	}
	busiest := ""
	for n, k := range v.Owners {
		if busiest == "" || k > v.Owners[busiest] || k == v.Owners[busiest] && n < busiest {
			busiest = n
		}
	}
	epochs := map[string]uint64{}
	for _, ri := range v.Rooms {
		if ri.Owner == busiest {
			epochs[ri.Room] = ri.Epoch
		}
	}
	r.KilledName, r.KilledRooms = busiest, len(epochs)
	watch := map[string][]*client{}
	for _, cl := range clients {
		if _, ok := epochs[cl.room]; ok && cl.node != busiest && cl.isWelcomed() {
			watch[cl.room] = append(watch[cl.room], cl)
		}
	}
	r.Measured = len(watch)
	killed := time.Now()
	for _, cl := range clients {
		cl.markKill(killed)
	}
	if err := c.Kill(c.Index(busiest)); err != nil {
		r.Note = "failover: " + err.Error()
		return
	}
	deadline := killed.Add(o.RecoveryTimeout)
	var gaps []time.Duration
	pending := map[string]bool{}
	for room := range watch {
		pending[room] = true
	}
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		for room := range pending {
			last, first, by, ok := roomGap(watch[room], epochs[room])
			switch {
			case !ok:
				continue
			case first.Before(killed):
				r.Moved++ // handed over between the view and the kill: no failover to measure
			default:
				gaps = append(gaps, first.Sub(last))
				r.TakenBy[by]++
			}
			delete(pending, room)
		}
		cluster.Sleep(ctx, 50*time.Millisecond)
	}
	r.Unrecovered = len(pending)
	r.GapP50, r.GapP99, r.GapMax = percentile(gaps, 0.5), percentile(gaps, 0.99), percentile(gaps, 1)
	r.Measured -= r.Moved
	if r.Moved > 0 {
		r.Note += fmt.Sprintf(" (%d handed over before the kill, not measured)", r.Moved)
	}
	fmt.Fprintf(stdout, "  killed %s with %d rooms (%d measured): gap p50 %v p99 %v max %v, not recovered %d, taken over by %v%s\n",
		busiest, r.KilledRooms, r.Measured, r.GapP50, r.GapP99, r.GapMax, r.Unrecovered, r.TakenBy, r.Note)
}

// Before the kill the rooms' owners must have stopped changing: balance hands rooms over for a while after the
// clients came (up to eight a second per node), and a room handed over just before the kill has no failover to
// measure, while the busiest node's rooms would not be the ones it held.
const (
	ownershipSteady = 3 * time.Second  // no room changed owner or epoch for this long
	ownershipWait   = 60 * time.Second // at most this long after the window
)

// steadyView polls n's cluster view until no room has changed owner or epoch for steady, at most wait; it
// returns the last view and whether it was steady.
func steadyView(ctx context.Context, n cluster.Node, steady, wait time.Duration) (node.ClusterView, bool, error) {
	deadline := time.Now().Add(wait)
	var last map[string]string
	since := time.Now()
	for {
		v, err := cluster.View(ctx, n)
		if err != nil {
			return v, false, err
		}
		cur := make(map[string]string, len(v.Rooms))
		for _, ri := range v.Rooms {
			cur[ri.Room] = fmt.Sprint(ri.Owner, "/", ri.Epoch)
		}
		if !maps.Equal(cur, last) {
			last, since = cur, time.Now()
		}
		if time.Since(since) >= steady {
			return v, true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return v, false, ctx.Err()
		}
		cluster.Sleep(ctx, 500*time.Millisecond)
	}
}

// roomGap is a room's gap at its clients: the last tick any of them got before the kill and the first tick of an
// epoch above old that any of them got, with the new owner.
func roomGap(cs []*client, old uint64) (last, first time.Time, owner string, ok bool) {
	for _, cl := range cs {
		l, f, o, found := cl.failoverTimes(old)
		if l.After(last) {
			last = l
		}
		if found && (first.IsZero() || f.Before(first)) {
			first, owner, ok = f, o, true
		}
	}
	return last, first, owner, ok
}

// sampleNodes reads the three nodes' CPU and memory.
func sampleNodes(c *cluster.Cluster) []procfs.Sample {
	out := make([]procfs.Sample, c.Len())
	for i := range out {
		out[i], _ = procfs.Process(c.PID(i))
	}
	return out
}

// clockTicks is the kernel's clock ticks per second (USER_HZ): 100 on Linux.
func clockTicks() int64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// percentile is the nearest-rank percentile p of ds (0 when empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(p*float64(len(s))+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// machine describes where the run happened.
func machine() string {
	out, _ := exec.Command("uname", "-a").Output()
	return fmt.Sprintf("`%s`; CPU: %s; nproc: %d; %s", strings.TrimSpace(string(out)), procfs.CPUModel(), runtime.NumCPU(), runtime.Version())
}

// client is one socket: a pkg/client Client that does not reconnect. Its Run goroutine writes the fields under
// mu; the benchmark reads them.
type client struct {
	node, room string
	cl         *tmclient.Client

	mu       sync.Mutex
	welcome  bool
	from, to time.Time // the window; zero: not started or not ended
	ticks    int
	lat      []time.Duration
	epoch    uint64 // of the last fresh tick
	killAt   time.Time
	lastPre  time.Time // the last fresh tick of the epoch the room had when the node was killed
	firstNew time.Time // the first fresh tick of a newer epoch after killAt
	newOwner string
	newEpoch uint64
}

func (c *client) run(ctx context.Context, settled func()) {
	once := sync.OnceFunc(settled)
	defer once()
	_ = c.cl.Run(ctx, tmclient.Handler{
		Welcome: func(_ tmclient.Conn, _ *protocol.Welcome) error {
			c.mu.Lock()
			c.welcome = true
			c.mu.Unlock()
			once()
			return nil
		},
		Tick: func(t *tmclient.Tick) error {
			if !t.Fresh {
				return nil
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if !c.from.IsZero() && c.to.IsZero() && !t.At.Before(c.from) {
				c.ticks++
				if c.ticks%10 == 1 {
					c.lat = append(c.lat, t.At.Sub(time.UnixMilli(t.Time)))
				}
			}
			c.noteFailoverLocked(t.At, t.Epoch, func() string {
				if tk, err := t.Decode(); err == nil {
					return tk.Owner
				}
				return ""
			})
			return nil
		},
	})
}

// noteFailoverLocked times the failover with a fresh tick of epoch received at: until the kill and for the old
// owner's late ticks, the last tick before the gap; after the kill, the first tick of a newer epoch, and its
// owner (owner is called only then). The new owner's later ticks change nothing: the gap is timed.
func (c *client) noteFailoverLocked(at time.Time, epoch uint64, owner func() string) {
	switch {
	case !c.firstNew.IsZero():
	case c.killAt.IsZero() || epoch <= c.epoch:
		c.lastPre = at
	default:
		c.firstNew, c.newEpoch, c.newOwner = at, epoch, owner()
	}
	c.epoch = max(c.epoch, epoch)
}

func (c *client) isWelcomed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

func (c *client) startWindow(at time.Time) {
	c.mu.Lock()
	c.from = at
	c.mu.Unlock()
}

func (c *client) endWindow() {
	c.mu.Lock()
	c.to = time.Now()
	c.mu.Unlock()
}

// window returns the ticks and latency samples of the window, and whether the client was open throughout.
func (c *client) window() (int, []time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ticks, c.lat, c.welcome
}

func (c *client) markKill(at time.Time) {
	c.mu.Lock()
	c.killAt = at
	c.mu.Unlock()
}

// failoverTimes returns the last tick before the kill and, if one came, the first tick of an epoch above old.
func (c *client) failoverTimes(old uint64) (last, first time.Time, owner string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firstNew.IsZero() || c.newEpoch <= old {
		return c.lastPre, time.Time{}, "", false
	}
	return c.lastPre, c.firstNew, c.newOwner, true
}
