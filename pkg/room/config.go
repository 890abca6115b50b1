package room

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/game"
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
	StealAfter       time.Duration // holder's renewals and ticks both silent this long → take over
	BeaconInterval   time.Duration // node beacons (liveness) are published this often; 0 = a tick period, at most StealAfter/10
	ContactLoss      time.Duration // an owner that hears from no majority for this long stops ticking; 0 = 3/5 of StealAfter
	LeaderDefer      time.Duration // a node leading an ownership stream lets other candidates try first for this long
	PauseThreshold   time.Duration // a tick this late means the loop was paused: confirm the lease first
	ReplayWait       time.Duration // longest wait for the input stream's replay before ticking
	TakeoverWait     time.Duration // longest wait for the takeover snapshot before stepping down (or the lease's deadline, if sooner)
	RetryBackoff     time.Duration // first wait before campaigning again after a term that could not start; doubles up to 30 s
	EmptyAfter       time.Duration // a room other than the lobby with no players this long is closed
	Game             game.Config
}

// DefaultConfig returns the defaults for node.
func DefaultConfig(node string) Config {
	return Config{
		Node: node, TickRate: 20, LeaseTTL: 10 * time.Second, RenewInterval: 250 * time.Millisecond,
		SnapshotInterval: time.Second, StealAfter: 500 * time.Millisecond, PauseThreshold: 250 * time.Millisecond,
		LeaderDefer: 250 * time.Millisecond,
		ReplayWait:  2 * time.Second, TakeoverWait: 3 * time.Second, RetryBackoff: time.Second, EmptyAfter: 10 * time.Second,
		Game: game.DefaultConfig(),
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
	case c.BeaconInterval < 0 || c.ContactLoss < 0 || c.LeaderDefer < 0:
		return errors.New("room config: beacon interval, contact loss and leader defer must not be negative")
	case c.contactLoss() < 2*c.beaconInterval():
		return fmt.Errorf("room config: contact loss %v below two beacon intervals (%v)", c.contactLoss(), c.beaconInterval())
	case c.contactLoss() >= c.StealAfter:
		return fmt.Errorf("room config: contact loss %v must be below steal-after %v", c.contactLoss(), c.StealAfter)
	}
	if err := lc.Validate(); err != nil {
		return fmt.Errorf("room config: %w", err)
	}
	return c.Game.Validate()
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

// tickSilence is how long a holder's ticks must be silent before a takeover: StealAfter, and at least contact
// loss plus two tick periods. An owner checks its contact before every tick, so a cut-off owner publishes its last
// tick within contactLoss + one tick period of losing the majority, and the majority last received one of its
// ticks no earlier than a tick period before the cut: a takeover after tickSilence comes after the old owner
// stopped.
func (c Config) tickSilence() time.Duration {
	return max(c.StealAfter, c.contactLoss()+2*c.tickPeriod())
}

// contactLoss is ContactLoss, or 3/5 of StealAfter.
func (c Config) contactLoss() time.Duration {
	if c.ContactLoss > 0 {
		return c.ContactLoss
	}
	return c.StealAfter * 3 / 5
}

// Cluster is what ownership needs to know about the NATS cluster (pkg/mesh provides it).
type Cluster interface {
	HasMajority() bool
	ClusterSize() int
	Routed(node string) bool
	QuietPeers(d time.Duration) map[string]time.Time // routed peers whose routes brought nothing for d → route start
	StreamLeader(ctx context.Context, stream string) (leader string, current []string, err error)
	StepDownStreamLeader(ctx context.Context, stream, preferred string) error
}

// Stores is the JetStream state ownership uses.
type Stores struct {
	Owners    jetstream.KeyValue
	Snapshots jetstream.KeyValue
	Inputs    jetstream.Stream
}
