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
	StealAfter       time.Duration // holder unreachable and silent this long → take over
	PauseThreshold   time.Duration // a tick this late means the loop was paused: confirm the lease first
	ReplayWait       time.Duration // longest wait for the input stream's replay before ticking
	TakeoverWait     time.Duration // longest wait for the takeover snapshot before stepping down (or the lease's deadline, if sooner)
	RetryBackoff     time.Duration // first wait before campaigning again after a term that could not start; doubles up to 30 s
	EmptyAfter       time.Duration // a room other than the lobby with no players this long is closed
	Sim              sim.Config    // the framework's rules of every room: grace, tombstones, players
	Games            *sim.Games    // the games this node runs and which room plays which; NewManager requires it
}

// DefaultConfig returns the defaults for node. Games is left for the caller: the games a node runs are its
// composition's (package node).
func DefaultConfig(node string) Config {
	return Config{
		Node: node, TickRate: 20, LeaseTTL: 10 * time.Second, RenewInterval: 250 * time.Millisecond,
		SnapshotInterval: time.Second, StealAfter: 500 * time.Millisecond, PauseThreshold: 250 * time.Millisecond,
		ReplayWait: 2 * time.Second, TakeoverWait: 3 * time.Second, RetryBackoff: time.Second, EmptyAfter: 10 * time.Second,
		Sim: sim.DefaultConfig(),
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
	}
	if err := lc.Validate(); err != nil {
		return fmt.Errorf("room config: %w", err)
	}
	return c.Sim.Validate()
}

// tickPeriod is the time between two ticks.
func (c Config) tickPeriod() time.Duration { return time.Second / time.Duration(c.TickRate) }

// Cluster is what ownership needs to know about the NATS cluster (pkg/mesh provides it).
type Cluster interface {
	HasMajority() bool
	Routed(node string) bool
	StreamLeader(ctx context.Context, stream string) (leader string, current []string, err error)
	StepDownStreamLeader(ctx context.Context, stream, preferred string) error
}

// Stores is the JetStream state ownership uses.
type Stores struct {
	Owners    jetstream.KeyValue
	Snapshots jetstream.KeyValue
	Inputs    jetstream.Stream
}
