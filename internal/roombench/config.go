package roombench

import (
	"fmt"
	"os"
	"time"

	"github.com/tickmesh/tickmesh/internal/cli"
	"github.com/tickmesh/tickmesh/internal/cluster"
)

// Config is a roombench run. Its fields are cmd/roombench's flags, and Validate's errors (usage errors, see
// internal/cli) name those flags.
type Config struct {
	Bin             string        // the node binary
	Clients         int           // clients, the same for every room count
	Rooms           []int         // room counts; the first is the baseline of the per-room differences
	Ramp            time.Duration // the connections are spread over this long
	Settle          time.Duration // the wait after the last client is welcomed (rooms placed and balanced, first snapshots written)
	Duration        time.Duration // the measurement window
	Failover        bool          // after the window, kill the node that owns the most rooms and measure the rooms' tick gaps
	RecoveryTimeout time.Duration // a room that has not ticked again after this counts as not recovered
	TickRate        int           // the nodes' tick rate
	Ports           cluster.Ports // n1's ports; n2, n3 use the next ones
	LogLevel        string        // the nodes' -log-level
	NodeFlags       []string      // more flags for every node
	Keep            bool          // keep the temporary directory (data, node logs)
	CommandLine     string        // how the run was invoked, for the report
}

// DefaultConfig is 1000 clients over 10, 100, 500 and 1000 rooms on ports far from the development cluster's and
// failbench's; Bin must still be set.
func DefaultConfig() Config {
	return Config{
		Clients:         1000,
		Rooms:           []int{10, 100, 500, 1000},
		Ramp:            10 * time.Second,
		Settle:          10 * time.Second,
		Duration:        30 * time.Second,
		Failover:        true,
		RecoveryTimeout: 30 * time.Second,
		TickRate:        20,
		Ports:           cluster.Ports{HTTP: 18481, Admin: 18581, NATS: 14622, Route: 16622},
		LogLevel:        "warn",
	}
}

// Validate reports the first setting roombench cannot run with.
func (o Config) Validate() error {
	if o.Bin == "" {
		return cli.Usagef("-bin is required (build the node with: go build -o bin/tickmesh-node ./cmd/node)")
	}
	if st, err := os.Stat(o.Bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return cli.Usagef("-bin %q is not an executable file", o.Bin)
	}
	for _, n := range o.Rooms {
		if n < 1 {
			return cli.Usagef("-rooms: %q is not a room count", fmt.Sprint(n))
		}
	}
	switch {
	case len(o.Rooms) == 0:
		return cli.Usagef("-rooms selects nothing")
	case o.Clients < 1:
		return cli.Usagef("-clients must be at least 1")
	case o.Duration < time.Second || o.TickRate < 1:
		return cli.Usagef("-duration must be at least 1s and -tick-rate positive")
	}
	return nil
}
