package failbench

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tickmesh/tickmesh/internal/cli"
	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
)

// Config is a failbench run. Its fields are cmd/failbench's flags, and Validate's errors (usage errors, see
// internal/cli) name those flags.
type Config struct {
	Bin             string         // the node binary
	Room            string         // the room whose owner the faults hit; a room other than the lobby is held open by a player (keeper.go)
	Faults          []string       // the faults to run (names of FaultOrder); a run injects them in FaultOrder
	N               int            // repetitions of each fault
	Reps            map[string]int // per-fault repetitions overriding N, each of a selected fault
	Ports           cluster.Ports  // n1's ports, n2 and n3 use the next ones; Link 0: no route links, and no cut-owner
	LeaseTTL        time.Duration  // 0 = the node's default
	TickRate        int            // 0 = the node's default
	LogLevel        string         // the nodes' -log-level
	Keep            bool           // keep the temporary directory (data, node logs, events.log)
	Isolate         bool           // before a leader fault, move the other placed streams' leaders off the node to kill
	RecoveryTimeout time.Duration  // a repetition that has not recovered after this fails
	Random          bool           // inject faults at random moments, without waiting for a settled cluster
	RandomMax       time.Duration  // the longest random wait after the cluster is running again
	Seed            uint64         // the random moments' and the load's schedule
	LoadFor         time.Duration  // how long load-owner loads the owner's node, per repetition
	CommandLine     string         // how the run was invoked, for the report
}

// DefaultConfig is every fault 20 times on ports far from the development cluster's; Bin must still be set.
func DefaultConfig() Config {
	return Config{
		Room:            room.Lobby,
		Faults:          slices.Clone(FaultOrder),
		N:               20,
		Ports:           cluster.Ports{HTTP: 18181, Admin: 18281, NATS: 14322, Route: 16322, Link: 16422},
		LogLevel:        "info",
		Isolate:         true,
		RecoveryTimeout: 30 * time.Second,
		RandomMax:       3 * time.Second,
		Seed:            1,
		LoadFor:         time.Minute,
	}
}

// Validate reports the first setting failbench cannot run with.
func (o Config) Validate() error {
	if o.Bin == "" {
		return cli.Usagef("-bin is required (build the node with: go build -o bin/tickmesh-node ./cmd/node)")
	}
	if st, err := os.Stat(o.Bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return cli.Usagef("-bin %q is not an executable file", o.Bin)
	}
	if !protocol.ValidRoom(o.Room) {
		return cli.Usagef("-room %q is not a valid room name", o.Room)
	}
	if o.N < 1 {
		return cli.Usagef("-n must be at least 1")
	}
	for _, p := range []int{o.Ports.HTTP, o.Ports.Admin, o.Ports.NATS, o.Ports.Route} {
		if p < 1 || p > 65533 {
			return cli.Usagef("port %d out of range", p)
		}
	}
	if o.Ports.Link < 0 || o.Ports.Link > 65533 {
		return cli.Usagef("-link-port %d out of range", o.Ports.Link)
	}
	if o.RandomMax < 0 || o.LoadFor < 5*time.Second {
		return cli.Usagef("-random-max must not be negative and -load-for must be at least 5s")
	}
	if o.LeaseTTL < 0 || o.LeaseTTL%time.Second != 0 {
		return cli.Usagef("-lease-ttl must be whole seconds")
	}
	if o.TickRate < 0 || o.TickRate > 120 {
		return cli.Usagef("-tick-rate must be 0 (default) to 120")
	}
	if o.RecoveryTimeout < time.Second {
		return cli.Usagef("-recovery-timeout must be at least 1s")
	}
	for _, f := range o.Faults {
		if !slices.Contains(FaultOrder, f) {
			return cli.Usagef("unknown fault %q (known: %s)", f, strings.Join(FaultOrder, ", "))
		}
	}
	if len(o.Faults) == 0 {
		return cli.Usagef("-faults selects nothing")
	}
	if o.Ports.Link == 0 && slices.Contains(o.Faults, faultCutOwner) {
		return cli.Usagef("cut-owner needs route links (-link-port)")
	}
	for name, c := range o.Reps {
		if c < 1 {
			return cli.Usagef("-reps: %q: want fault=count with count ≥ 1", name+"="+strconv.Itoa(c))
		}
		if !slices.Contains(o.Faults, name) {
			return cli.Usagef("-reps: %q is not a selected fault", name)
		}
	}
	return nil
}

// faults are the selected faults in FaultOrder.
func (o Config) faults() []string {
	var out []string
	for _, f := range FaultOrder {
		if slices.Contains(o.Faults, f) {
			out = append(out, f)
		}
	}
	return out
}

// reps is how many times fault runs.
func (o Config) reps(fault string) int {
	if n, ok := o.Reps[fault]; ok {
		return n
	}
	return o.N
}

// effectiveLeaseTTL is the lease TTL the nodes run with.
func (o Config) effectiveLeaseTTL() time.Duration {
	if o.LeaseTTL > 0 {
		return o.LeaseTTL
	}
	return room.DefaultConfig("").LeaseTTL
}

// effectiveTickRate is the tick rate the nodes run with.
func (o Config) effectiveTickRate() int {
	if o.TickRate > 0 {
		return o.TickRate
	}
	return room.DefaultConfig("").TickRate
}

// tickPeriod is the time between two ticks.
func (o Config) tickPeriod() time.Duration {
	return time.Second / time.Duration(o.effectiveTickRate())
}
