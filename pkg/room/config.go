package room

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/sim"
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
	StealAfter       time.Duration // holder's node unrouted: its renewals and ticks both silent this long → take over
	HangAfter        time.Duration // holder's node still routed (a hang, a freeze, a fresh partition): the same, this long; 0 = 7/5 of StealAfter
	BeaconInterval   time.Duration // node beacons (liveness) are published this often; 0 = a tick period, at most StealAfter/10
	ContactLoss      time.Duration // an owner that hears from no majority for this long stops ticking; 0 = 4/5 of StealAfter
	LeaderDefer      time.Duration // a node leading an ownership stream lets other candidates try first for this long
	PauseThreshold   time.Duration // a tick this late means the loop was paused long enough for a takeover: confirm the lease first
	ReplayWait       time.Duration // longest wait for the input stream's replay before ticking
	TakeoverWait     time.Duration // longest wait for the takeover snapshot before stepping down (or the lease's deadline, if sooner)
	RetryBackoff     time.Duration // first wait before campaigning again after a term that could not start; doubles up to 30 s
	EmptyAfter       time.Duration // a room other than the lobby with no players this long is closed
	BundleWindow     time.Duration // ticks wait at most this long (and a tenth of a tick period) to share a bundle with other rooms' ticks; 0: each goes at once
	Sim              sim.Config    // the framework's rules of every room: grace, tombstones, players
	Games            *sim.Games    // the games this node runs and which room plays which; NewManager requires it
}

// DefaultConfig returns the defaults for node. Games is left for the caller: the games a node runs are its
// composition's (package node).
func DefaultConfig(node string) Config {
	return Config{
		Node: node, TickRate: 20, LeaseTTL: 10 * time.Second, RenewInterval: 250 * time.Millisecond,
		SnapshotInterval: time.Second, StealAfter: 500 * time.Millisecond, PauseThreshold: 400 * time.Millisecond,
		LeaderDefer: 250 * time.Millisecond,
		ReplayWait:  2 * time.Second, TakeoverWait: 3 * time.Second, RetryBackoff: time.Second, EmptyAfter: 10 * time.Second,
		BundleWindow: 5 * time.Millisecond,
		Sim:          sim.DefaultConfig(),
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
	case c.SnapshotInterval <= 0 || c.ReplayWait <= 0 || c.EmptyAfter <= 0 || c.TakeoverWait <= 0 || c.RetryBackoff <= 0:
		return errors.New("room config: snapshot interval, replay wait, takeover wait, retry backoff and empty-after must be positive")
	case c.BeaconInterval < 0 || c.ContactLoss < 0 || c.LeaderDefer < 0 || c.HangAfter < 0 || c.BundleWindow < 0:
		return errors.New("room config: beacon interval, contact loss, hang-after, leader defer and bundle window must not be negative")
	case c.BundleWindow > 50*time.Millisecond:
		return fmt.Errorf("room config: bundle window %v above 50ms", c.BundleWindow)
	case c.hangAfter() < c.StealAfter:
		return fmt.Errorf("room config: hang-after %v below steal-after %v", c.hangAfter(), c.StealAfter)
	case c.contactLoss() < 2*c.beaconInterval():
		return fmt.Errorf("room config: contact loss %v below two beacon intervals (%v)", c.contactLoss(), c.beaconInterval())
	case c.contactLoss() >= c.StealAfter:
		return fmt.Errorf("room config: contact loss %v must be below steal-after %v", c.contactLoss(), c.StealAfter)
	}
	if err := lc.Validate(); err != nil {
		return fmt.Errorf("room config: %w", err)
	}
	return c.Sim.Validate()
}

// tickPeriod is the time between two ticks.
func (c Config) tickPeriod() time.Duration { return time.Second / time.Duration(c.TickRate) }

// beaconInterval is BeaconInterval, or one tick period but at most a tenth of StealAfter.
func (c Config) beaconInterval() time.Duration {
	if c.BeaconInterval > 0 {
		return c.BeaconInterval
	}
	return min(c.tickPeriod(), c.StealAfter/10)
}

// tickSilence is how long a holder's ticks must be silent before a takeover. When the holder's node is no longer
// routed (a crash closes its routes at once) it is StealAfter. While it is still routed the silence may be a
// stall of a live process (a long GC pause, a saturated host) as much as a freeze or a fresh partition, so it is
// hangAfter, which leaves such a stall room. Either is at least contact loss plus two tick periods: an owner
// checks its contact before every tick, so a cut-off owner publishes its last tick within contactLoss + one tick
// period of losing the majority, and the majority received its last tick no earlier than a tick period before
// the cut; a takeover after tickSilence therefore comes after the old owner stopped. And it is at least
// PauseThreshold plus a tick period: an owner whose loop was held up for less than PauseThreshold ticks again
// without confirming its lease first (a round trip that, on a saturated node, would lengthen the very stall it
// follows), which is safe because nobody can have seen its ticks silent for tickSilence: a peer's silence is at
// most the owner's own time since its last tick.
func (c Config) tickSilence(routed bool) time.Duration {
	d := c.StealAfter
	if routed {
		d = c.hangAfter()
	}
	return max(d, c.contactLoss()+2*c.tickPeriod(), c.PauseThreshold+c.tickPeriod())
}

// renewSilence is how long no renewal of a holder's lease must have been seen before a takeover: StealAfter, or
// hangAfter while the holder's node is still routed.
func (c Config) renewSilence(routed bool) time.Duration {
	if routed {
		return c.hangAfter()
	}
	return c.StealAfter
}

// hangAfter is HangAfter, or 7/5 of StealAfter.
func (c Config) hangAfter() time.Duration {
	if c.HangAfter > 0 {
		return c.HangAfter
	}
	return c.StealAfter * 7 / 5
}

// contactLoss is ContactLoss, or 4/5 of StealAfter.
func (c Config) contactLoss() time.Duration {
	if c.ContactLoss > 0 {
		return c.ContactLoss
	}
	return c.StealAfter * 4 / 5
}

// Cluster is what ownership needs to know about the NATS cluster (pkg/mesh provides it).
type Cluster interface {
	HasMajority() bool
	ClusterSize() int
	Routed(node string) bool
	QuietPeers(d time.Duration) map[string]time.Time // routed peers whose routes brought nothing for d → route start
	StreamLeader(ctx context.Context, stream string) (leader string, current []string, err error)
	LeadsStream(stream string) bool // this node leads stream now (its own Raft state)
	StepDownStreamLeader(ctx context.Context, stream, preferred string) error
}

// Stores is the JetStream state ownership uses.
type Stores struct {
	Owners    jetstream.KeyValue
	Snapshots jetstream.KeyValue
	Inputs    jetstream.Stream
}

// bundleWindow is the bundle window in use: BundleWindow, at most a tenth of the tick period, so that bundling
// never adds more than that to a tick's delivery.
func (c Config) bundleWindow() time.Duration { return min(c.BundleWindow, c.tickPeriod()/10) }
