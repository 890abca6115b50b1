package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Config of a chaos run.
type Config struct {
	Seed uint64
	Bots int    // default 6
	Room string // the room the bots play and the faults follow; default "lobby" (the arena). Its
	// game is the nodes' choice (-games); a room of the collect game ("collect-…" by default) gets target
	// inputs, any other room the arena's keys.
	LeaseTTL time.Duration // the nodes' -lease-ttl; default 10s

	// Plan is the exact list of faults; when empty, the counts below make a seeded, shuffled plan.
	Plan                                                   []Kind
	OwnerKills, RandomKills, Partitions, Freezes, Restarts int

	Bin       string   // node binary (required)
	Dir       string   // run directory: node data and logs (required)
	NodeFlags []string // extra flags for every node

	// HealthTimeout bounds the wait for the cluster to be healthy after a fault (doubled after restart-all);
	// default 120s.
	HealthTimeout time.Duration
	// Settle is the healthy time before each fault (at least 2 s so that the 2-s input rule means something);
	// default 3s.
	Settle time.Duration
	// PlacementWait is how long to wait, before a fault, for the owner to lead none of the streams it depends
	// on (the nodes move leaders away from the owner by themselves); default 15s.
	PlacementWait time.Duration

	Logf func(format string, args ...any)
}

func (c *Config) defaults() error {
	if c.Bots <= 0 {
		c.Bots = 6
	}
	if c.Room == "" {
		c.Room = "lobby"
	}
	if !wire.ValidRoom(c.Room) {
		return fmt.Errorf("chaos: room %q is not a valid room name", c.Room)
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = 120 * time.Second
	}
	if c.Settle < 2500*time.Millisecond {
		c.Settle = 3 * time.Second
	}
	if c.PlacementWait <= 0 {
		c.PlacementWait = 15 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Bin == "" || c.Dir == "" {
		return errors.New("chaos: Config.Bin and Config.Dir are required")
	}
	return nil
}

// Harness is one chaos run: the network, the node processes, the recorders and the bots. New builds the
// network; Run starts everything, injects the faults and checks; Close removes everything (call it even when
// New or Run fail half-way: it undoes what exists).
type Harness struct {
	cfg     Config
	Net     *Net
	Cluster *cluster.Cluster
	Store   *Store
	rng     *rand.Rand

	bots     []*Bot
	recs     []*cluster.Observer
	lin      *linClients
	stopBots context.CancelFunc
	botsWG   sync.WaitGroup

	faults  []*Fault
	regs    []Regression
	regSeen map[regKey]bool
	fenced  []float64 // per node: tickmesh_room_ticks_fenced_total summed over finished process lives
	lastFen []float64 // per node: last scrape of the current life
	started time.Time

	closeOnce sync.Once
}

// New builds the network and prepares the node processes (nothing runs yet).
func New(ctx context.Context, cfg Config) (*Harness, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	h := &Harness{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x7469636b6d657368))}
	nt, err := NewNet(ctx, 3, cfg.Logf)
	if err != nil {
		return nil, err
	}
	h.Net = nt
	var addrs []string
	for _, host := range nt.Hosts {
		addrs = append(addrs, host.Addr)
	}
	nodes := cluster.OnHosts(addrs, cluster.Ports{HTTP: HTTPPort, Admin: AdminPort, NATS: NATSPort, Route: RoutePort}, cfg.Dir)
	for i := range nodes {
		nodes[i].Flags = append([]string{"-lease-ttl", cfg.LeaseTTL.String()}, cfg.NodeFlags...)
	}
	h.Cluster, err = cluster.New(cluster.Config{Bin: cfg.Bin, Nodes: nodes, Env: cluster.CleanEnv(), LogDir: cfg.Dir,
		Wrap: func(i int) []string { return []string{"ip", "netns", "exec", nt.Hosts[i].NS} }})
	if err != nil {
		h.Close()
		return nil, err
	}
	names := h.Cluster.Names()
	h.Store = NewStore(cfg.Room, cfg.Bots, names)
	h.fenced = make([]float64, len(names))
	h.lastFen = make([]float64, len(names))
	return h, nil
}

// Close stops the bots and recorders, kills the nodes and removes the network. It is idempotent.
func (h *Harness) Close() {
	h.closeOnce.Do(func() {
		if h.stopBots != nil {
			h.stopBots()
			h.botsWG.Wait()
		}
		for _, r := range h.recs {
			r.Close()
		}
		if h.lin != nil {
			h.lin.close()
		}
		if h.Cluster != nil {
			h.Cluster.Close()
		}
		if h.Net != nil {
			h.Net.Close()
		}
	})
}

// nodes are the nodes' layouts.
func (h *Harness) nodes() []cluster.Node {
	out := make([]cluster.Node, h.Cluster.Len())
	for i := range out {
		out[i] = h.Cluster.Node(i)
	}
	return out
}

func (h *Harness) logf(format string, args ...any) {
	h.cfg.Logf("[%s] "+format, append([]any{fmtDur(h.Store.Now())}, args...)...)
}

// Run starts the cluster, the recorders and the bots, injects the planned faults one after another (each
// once the cluster is healthy again) and checks after each and at the end. A run that cannot continue (the
// cluster does not recover) ends early with the violations so far; err is for harness failures.
func (h *Harness) Run(ctx context.Context) (*Result, error) {
	h.started = time.Now()
	plan := h.cfg.Plan
	if len(plan) == 0 {
		plan = Plan(h.rng, h.cfg.OwnerKills, h.cfg.RandomKills, h.cfg.Partitions, h.cfg.Freezes, h.cfg.Restarts)
	}
	res := &Result{Config: h.cfg, Plan: plan, Start: h.started}
	defer func() { res.Duration = time.Since(h.started) }()

	c := h.Cluster
	for i := range c.Len() {
		if err := c.Start(i); err != nil {
			return res, err
		}
	}
	h.logf("started %d nodes (%s), lease TTL %s; waiting for the cluster", c.Len(), c.Bin(), h.cfg.LeaseTTL)
	for i := range c.Len() {
		r, err := StartRecorder(h.Store, i, c.Node(i), c.Secrets())
		if err != nil {
			return res, fmt.Errorf("recorder for %s: %w", c.Node(i).Name, err)
		}
		h.recs = append(h.recs, r)
	}
	if _, err := h.waitCluster(ctx, 3*time.Minute); err != nil {
		return h.finish(res, fmt.Errorf("cluster did not form: %w", err))
	}
	h.lin = startLinClients(ctx, h.Store, h.nodes(), c.Secrets(), h.cfg.Seed)
	if h.lin.err != nil {
		h.logf("lease check not running: %v", h.lin.err)
	}
	var urls []string
	for i := range c.Len() {
		urls = append(urls, c.Node(i).WSURL())
	}
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	h.stopBots = stop
	for i := range h.cfg.Bots {
		b, err := NewBot(BotConfig{Index: i, Name: fmt.Sprintf("bot%d", i+1), URLs: urls, Room: h.cfg.Room, Seed: h.cfg.Seed,
			Watchdog: time.Second, MinInterval: 100 * time.Millisecond, MaxInterval: 300 * time.Millisecond}, h.Store)
		if err != nil {
			return res, err
		}
		h.bots = append(h.bots, b)
		h.botsWG.Add(1)
		go func() {
			defer h.botsWG.Done()
			b.Run(bctx)
		}()
	}
	if _, _, err := h.waitHealthy(ctx, 2*time.Minute); err != nil {
		return h.finish(res, fmt.Errorf("cluster not healthy with bots: %w", err))
	}
	h.logf("healthy with %d bots; %d faults planned: %s", len(h.bots), len(plan), kindsString(plan))

	for i, k := range plan {
		if ctx.Err() != nil {
			res.Aborted = "interrupted: " + context.Cause(ctx).Error()
			break
		}
		f := &Fault{N: i + 1, Kind: k}
		h.faults = append(h.faults, f)
		if err := h.runFault(ctx, f); err != nil {
			if ctx.Err() != nil {
				res.Aborted = "interrupted: " + context.Cause(ctx).Error()
				break
			}
			h.Store.Violate(Violation{Check: "recovery", Fault: f.N, Receiver: "cluster", Message: err.Error(), Evidence: h.clusterEvidence()})
			res.Aborted = fmt.Sprintf("fault #%d %s: %v", f.N, f.Kind, err)
			h.logf("ABORT: %s", res.Aborted)
			break
		}
	}
	return h.finish(res, nil)
}

// finish stops the bots, runs the final checks and fills res.
func (h *Harness) finish(res *Result, runErr error) (*Result, error) {
	if h.stopBots != nil {
		h.stopBots()
		h.botsWG.Wait()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.scrapeFenced(sctx)
	for _, r := range h.recs {
		r.Close()
	}
	h.checkAckRegressions(nil)
	if h.lin != nil {
		res.Lin = h.lin.check(context.Background(), h.Store, h.nodes(), h.Cluster.Secrets())
		h.logf("lease check: %d CAS writes acknowledged, %d refused (%d of them in the stream), %d unknown (%d of them landed): %s",
			res.Lin.Written, res.Lin.Refused, res.Lin.RefusedLanded, res.Lin.Unknown, res.Lin.UnknownLanded, res.Lin.Result)
	}
	res.Faults = h.faults
	res.fill(h)
	if runErr != nil {
		res.Aborted = runErr.Error()
	}
	return res, runErr
}

// runFault waits until the cluster is healthy and settled, injects f, and checks it after recovery.
func (h *Harness) runFault(ctx context.Context, f *Fault) error {
	before := len(h.Store.Violations())
	owner, epoch, err := h.waitHealthy(ctx, h.cfg.HealthTimeout)
	if err != nil {
		return fmt.Errorf("not healthy before the fault: %w", err)
	}
	if err := h.waitPlacement(ctx, owner, f); err != nil {
		return err
	}
	if err := sleep(ctx, h.cfg.Settle); err != nil {
		return err
	}
	// Still the same owner after settling? (Placement can move nothing but stream leaders.)
	if o, e, err := h.agreedOwner(ctx, h.cfg.Room); err == nil {
		owner, epoch = o, e
	}
	f.OwnerBefore, f.EpochBefore = owner, epoch
	f.budgets(h.cfg.LeaseTTL)
	f.BotsOnTarget = make([]bool, len(h.bots))
	h.scrapeFenced(ctx)
	h.Store.SetFault(f.N)
	rng := rand.New(rand.NewPCG(h.cfg.Seed, uint64(f.N)))
	h.logf("fault #%d %s: owner %s epoch %d", f.N, f.Kind, h.name(owner), epoch)
	// Bots on the targets, as the fault begins (inject sets Targets before Start).
	botsBefore := make([]Live, len(h.bots))
	for i, b := range h.bots {
		botsBefore[i] = b.Live()
	}
	if err := h.inject(ctx, f, rng); err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	for i, l := range botsBefore {
		f.BotsOnTarget[i] = l.Connected && slices.Contains(f.Targets, l.Node)
	}
	h.logf("fault #%d %s: %s; undone after %s", f.N, f.Kind, f.Desc, fmtDur(f.End-f.Start))

	convDeadline := 10 * time.Second
	timeout := h.cfg.HealthTimeout
	if f.Kind == RestartAll {
		convDeadline, timeout = 60*time.Second, 2*timeout
	}
	f.Converged = h.waitConverged(ctx, f.End, convDeadline)
	if f.Converged == 0 {
		h.Store.Violate(Violation{Check: "d-convergence", Fault: f.N, At: f.End + convDeadline, Receiver: "bots",
			Message: fmt.Sprintf("bots did not agree on one epoch and player set within %s after the fault ended", fmtDur(convDeadline)), Evidence: h.botEvidence()})
	}
	o, e, err := h.waitHealthy(ctx, timeout)
	if err != nil {
		return fmt.Errorf("no recovery within %s: %w", fmtDur(timeout), err)
	}
	f.Recovered = h.Store.Now() - 2*time.Second
	f.Checked = h.Store.Now()
	f.OwnerAfter, f.EpochAfter = o, e
	h.Store.SetFault(0)
	h.checkGaps(f)
	h.checkDurableInputs(f)
	h.checkAckRegressions(f)
	vs := h.Store.Violations()
	for _, v := range vs {
		if v.Fault == f.N {
			f.Violations++
		}
	}
	for _, v := range vs[before:] {
		h.logf("VIOLATION %s", v)
	}
	h.logf("fault #%d %s: converged %s after end, recovered %s after start, owner %s epoch %d, max bot gap %s, violations %d",
		f.N, f.Kind, optDur(f.Converged, f.End), fmtDur(f.Recovered-f.Start), h.name(o), e, fmtDur(maxGap(f.BotGaps)), f.Violations)
	return nil
}

func optDur(t, from time.Duration) string {
	if t == 0 {
		return "never"
	}
	return fmtDur(max(0, t-from))
}

func (h *Harness) name(i int) string {
	if i < 0 || i >= h.Cluster.Len() {
		return "?"
	}
	return h.Cluster.Node(i).Name
}

// nodeState is one poll of one node.
type nodeState struct {
	alive, ready bool
	readiness    node.Readiness
	owner        string
	epoch        uint64
	err          error
}

func (h *Harness) poll(ctx context.Context, room string) []nodeState {
	c := h.Cluster
	out := make([]nodeState, c.Len())
	var wg sync.WaitGroup
	for i := range c.Len() {
		if !c.Running(i) || c.Frozen(i) {
			continue
		}
		out[i].alive = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, code, err := cluster.Readyz(ctx, c.Node(i))
			out[i].readiness, out[i].ready = r, code == http.StatusOK
			if err != nil {
				out[i].err = err
				return
			}
			v, err := cluster.View(ctx, c.Node(i))
			if err != nil {
				out[i].err = err
				return
			}
			out[i].owner, out[i].epoch = cluster.RoomOwner(v, room)
		}()
	}
	wg.Wait()
	return out
}

// agreedOwner returns room's owner and epoch when every node is ready and agrees on them.
func (h *Harness) agreedOwner(ctx context.Context, room string) (int, uint64, error) {
	st := h.poll(ctx, room)
	owner, epoch := "", uint64(0)
	for i, s := range st {
		switch {
		case !s.alive:
			return -1, 0, fmt.Errorf("%s not running", h.name(i))
		case s.err != nil:
			return -1, 0, fmt.Errorf("%s: %v", h.name(i), s.err)
		case !s.ready:
			return -1, 0, fmt.Errorf("%s not ready: %s", h.name(i), strings.Join(s.readiness.Missing, "; "))
		case s.owner == "":
			return -1, 0, fmt.Errorf("%s sees no owner of %s", h.name(i), room)
		case i > 0 && (s.owner != owner || s.epoch != epoch):
			return -1, 0, fmt.Errorf("nodes disagree on the owner: %s sees %s/%d, %s sees %s/%d", h.name(0), owner, epoch, h.name(i), s.owner, s.epoch)
		}
		owner, epoch = s.owner, s.epoch
	}
	o := h.Cluster.Index(owner)
	if o < 0 {
		return -1, 0, fmt.Errorf("owner %q is not a node", owner)
	}
	return o, epoch, nil
}

// waitCluster waits until every node is ready and agrees on the lobby's owner (no bots involved: the lobby is
// the one room that exists without players; the bots' room opens when they join).
func (h *Harness) waitCluster(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		o, _, err := h.agreedOwner(ctx, room.Lobby)
		if err == nil {
			return o, nil
		}
		last = err
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return -1, err
		}
	}
	return -1, last
}

// healthyNow checks everything once: nodes ready and agreeing, every bot connected with a tick of the
// current epoch in the last second, every recorder with an accepted tick in the last second.
func (h *Harness) healthyNow(ctx context.Context) (int, uint64, error) {
	o, e, err := h.agreedOwner(ctx, h.cfg.Room)
	if err != nil {
		return -1, 0, err
	}
	now := h.Store.Now()
	for _, b := range h.bots {
		l := b.Live()
		switch {
		case !l.Connected:
			return -1, 0, fmt.Errorf("%s not connected", b.cfg.Name)
		case now-l.LastTick > time.Second:
			return -1, 0, fmt.Errorf("%s: no tick for %s", b.cfg.Name, fmtDur(now-l.LastTick))
		case l.Pos.Epoch != e:
			return -1, 0, fmt.Errorf("%s at epoch %d, cluster at %d", b.cfg.Name, l.Pos.Epoch, e)
		case !l.InSession:
			return -1, 0, fmt.Errorf("%s: the game does not show its player online on its current connection", b.cfg.Name)
		}
	}
	for i := range h.Cluster.Len() {
		if at, ok := h.Store.RelayLast(i); !ok || now-at > time.Second {
			return -1, 0, fmt.Errorf("recorder on %s: no accepted tick for %s", h.name(i), fmtDur(now-at))
		}
	}
	return o, e, nil
}

// waitHealthy waits until healthyNow holds continuously for 2 s.
func (h *Harness) waitHealthy(ctx context.Context, timeout time.Duration) (int, uint64, error) {
	deadline := time.Now().Add(timeout)
	var since time.Time
	var owner int
	var epoch uint64
	var last error
	for time.Now().Before(deadline) {
		o, e, err := h.healthyNow(ctx)
		switch {
		case err != nil:
			since, last = time.Time{}, err
		case since.IsZero() || o != owner || e != epoch:
			since, owner, epoch = time.Now(), o, e
		case time.Since(since) >= 2*time.Second:
			return owner, epoch, nil
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return -1, 0, err
		}
	}
	if last == nil {
		last = errors.New("owner kept changing")
	}
	return -1, 0, last
}

// waitPlacement waits (up to PlacementWait) until the owner leads none of the streams ownership depends on,
// as the nodes arrange by themselves; a fault then tests the designed failover rather than a Raft election.
func (h *Harness) waitPlacement(ctx context.Context, owner int, f *Fault) error {
	deadline := time.Now().Add(h.cfg.PlacementWait)
	name := h.name(owner)
	var led []string
	for {
		r, _, err := cluster.Readyz(ctx, h.Cluster.Node(owner))
		led = led[:0]
		if err == nil {
			f.Leaders = r.Streams
			for _, s := range wire.PlacedStreams {
				if r.Streams[s] == name {
					led = append(led, s)
				}
			}
			if len(led) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			f.note("owner %s still led %v when the fault began (placement did not move it in %s)", name, led, fmtDur(h.cfg.PlacementWait))
			return nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitConverged waits until every bot's last accepted tick (at most 1 s old) has the same epoch and the same
// player set, which holds every bot's player, and returns when that happened (0 if not by from+within).
func (h *Harness) waitConverged(ctx context.Context, from, within time.Duration) time.Duration {
	for {
		now := h.Store.Now()
		if h.convergedNow(now) {
			return now
		}
		if now > from+within {
			return 0
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			return 0
		}
	}
}

func (h *Harness) convergedNow(now time.Duration) bool {
	var want []string
	for _, b := range h.bots {
		p := b.Player()
		if p == "" {
			return false
		}
		want = append(want, p)
	}
	slices.Sort(want)
	var epoch uint64
	for i, b := range h.bots {
		l := b.Live()
		if now-l.LastTick > time.Second || (i > 0 && l.Pos.Epoch != epoch) || !slices.Equal(l.Players, want) {
			return false
		}
		epoch = l.Pos.Epoch
	}
	return true
}

// beforeKill scrapes node i's fenced-tick counter before its process dies, so that its life's count is kept.
func (h *Harness) beforeKill(ctx context.Context, i int) {
	if v, err := h.fencedTotal(ctx, i); err == nil {
		h.lastFen[i] = v
	}
	h.fenced[i] += h.lastFen[i]
	h.lastFen[i] = 0
}

// scrapeFenced scrapes every running node's fenced-tick counter.
func (h *Harness) scrapeFenced(ctx context.Context) {
	for i := range h.Cluster.Len() {
		if !h.Cluster.Running(i) || h.Cluster.Frozen(i) {
			continue
		}
		if v, err := h.fencedTotal(ctx, i); err == nil {
			h.lastFen[i] = v
		}
	}
}

// fencedTotal is node i's tickmesh_room_ticks_fenced_total of the room (0 while the series does not exist).
func (h *Harness) fencedTotal(ctx context.Context, i int) (float64, error) {
	m, err := cluster.ReadMetrics(ctx, h.Cluster.Node(i))
	return m[`tickmesh_room_ticks_fenced_total{room="`+h.cfg.Room+`"}`], err
}

func (h *Harness) botEvidence() []string {
	var out []string
	now := h.Store.Now()
	for _, b := range h.bots {
		l := b.Live()
		out = append(out, fmt.Sprintf("%s: connected=%v node=%s last tick %s ago at (%d,%d), players %v",
			b.cfg.Name, l.Connected, h.name(l.Node), fmtDur(now-l.LastTick), l.Pos.Epoch, l.Pos.Seq, l.Players))
	}
	return out
}

func (h *Harness) clusterEvidence() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for i, s := range h.poll(ctx, h.cfg.Room) {
		out = append(out, fmt.Sprintf("%s: alive=%v ready=%v owner=%s epoch=%d missing=%v streams=%v err=%v",
			h.name(i), s.alive, s.ready, s.owner, s.epoch, s.readiness.Missing, s.readiness.Streams, s.err))
	}
	out = append(out, h.botEvidence()...)
	for i := range h.Cluster.Len() {
		for _, l := range h.Cluster.Tail(i, 8) {
			out = append(out, h.name(i)+" log: "+l)
		}
	}
	return out
}

func kindsString(p []Kind) string {
	m := map[Kind]int{}
	for _, k := range p {
		m[k]++
	}
	var s []string
	for _, k := range Kinds {
		if m[k] > 0 {
			s = append(s, fmt.Sprintf("%d %s", m[k], k))
		}
	}
	return strings.Join(s, ", ")
}

// WriteReport writes the markdown report to the run directory (report.md) and, when the run failed, every
// observation (records.jsonl.gz). It returns the report's path.
func (h *Harness) WriteReport(res *Result, command string) (string, error) {
	p := filepath.Join(h.cfg.Dir, "report.md")
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	res.Command = command
	res.Markdown(f)
	if err := f.Close(); err != nil {
		return p, err
	}
	if !res.Passed() {
		if err := h.Store.DumpFile(filepath.Join(h.cfg.Dir, "records.jsonl.gz")); err != nil {
			return p, err
		}
	}
	return p, nil
}
