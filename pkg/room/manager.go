package room

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/kvwatch"
	"github.com/tickmesh/tickmesh/pkg/lease"
)

// Info is a room as /api/cluster shows it.
type Info struct {
	Room  string `json:"room"`
	Owner string `json:"owner"`
	Epoch uint64 `json:"epoch"`
}

// holder is the lease of a room as the owners watch last showed it.
type holder struct {
	val     lease.Value
	rev     uint64
	seen    time.Time // local time of the last update
	corrupt bool      // the value is not a lease (lease.ErrCorrupt): nobody holds the room, whatever the key says
}

// Manager runs ownership for the rooms this node serves.
type Manager struct {
	// Set by NewManager, read-only afterwards.
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
	live    *liveness
	placed  chan struct{} // wakes the placement loop (a stream leader was elected)

	mu        sync.Mutex
	holders   map[string]holder      // guarded by mu: leases as the owners watcher last showed them
	wanted    map[string]int         // guarded by mu: sockets of this node per room (Want)
	campaigns map[string]*campaign   // guarded by mu: running campaigns by room
	owned     map[string]uint64      // guarded by mu: rooms owned here now, with their epochs
	stopTerm  map[string]func(error) // guarded by mu: cancels the term of an owned room with a cause
	leaders   map[string]string      // guarded by mu: leaders of wire.PlacedStreams as last learnt ("" unknown)
	replayed  bool                   // guarded by mu: the owners watcher has delivered its first replay
	settled   bool                   // guarded by mu: placement was seen settled once (startup readiness)
	faults    map[string]Fault       // guarded by mu: injected faults by room
	runCtx    context.Context        // guarded by mu: Run's context, in which Want starts campaigns

	wg sync.WaitGroup // the owners watcher, waited for by Run
}

// campaign is one room's campaign goroutine, started by Want and waited for by Run.
type campaign struct {
	cancel context.CancelFunc
	wake   chan struct{}
	done   chan struct{}
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
		stopTerm: map[string]func(error){}, leaders: map[string]string{}, faults: map[string]Fault{},
		placed: make(chan struct{}, 1),
	}
	m.live = newLiveness(cfg.Node, cfg.contactLoss(), cluster.ClusterSize, nil)
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
	m.wg.Add(3)
	go func() {
		defer m.wg.Done()
		m.watch(ctx)
	}()
	go func() {
		defer m.wg.Done()
		m.beacons(ctx)
	}()
	go func() {
		defer m.wg.Done()
		m.placement(ctx)
	}()
	m.Want(Lobby)
	<-ctx.Done()
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
		m.mu.Lock()
		m.replayed = true
		m.mu.Unlock()
		return
	}
	room := e.Key()
	var stop func(error)
	var cause error
	m.mu.Lock()
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
			// Somebody holds the room with a newer epoch: this term is over, whatever its own renewals (a
			// partial partition may still let them through for a while) or its deadline say.
			stop, cause = m.stopTerm[room], fmt.Errorf("%w: the owners bucket shows %s at epoch %d", lease.ErrLost, v.Node, v.Epoch)
		}
	} else {
		delete(m.holders, room)
		if m.campaigns[room] == nil {
			// A room this node does not serve has closed (or its lease expired): keep nothing of it.
			m.metrics.forget(room)
			m.relay.Fence().Forget(room)
		}
		if owned {
			stop, cause = m.stopTerm[room], fmt.Errorf("%w: the room's lease was deleted", lease.ErrLost)
		}
	}
	c := m.campaigns[room]
	m.mu.Unlock()
	if stop != nil {
		stop(cause)
	}
	if c != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Full reports whether room is known to be full for player: its last tick on this node has the game's maximum
// of players and player is not one of them. A room with no tick here is not known to be full (the owner's
// answer to the join then comes as a wire.Notice).
func (m *Manager) Full(room, player string) bool {
	last := m.relay.Last(room)
	if last == nil {
		return false
	}
	tk, err := last.Decode()
	if err != nil || len(tk.Players) < m.cfg.Game.MaxPlayers {
		return false
	}
	_, in := tk.Player(player)
	return !in
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
