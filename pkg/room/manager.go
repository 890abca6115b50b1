package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/kvwatch"
	"github.com/tickmesh/tickmesh/pkg/lease"
)

// Lobby is the room that always exists and ticks.
const Lobby = "lobby"

// Config of room ownership on one node.
type Config struct {
	Node             string
	TickRate         int           // ticks per second
	LeaseTTL         time.Duration // whole seconds; the owners bucket's TTL
	RenewInterval    time.Duration // lease renewal period
	SnapshotInterval time.Duration
	StealAfter       time.Duration // holder unreachable and silent this long → take over
	PauseThreshold   time.Duration // a tick this late means the loop was paused: confirm the lease first
	ReplayWait       time.Duration // longest wait for the input stream's replay before ticking
	EmptyAfter       time.Duration // a room other than the lobby with no players this long is closed
	Game             game.Config
}

// DefaultConfig returns the defaults for node.
func DefaultConfig(node string) Config {
	return Config{
		Node: node, TickRate: 20, LeaseTTL: 10 * time.Second, RenewInterval: 250 * time.Millisecond,
		SnapshotInterval: time.Second, StealAfter: 500 * time.Millisecond, PauseThreshold: 250 * time.Millisecond,
		ReplayWait: 2 * time.Second, EmptyAfter: 10 * time.Second, Game: game.DefaultConfig(),
	}
}

// Validate checks settings and their relations.
func (c Config) Validate() error {
	lc := lease.Config{TTL: c.LeaseTTL, RenewInterval: c.RenewInterval}
	switch {
	case c.Node == "":
		return errors.New("room config: node name missing")
	case c.TickRate < 1 || c.TickRate > 120:
		return fmt.Errorf("room config: tick rate %d out of 1..120", c.TickRate)
	case c.StealAfter <= c.RenewInterval:
		return fmt.Errorf("room config: steal-after %v must exceed the renew interval %v", c.StealAfter, c.RenewInterval)
	case c.PauseThreshold < 2*time.Second/time.Duration(c.TickRate):
		return fmt.Errorf("room config: pause threshold %v below two tick periods", c.PauseThreshold)
	case c.SnapshotInterval <= 0 || c.ReplayWait <= 0 || c.EmptyAfter <= 0:
		return errors.New("room config: snapshot interval, replay wait and empty-after must be positive")
	}
	if err := lc.Validate(); err != nil {
		return fmt.Errorf("room config: %w", err)
	}
	return c.Game.Validate()
}

// Cluster is what ownership needs to know about the NATS cluster (pkg/mesh provides it).
type Cluster interface {
	HasMajority() bool
	Routed(node string) bool
	StreamLeader(ctx context.Context, stream string) (leader string, current []string, err error)
	StepDownStreamLeader(ctx context.Context, stream, preferred string) error
}

// Info is a room as /api/cluster shows it.
type Info struct {
	Room  string `json:"room"`
	Owner string `json:"owner"`
	Epoch uint64 `json:"epoch"`
}

// holder is the lease of a room as the owners watch last showed it.
type holder struct {
	val  lease.Value
	rev  uint64
	seen time.Time // local time of the last update
}

// Manager runs ownership for the rooms this node serves.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	owners  jetstream.KeyValue
	snaps   jetstream.KeyValue
	inputs  jetstream.Stream
	cluster Cluster
	relay   *Relay
	metrics *metrics
	lcfg    lease.Config

	mu         sync.Mutex
	holders    map[string]holder
	wanted     map[string]int
	campaigns  map[string]*campaign
	owned      map[string]uint64
	leadsOwner bool
	faults     map[string]Fault
	runCtx     context.Context
	wg         sync.WaitGroup
}

type campaign struct {
	cancel context.CancelFunc
	wake   chan struct{}
	done   chan struct{}
}

// Stores is the JetStream state ownership uses.
type Stores struct {
	Owners    jetstream.KeyValue
	Snapshots jetstream.KeyValue
	Inputs    jetstream.Stream
}

// NewManager makes a manager; Run starts it.
func NewManager(cfg Config, nc *nats.Conn, js jetstream.JetStream, st Stores, cluster Cluster, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, log: log, nc: nc, js: js, owners: st.Owners, snaps: st.Snapshots, inputs: st.Inputs,
		cluster: cluster, metrics: newMetrics(),
		lcfg:    lease.Config{TTL: cfg.LeaseTTL, RenewInterval: cfg.RenewInterval},
		holders: map[string]holder{}, wanted: map[string]int{}, campaigns: map[string]*campaign{}, owned: map[string]uint64{},
		faults: map[string]Fault{},
	}
	m.relay = NewRelay(nc, fence.New(), RelayHooks{
		Fenced: func(room string) { m.metrics.fenced.WithLabelValues(room).Inc() },
		Gap:    func(room string, d time.Duration) { m.metrics.tickGap.WithLabelValues(room).Observe(d.Seconds()) },
		Fanout: func(room string, age time.Duration) { m.metrics.delivery.WithLabelValues(room).Observe(age.Seconds()) },
	})
	return m, nil
}

// Collectors are the manager's Prometheus metrics.
func (m *Manager) Collectors() []prometheus.Collector { return m.metrics.collectors() }

// Relay is the node's tick relay (fenced).
func (m *Manager) Relay() *Relay { return m.relay }

// Run watches the owners bucket and campaigns for the lobby and every wanted room until ctx ends; then it
// stops every campaign (owners write a final snapshot and release their leases) and returns.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.runCtx = ctx
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.watch(ctx)
	}()
	m.Want(Lobby)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.mu.Lock()
			cs := make([]*campaign, 0, len(m.campaigns))
			for _, c := range m.campaigns {
				c.cancel()
				cs = append(cs, c)
			}
			m.mu.Unlock()
			for _, c := range cs {
				<-c.done
			}
			m.wg.Wait()
			m.relay.Close()
			return nil
		case <-t.C:
			m.keepPlacement(ctx)
		}
	}
}

// Want records that this node serves room (it has sockets there) and campaigns for it. The returned function
// undoes it; the campaign stops when no socket wants the room (the lobby is always wanted).
func (m *Manager) Want(room string) (release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wanted[room]++
	if _, ok := m.campaigns[room]; !ok && m.runCtx != nil && m.runCtx.Err() == nil {
		m.startCampaignLocked(room)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.wanted[room]--
			if m.wanted[room] <= 0 && room != Lobby {
				delete(m.wanted, room)
				// The campaign notices on its next round; an owner keeps the room while it has players.
				if c, ok := m.campaigns[room]; ok {
					select {
					case c.wake <- struct{}{}:
					default:
					}
				}
			}
		})
	}
}

func (m *Manager) startCampaignLocked(room string) {
	ctx, cancel := context.WithCancel(m.runCtx)
	c := &campaign{cancel: cancel, wake: make(chan struct{}, 1), done: make(chan struct{})}
	m.campaigns[room] = c
	go func() {
		defer close(c.done)
		m.campaign(ctx, room, c)
	}()
}

// Rooms lists the rooms with a lease, sorted by name.
func (m *Manager) Rooms() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(m.holders))
	for room, h := range m.holders {
		out = append(out, Info{Room: room, Owner: h.val.Node, Epoch: h.val.Epoch})
	}
	slices.SortFunc(out, func(a, b Info) int {
		if a.Room < b.Room {
			return -1
		}
		if a.Room > b.Room {
			return 1
		}
		return 0
	})
	return out
}

// Owner returns the room's holder as last seen ("" when none).
func (m *Manager) Owner(room string) (node string, epoch uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.holders[room]
	return h.val.Node, h.val.Epoch
}

// Owned lists the rooms this node owns now, with their epochs.
func (m *Manager) Owned() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.owned))
	for r, e := range m.owned {
		out[r] = e
	}
	return out
}

// watch follows the owners bucket: holders, the relay fence's epoch floor, and campaign wake-ups. Every held
// lease is renewed each RenewInterval, so while anyone holds a room a watcher quiet for ownersStall(RenewInterval)
// is cut off and is restarted.
func (m *Manager) watch(ctx context.Context) {
	_ = kvwatch.Follow(ctx, m.owners, kvwatch.Config{
		Stall: ownersStall(m.cfg.RenewInterval),
		Due: func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.holders) > 0
		},
		Resync: func(present map[string]bool) {
			m.mu.Lock()
			for room := range m.holders {
				if !present[room] { // released or expired while no watcher ran
					delete(m.holders, room)
				}
			}
			m.mu.Unlock()
		},
		OnRestart: func(reason error, quiet time.Duration) {
			m.log.Info("restarting the owners watcher", "reason", reason, "quiet", quiet.Round(time.Millisecond))
		},
	}, m.applyOwner)
}

// ownersStall is how long the owners watcher may stay quiet while a room is held: eight renewals, at least 2 s.
func ownersStall(renew time.Duration) time.Duration {
	return max(2*time.Second, 8*renew)
}

// applyOwner takes one entry of the owners bucket. A replayed entry (same revision) leaves the holder's last
// sign of life as it was.
func (m *Manager) applyOwner(e jetstream.KeyValueEntry) {
	if e == nil {
		return
	}
	room := e.Key()
	m.mu.Lock()
	if e.Operation() == jetstream.KeyValuePut {
		if v, err := lease.Parse(e.Value()); err == nil {
			if h, ok := m.holders[room]; !ok || h.rev != e.Revision() {
				m.holders[room] = holder{val: v, rev: e.Revision(), seen: time.Now()}
			}
			if m.relay.Fence().Observe(room, v.Epoch) {
				m.metrics.epoch.WithLabelValues(room).Set(float64(v.Epoch))
			}
		}
	} else {
		delete(m.holders, room)
	}
	c := m.campaigns[room]
	m.mu.Unlock()
	if c != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// campaign competes for room until ctx ends or the room is no longer wanted and not owned here.
func (m *Manager) campaign(ctx context.Context, room string, c *campaign) {
	// Follow the room's ticks: the relay's last tick is what a takeover restores from.
	stop, err := m.relay.Listen(room, nil)
	if err == nil {
		defer stop()
	}
	defer func() {
		m.mu.Lock()
		if m.campaigns[room] == c {
			delete(m.campaigns, room)
		}
		m.mu.Unlock()
	}()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for ctx.Err() == nil {
		if !m.isWanted(room) {
			return
		}
		m.tryOwn(ctx, room)
		select {
		case <-ctx.Done():
		case <-c.wake:
		case <-poll.C:
		}
	}
}

func (m *Manager) isWanted(room string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return room == Lobby || m.wanted[room] > 0
}

// tryOwn acquires or takes over room's lease when the rules allow, and runs the term while it holds it.
func (m *Manager) tryOwn(ctx context.Context, room string) {
	m.mu.Lock()
	h, held := m.holders[room]
	leads := m.leadsOwner
	m.mu.Unlock()

	if held && time.Since(h.seen) > 2*time.Second {
		// No renewal seen for long: the holder is gone or our watcher stalls. Look directly (a hint only; the
		// CAS decides).
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		e, err := m.owners.Get(gctx, room)
		cancel()
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			held = false
		} else if err == nil && e.Revision() != h.rev {
			return // changed: the watcher will catch up
		}
	}

	var how string
	switch {
	case !held:
		how = "create"
		if leads {
			// Let a node that does not lead the owners stream win: an owner on the stream leader's node waits
			// out a full Raft election if it dies.
			if !sleepCtx(ctx, 150*time.Millisecond) {
				return
			}
		}
	case h.val.Node == m.cfg.Node:
		how = "reclaim" // our own lease from before a restart
	case time.Since(h.seen) > m.cfg.StealAfter && !m.cluster.Routed(h.val.Node) && m.cluster.HasMajority():
		how = "takeover"
	default:
		return
	}

	snap, _, err := m.readSnapshot(ctx, room)
	if err != nil {
		return
	}
	epoch := m.relay.Fence().Get(room).Epoch
	if held {
		epoch = max(epoch, h.val.Epoch)
	}
	if snap != nil {
		epoch = max(epoch, snap.Epoch)
	}
	val := lease.Value{Node: m.cfg.Node, Epoch: epoch + 1, Since: time.Now().UnixMilli()}
	actx, cancel := context.WithTimeout(ctx, time.Second)
	var l *lease.Lease
	if how == "create" {
		l, err = lease.Acquire(actx, m.owners, room, val, m.lcfg)
	} else {
		l, err = lease.Takeover(actx, m.owners, room, val, h.rev, m.lcfg)
	}
	cancel()
	if err != nil {
		if !errors.Is(err, lease.ErrTaken) {
			m.log.Debug("campaign", "room", room, "how", how, "err", err)
		}
		return
	}
	m.metrics.acquired.WithLabelValues(room, how).Inc()
	m.log.Info("acquired room lease", "room", room, "epoch", val.Epoch, "how", how)
	m.runTerm(ctx, room, l)
}

// runTerm owns room while the lease holds, then releases it.
func (m *Manager) runTerm(ctx context.Context, room string, l *lease.Lease) {
	m.mu.Lock()
	m.owned[room] = l.Epoch()
	m.mu.Unlock()
	m.relay.Fence().Observe(room, l.Epoch())
	m.metrics.owned.WithLabelValues(room).Set(1)
	m.metrics.epoch.WithLabelValues(room).Set(float64(l.Epoch()))
	defer func() {
		m.mu.Lock()
		delete(m.owned, room)
		m.mu.Unlock()
		m.metrics.owned.WithLabelValues(room).Set(0)
	}()

	hc := lease.HoldConfig{
		Quorum:      m.cluster.HasMajority,
		QuorumGrace: 0,
		BeforeRenew: func() { m.sleepFault(room) },
		OnRenew: func(err error, took time.Duration) {
			if err != nil {
				m.metrics.renewErrors.WithLabelValues(room).Inc()
				return
			}
			m.metrics.renewSeconds.WithLabelValues(room).Observe(took.Seconds())
		},
	}
	cause := l.Hold(ctx, hc, func(wctx context.Context) error {
		for {
			err := m.own(wctx, room, l)
			if errors.Is(err, errRestoreConflict) && wctx.Err() == nil && l.Valid() {
				continue
			}
			return err
		}
	})
	m.metrics.stepDowns.WithLabelValues(room, causeLabel(cause)).Inc()
	m.log.Info("room owner stopped", "room", room, "epoch", l.Epoch(), "cause", fmt.Sprint(cause))
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := l.Release(rctx); err != nil {
		m.log.Debug("release lease", "room", room, "err", err)
	}
}

func causeLabel(err error) string {
	switch {
	case err == nil:
		return "returned"
	case errors.Is(err, lease.ErrLost):
		return "lost"
	case errors.Is(err, lease.ErrExpired):
		return "expired"
	case errors.Is(err, lease.ErrNoQuorum):
		return "no_quorum"
	case errors.Is(err, ErrSuperseded):
		return "superseded"
	case errors.Is(err, errRoomEmpty):
		return "empty"
	case errors.Is(err, context.Canceled):
		return "shutdown"
	}
	return "error"
}

// placed streams are those whose leader should not be on a node that owns rooms: if the owner's node also
// leads them and dies, nobody can take over before a 4-9 s Raft election.
var placedStreams = []string{"KV_" + OwnersBucket, "KV_" + SnapshotsBucket, InputsStream}

// placementTarget picks the peer that should lead a stream now led by self: the current, routed peer that holds
// the fewest rooms, and only if it holds fewer than self. So a leader moves only to improve things, and never
// straight back: when every node owns rooms (two nodes each owning some, or a room on every node), the leaders
// stay where they are instead of changing every round, each change being an election that stalls the stream's
// writers. It returns "" for no move.
func placementTarget(self string, current []string, rooms map[string]int, routed func(string) bool) string {
	pick := ""
	for _, p := range current {
		if p == self || !routed(p) || rooms[p] >= rooms[self] {
			continue
		}
		if pick == "" || rooms[p] < rooms[pick] || rooms[p] == rooms[pick] && p < pick {
			pick = p
		}
	}
	return pick
}

// keepPlacement moves the leaders of the ownership streams off this node while it owns rooms, to a node that
// owns fewer (placementTarget).
func (m *Manager) keepPlacement(ctx context.Context) {
	m.mu.Lock()
	// Only rooms the owners bucket also shows as ours: a superseded owner that has not noticed yet must not
	// move leaders around the real owner.
	owns := false
	for room, epoch := range m.owned {
		if h := m.holders[room]; h.val.Node == m.cfg.Node && h.val.Epoch == epoch {
			owns = true
		}
	}
	rooms := map[string]int{} // rooms held, by node, as the owners bucket shows them
	for _, h := range m.holders {
		rooms[h.val.Node]++
	}
	m.mu.Unlock()
	for _, stream := range placedStreams {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		leader, current, err := m.cluster.StreamLeader(sctx, stream)
		cancel()
		if err != nil {
			continue
		}
		if stream == placedStreams[0] {
			m.mu.Lock()
			m.leadsOwner = leader == m.cfg.Node
			m.mu.Unlock()
		}
		if leader != m.cfg.Node || !owns {
			continue
		}
		pick := placementTarget(m.cfg.Node, current, rooms, m.cluster.Routed)
		if pick == "" {
			continue
		}
		sctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		err = m.cluster.StepDownStreamLeader(sctx, stream, pick)
		cancel()
		m.log.Info("moved stream leader off the owner's node", "stream", stream, "to", pick, "err", err)
	}
}

// ErrBadRoom is returned for room names that do not match [a-z0-9-]{1,32}.
var ErrBadRoom = errors.New("bad room name")

// Publish sends a player event to room's owner through the INPUTS stream and returns once JetStream has
// stored it (the PubAck): only then is the event acknowledged. It first sends a copy on the room's live subject
// (core NATS), so the owner applies the event at once, also while the stream has no leader; the caller retries
// with the same event (same message id) until it gets an ack.
func Publish(ctx context.Context, js jetstream.JetStream, room string, ev game.Event) (*jetstream.PubAck, error) {
	m, err := EventMsg(room, ev)
	if err != nil {
		return nil, err
	}
	_ = js.Conn().Publish(LiveSubject(room), m.Data) // best effort: the stream delivers it anyway
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("publish event: %w", err)
	}
	return ack, nil
}

// EventMsg is the durable publish of a player event: the event as JSON on the room's input subject, with the
// message id (room:player:kind:seq or conn) by which INPUTS drops a repeat of it, whoever sends it again.
func EventMsg(room string, ev game.Event) (*nats.Msg, error) {
	if !validRoom(room) {
		return nil, ErrBadRoom
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	m := nats.NewMsg(InputSubject(room))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, room+":"+ev.MsgID())
	return m, nil
}

func validRoom(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Fault is an injected fault for tests and drills.
type Fault struct {
	// Until: the owner of the room (loop and lease renewals) stalls until this time, as a frozen process would.
	Until time.Time
	// IgnoreDeadline makes the owner skip its local deadline and pause checks (a broken clock): only fencing
	// (relays by epoch, snapshots by CAS) then stands between a superseded owner and the game.
	IgnoreDeadline bool
}

// InjectFault sets a fault on room's owner on this node (Fault{} clears it).
func (m *Manager) InjectFault(room string, f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f == (Fault{}) {
		delete(m.faults, room)
		return
	}
	m.faults[room] = f
}

func (m *Manager) fault(room string) Fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.faults[room]
}

// sleepFault blocks while an injected stall on room lasts.
func (m *Manager) sleepFault(room string) {
	if d := time.Until(m.fault(room).Until); d > 0 {
		time.Sleep(d)
	}
}
