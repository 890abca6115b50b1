package room

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/kvwatch"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Info is a room as /api/cluster shows it.
type Info struct {
	Room  string `json:"room"`
	Owner string `json:"owner"`
	Epoch uint64 `json:"epoch"`
}

// holder is the lease of a room as the owners watch last showed it.
type holder struct {
	val      lease.Value
	rev      uint64
	seen     time.Time // local time of the last update
	corrupt  bool      // the value is not a lease (lease.ErrCorrupt): nobody holds the room, whatever the key says
	orphanAt time.Time // when this node first saw the room's session gone (zero while it is live)
}

// peerSession is a node's session key as the owners watch last showed it.
type peerSession struct {
	val    lease.SessionValue
	rev    uint64
	seen   time.Time // local time of the last update (its last renewal seen)
	opened time.Time // local time this node first saw the session (val.Session)
}

// renewed is s after an update to val at rev, seen now: opened stays while the session is the same one.
func (s peerSession) renewed(val lease.SessionValue, rev uint64, now time.Time) peerSession {
	opened := s.opened
	if s.val.Session != val.Session || opened.IsZero() {
		opened = now
	}
	return peerSession{val: val, rev: rev, seen: now, opened: opened}
}

// Manager runs ownership on this node: its session, the owners watcher, and the rooms it owns.
type Manager struct {
	// Set by NewManager, read-only afterwards.
	cfg      Config
	log      *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	owners   jetstream.KeyValue
	snaps    jetstream.KeyValue
	inputs   jetstream.Stream
	cluster  Cluster
	interest Interest // the cluster's, when it implements it
	relay    *Relay
	metrics  *metrics
	lcfg     lease.Config
	live     *liveness
	writer   *snapshotWriter
	bundles  *bundler
	placed   chan struct{}                    // wakes the placement loop (a stream leader was elected)
	kick     chan struct{}                    // wakes the control loop (a lease or a want changed)
	obs      atomic.Pointer[observerBox]      // SetObserver's observer, if any
	faults   atomic.Pointer[map[string]Fault] // injected faults by room: read by every tick without mu, replaced whole by InjectFault (under mu)
	running  sync.Map                         // room → *term running here (runTerm, while the term runs): where keyframe requests go

	mu       sync.Mutex
	sess     *lease.Session           // guarded by mu: this node's session, nil while none is open
	sessions map[string]peerSession   // guarded by mu: node sessions as the owners watcher last showed them
	holders  map[string]holder        // guarded by mu: room leases as the owners watcher last showed them
	wanted   map[string]*want         // guarded by mu: rooms this node's sockets are in (Want), and the lobby
	active   map[string]*attempt      // guarded by mu: rooms with an acquisition or a term running here
	owned    map[string]uint64        // guarded by mu: rooms owned here now, with their epochs
	ran      map[string]uint64        // guarded by mu: the last epoch of each room a term ran here
	stopTerm map[string]func(error)   // guarded by mu: cancels the term of an owned room with a cause
	fencing  map[string]time.Time     // guarded by mu: nodes whose session this node is fencing, or failed to until then
	retryAt  map[string]time.Time     // guarded by mu: no new attempt on a room before this (after a failed start)
	backoff  map[string]time.Duration // guarded by mu: the next such wait per room
	balanced time.Time                // guarded by mu: the last balance round
	trouble  time.Time                // guarded by mu: the latest sign of ownership streams taking no writes (noteTroubleLocked)
	leaders  map[string]string        // guarded by mu: leaders of wire.PlacedStreams as last learnt ("" unknown)
	replayed bool                     // guarded by mu: the owners watcher has delivered its first replay
	settled  bool                     // guarded by mu: placement was seen settled once (startup readiness)
	runCtx   context.Context          // guarded by mu: Run's context, in which attempts start

	// The watcher, beacons, placement, session and control loops, the snapshot writer, the tick bundler, the
	// readers of handoff and fence notices, and the fences in flight: waited for by Run.
	wg sync.WaitGroup
}

// want is a room this node serves: the number of its sockets there, and the relay's subscription to its ticks
// (the last tick is what a takeover here restores from, and its silence a takeover signal).
type want struct {
	n    int
	stop func()
}

// attempt is one room's acquisition and, if it succeeds, its term: a goroutine started by the control loop and
// waited for by Run.
type attempt struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// NewManager makes a manager; Run starts it.
func NewManager(cfg Config, nc *nats.Conn, js jetstream.JetStream, st Stores, cluster Cluster, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Games == nil {
		return nil, errors.New("room: no games (Config.Games)")
	}
	m := &Manager{
		cfg: cfg, log: log, nc: nc, js: js, owners: st.Owners, snaps: st.Snapshots, inputs: st.Inputs,
		cluster: cluster, metrics: newMetrics(),
		lcfg:     lease.Config{TTL: cfg.LeaseTTL, RenewInterval: cfg.RenewInterval},
		sessions: map[string]peerSession{}, holders: map[string]holder{}, wanted: map[string]*want{},
		active: map[string]*attempt{}, owned: map[string]uint64{}, ran: map[string]uint64{}, stopTerm: map[string]func(error){},
		fencing: map[string]time.Time{}, retryAt: map[string]time.Time{}, backoff: map[string]time.Duration{},
		leaders: map[string]string{}, placed: make(chan struct{}, 1), kick: make(chan struct{}, 1),
	}
	m.live = newLiveness(cfg.Node, cfg.contactLoss(), cluster.ClusterSize, nil)
	m.relay = NewRelay(nc, fence.New(), RelayHooks{
		Fenced:    func(room string) { m.metrics.fenced.WithLabelValues(room).Inc() },
		Malformed: m.metrics.badBundles.Inc,
		Room:      m.metrics.relayHooks,
		Lost:      func(room string) { m.metrics.lost.WithLabelValues(room).Inc() },
		Epoch:     m.observeEpoch,
	})
	m.interest, _ = cluster.(Interest)
	m.writer = newSnapshotWriter(m)
	m.bundles = newBundler(nc, cfg.Node, cfg.bundleWindow(), m.metrics.bundles.Inc, m.metrics.bundleErrors.Inc)
	return m, nil
}

// Collectors are the manager's Prometheus metrics.
func (m *Manager) Collectors() []prometheus.Collector { return m.metrics.collectors() }

// Relay is the node's tick relay (fenced).
func (m *Manager) Relay() *Relay { return m.relay }

// Game returns the game room plays (Config.Games) and the parameters its clients get in welcome: the game's,
// then tick_rate.
func (m *Manager) Game(room string) (game.Game, []game.Param) {
	g := m.cfg.Games.For(room)
	params := append(slices.Clip(g.Info().Params), game.Param{Name: "tick_rate", Value: int64(m.cfg.TickRate)})
	return g, params
}

// Run keeps this node's session, watches the owners bucket and runs the control loop until ctx ends; then it
// ends every term (owners write a final snapshot and hand their rooms to another node, or release them), closes
// the session and returns.
func (m *Manager) Run(ctx context.Context) error {
	syncs, err := m.nc.Subscribe(wire.AllSync, m.keyframeRequested)
	if err != nil {
		return fmt.Errorf("subscribe to keyframe requests: %w", err)
	}
	defer syncs.Unsubscribe()
	m.mu.Lock()
	m.runCtx = ctx
	m.mu.Unlock()
	release := m.Want(Lobby)
	defer release()
	loops := []func(context.Context){m.watch, m.beacons, m.placement, m.keepSession, m.control, m.writer.run, m.bundles.run, m.handoffs, m.fenceNotices}
	m.wg.Add(len(loops))
	for _, loop := range loops {
		go func() {
			defer m.wg.Done()
			loop(ctx)
		}()
	}
	<-ctx.Done()
	m.mu.Lock()
	as := make([]*attempt, 0, len(m.active))
	for _, a := range m.active {
		a.cancel(context.Cause(ctx))
		as = append(as, a)
	}
	m.mu.Unlock()
	for _, a := range as {
		<-a.done
	}
	m.wg.Wait()
	m.mu.Lock()
	sess := m.sess
	m.mu.Unlock()
	if sess != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if err := sess.Close(cctx); err != nil {
			m.log.Debug("close session", "err", err)
		}
		cancel()
	}
	m.relay.Close()
	return nil
}

// Want records that this node serves room (it has sockets there): the relay follows the room's ticks, and the
// node creates the room's lease when nobody holds it and takes part in its takeover. The returned function
// undoes it. The owner of a room keeps it while it has players, wherever they are.
func (m *Manager) Want(room string) (release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.wanted[room]
	if w == nil {
		w = &want{stop: func() {}}
		if stop, err := m.relay.Listen(room, nil); err == nil {
			w.stop = stop
		}
		m.wanted[room] = w
	}
	w.n++
	m.wakeLocked()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			w.n--
			if w.n <= 0 && m.wanted[room] == w {
				delete(m.wanted, room)
				w.stop()
				m.forgetIfUnusedLocked(room)
			}
		})
	}
}

// wakeLocked wakes the control loop.
func (m *Manager) wakeLocked() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// forgetIfUnusedLocked drops what this node keeps of a room it neither serves, runs nor sees held: metrics
// series and the fence's position (which would otherwise pile up with every room ever seen).
func (m *Manager) forgetIfUnusedLocked(room string) {
	if m.wanted[room] != nil || m.active[room] != nil {
		return
	}
	if _, held := m.holders[room]; held {
		return
	}
	m.metrics.forget(room)
	m.relay.Fence().Forget(room)
	delete(m.ran, room)
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

// Distribution is the number of rooms each node holds, as the owners bucket shows them, with every node that
// has a session (0 rooms included).
func (m *Manager) Distribution() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.sessions))
	for n := range m.sessions {
		out[n] = 0
	}
	for _, h := range m.holders {
		out[h.val.Node]++
	}
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

// watch follows the owners bucket: sessions, room holders, the relay fence's epoch floor, and control-loop
// wake-ups. Every node renews its session each RenewInterval, so a watcher quiet for ownersStall(RenewInterval)
// while any session exists is cut off and is restarted.
func (m *Manager) watch(ctx context.Context) {
	_ = kvwatch.Follow(ctx, m.owners, kvwatch.Config{
		Stall: ownersStall(m.cfg.RenewInterval),
		Due: func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.sessions) > 0 || len(m.holders) > 0
		},
		Resync: func(present map[string]bool) {
			m.mu.Lock()
			for room := range m.holders {
				if !present[room] { // released while no watcher ran
					delete(m.holders, room)
				}
			}
			hidden := m.nodeFault().HideSessions
			for node := range m.sessions {
				if !present[lease.SessionKey(node)] && !hidden { // fenced or expired while no watcher ran
					delete(m.sessions, node)
				}
			}
			m.mu.Unlock()
		},
		OnRestart: func(reason error, quiet time.Duration) {
			m.log.Info("restarting the owners watcher", "reason", reason, "quiet", quiet.Round(time.Millisecond))
		},
	}, m.applyOwner)
}

// ownersStall is how long the owners watcher may stay quiet while sessions exist: four renewals of every
// session, at least 1 s. A watcher fed by a node that died goes quiet; until it is restarted this node sees no
// fence and no takeover, so it is restarted well within a takeover's time.
func ownersStall(renew time.Duration) time.Duration {
	return max(time.Second, 4*renew)
}

// handoffs adopts, until ctx ends, the rooms other nodes say they handed to this node (wire.HandoffSubject): it
// reads each room's lease directly and applies it as the watcher would, so that the adoption does not wait for a
// watcher that lags. The notices wait in a bounded queue; one that does not fit is dropped (the watcher still
// delivers the lease).
func (m *Manager) handoffs(ctx context.Context) {
	m.notices(ctx, "handoff", wire.HandoffSubject(m.cfg.Node), maxHandoffNotices, wire.ValidRoom, func() {}, m.readHandedOver)
}

// notices reads the notices published on subject (handoffs, fences) until ctx ends: a payload that valid accepts
// waits in a queue of size, one that does not fit is dropped (dropped is called; the owners watcher still
// delivers what it announced), and read takes them one at a time, in this goroutine. The subscription ends with
// it.
func (m *Manager) notices(ctx context.Context, what, subject string, size int, valid func(string) bool, dropped func(),
	read func(context.Context, string)) {
	queue := make(chan string, size)
	sub, err := m.nc.Subscribe(subject, func(msg *nats.Msg) {
		v := string(msg.Data)
		if !valid(v) {
			return
		}
		select {
		case queue <- v:
		default:
			dropped()
		}
	})
	if err != nil {
		m.log.Error("subscribe to "+what+" notices", "err", err)
		return
	}
	defer sub.Unsubscribe()
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-queue:
			read(ctx, v)
		}
	}
}

// readHandedOver reads room's lease directly on a notice that it was handed to this node, and applies it. The
// notice is sent once the lease names this node, so a read that does not came from a replica that had not
// applied the rewrite yet (a direct get is answered by any replica): the key is read again after readAttempt,
// then twice as long each time, at most handoffRereads times; then the watcher tells.
func (m *Manager) readHandedOver(ctx context.Context, room string) {
	wait := readAttempt
	for i := 0; ; i++ {
		e, err := readFresh(ctx, time.Second, func(gctx context.Context) (jetstream.KeyValueEntry, error) {
			return m.owners.Get(gctx, room)
		})
		if err == nil {
			m.applyLease(e)
			if v, perr := lease.Parse(e.Value()); perr == nil && v.Node == m.cfg.Node {
				return
			}
		}
		if i == handoffRereads || !sleepCtx(ctx, wait) {
			return
		}
		wait *= 2
	}
}

// handoffRereads is how many times a handoff notice's read is repeated while it does not show the room handed
// to this node: 50, 100 and 200 ms after the one before. Notices are read one at a time, and a balance round
// hands over at most maxHandoffs rooms.
const handoffRereads = 3

// maxHandoffNotices bounds the handoff notices waiting to be read: a balance round hands over at most eight
// rooms, a shutdown all of a node's rooms at once.
const maxHandoffNotices = 256

// applyOwner takes one entry of the owners bucket from the watcher.
func (m *Manager) applyOwner(e jetstream.KeyValueEntry) {
	m.observeOwner(e)
	if e == nil {
		m.mu.Lock()
		m.replayed = true
		m.wakeLocked()
		m.mu.Unlock()
		return
	}
	if node, ok := lease.SessionNode(e.Key()); ok {
		m.applySession(node, e)
		return
	}
	if m.fault(e.Key()).HideLeases {
		return
	}
	m.applyLease(e)
}

// applyLease takes one room's entry of the owners bucket, from the watcher or from a direct read (handoffs). A
// replayed entry (same revision) leaves the holder's last sign of life as it was; an entry older than the one
// known (the watcher catching up with a direct read) is ignored.
func (m *Manager) applyLease(e jetstream.KeyValueEntry) {
	room := e.Key()
	var stop func(error)
	var cause error
	m.mu.Lock()
	if h, ok := m.holders[room]; ok && e.Revision() < h.rev {
		m.mu.Unlock()
		return
	}
	ours, owned := m.owned[room]
	if e.Operation() == jetstream.KeyValuePut {
		v, err := lease.Parse(e.Value())
		if h, ok := m.holders[room]; !ok || h.rev != e.Revision() {
			m.holders[room] = holder{val: v, rev: e.Revision(), seen: time.Now(), corrupt: err != nil}
			if err != nil {
				// Nodes write only valid leases: this one was forged or damaged. It must not fence anything,
				// and the room is taken over from it like from a silent holder.
				m.log.Error("corrupt room lease", "room", room, "revision", e.Revision(), "err", err)
			}
		}
		if err == nil && m.relay.Fence().Observe(room, v.Epoch) {
			m.metrics.epoch.WithLabelValues(room).Set(float64(v.Epoch))
		}
		if owned && err == nil && (v.Epoch > ours || v.Epoch == ours && v.Node != m.cfg.Node) {
			// Somebody holds the room with a newer epoch (a takeover, or our own handoff): this term is over,
			// whatever its own renewals (a partial partition may still let them through) or its deadline say.
			stop, cause = m.stopTerm[room], fmt.Errorf("%w: the owners bucket shows %s at epoch %d", lease.ErrLost, v.Node, v.Epoch)
		}
	} else {
		delete(m.holders, room)
		m.forgetIfUnusedLocked(room)
		if owned {
			stop, cause = m.stopTerm[room], fmt.Errorf("%w: the room's lease was deleted", lease.ErrLost)
		}
	}
	m.wakeLocked()
	m.mu.Unlock()
	if stop != nil {
		stop(cause)
	}
}

// applySession takes one entry of a node's session key.
func (m *Manager) applySession(node string, e jetstream.KeyValueEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodeFault().HideSessions {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(m.sessions, node) // closed, fenced or expired: its rooms are held by nobody
		m.wakeLocked()
		return
	}
	v, err := lease.ParseSession(e.Value())
	if err != nil || v.Node != node {
		m.log.Error("corrupt session", "node", node, "revision", e.Revision(), "err", err)
		delete(m.sessions, node)
		m.wakeLocked()
		return
	}
	if s, ok := m.sessions[node]; !ok || s.rev != e.Revision() {
		if ok && s.val.Session != v.Session {
			m.wakeLocked() // a new session of that node: its old rooms are orphans
		}
		m.sessions[node] = s.renewed(v, e.Revision(), time.Now())
	}
}

// Full reports whether room is known to be full for player: its last tick on this node has the game's maximum
// of players and player is not one of them. A room with no tick here is not known to be full (the owner's
// answer to the join then comes as a wire.Notice).
func (m *Manager) Full(room, player string) bool {
	full := false
	m.relay.With(room, func(t *Tick) {
		if t == nil {
			return
		}
		s := t.State()
		if s.Players() < m.cfg.Sim.MaxPlayers {
			return
		}
		_, in := s.Lookup(player)
		full = !in
	})
	return full
}

// CutOff reports whether this node looks cut off from the majority of a live cluster: out of contact with a
// majority (no beacons heard nor lease write committed within ContactLoss) while it still has a route to a peer
// that it heard beacons from over that route and that has brought in nothing for ContactLoss. That is a
// partition (or a frozen peer), not the peers' death or restart: a dead peer's routes close at once, a restarted
// one's route is newer than its last beacon, and when the others are dead no other node would serve this node's
// players better.
func (m *Manager) CutOff() bool {
	if m.live.contact() {
		return false
	}
	for peer, since := range m.cluster.QuietPeers(m.cfg.contactLoss()) {
		if at, ok := m.live.lastBeacon(peer); ok && at.After(since) {
			return true
		}
	}
	return false
}
