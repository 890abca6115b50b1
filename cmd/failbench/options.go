package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tickmesh/tickmesh/internal/cli"
	"github.com/tickmesh/tickmesh/pkg/room"
)

// options are failbench's settings.
type options struct {
	bin             string
	reps            map[string]int // fault → repetitions, in faultOrder
	faults          []string
	httpPort        int
	adminPort       int
	natsPort        int
	routePort       int
	linkPort        int           // first route link port (0: no links, and no cut-owner)
	leaseTTL        time.Duration // 0 = the node's default
	tickRate        int           // 0 = the node's default
	logLevel        string
	keep            bool
	isolate         bool
	out             string
	recoveryTimeout time.Duration
	random          bool          // inject faults at random moments, without waiting for a settled cluster
	randomMax       time.Duration // the longest random wait after the cluster is running again
	seed            uint64        // the random moments' and the load's schedule
	loadFor         time.Duration // how long load-owner loads the owner's node, per repetition
	commandLine     string
}

// effectiveLeaseTTL is the lease TTL the nodes run with.
func (o options) effectiveLeaseTTL() time.Duration {
	if o.leaseTTL > 0 {
		return o.leaseTTL
	}
	return room.DefaultConfig("").LeaseTTL
}

// effectiveTickRate is the tick rate the nodes run with.
func (o options) effectiveTickRate() int {
	if o.tickRate > 0 {
		return o.tickRate
	}
	return room.DefaultConfig("").TickRate
}

// tickPeriod is the time between two ticks.
func (o options) tickPeriod() time.Duration {
	return time.Second / time.Duration(o.effectiveTickRate())
}

func parseOptions(args []string, stdout io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("failbench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.StringVar(&o.bin, "bin", "", "node binary (required; build it with: go build -o bin/tickmesh-node ./cmd/node)")
	n := fs.Int("n", 20, "repetitions of each fault")
	repsFlag := fs.String("reps", "", "per-fault repetitions overriding -n, like stop-owner=5,kill-inputs-leader=8")
	faultsFlag := fs.String("faults", strings.Join(faultOrder, ","), "comma-separated faults to run")
	fs.IntVar(&o.httpPort, "http-port", 18181, "HTTP port of n1 (n2, n3 use the next ones)")
	fs.IntVar(&o.adminPort, "admin-port", 18281, "admin HTTP port of n1 (metrics, /api/cluster; n2, n3 use the next ones)")
	fs.IntVar(&o.natsPort, "nats-port", 14322, "NATS client port of n1 (n2, n3 use the next ones)")
	fs.IntVar(&o.routePort, "route-port", 16322, "NATS route port of n1 (n2, n3 use the next ones)")
	fs.IntVar(&o.linkPort, "link-port", 16422, "route link of n1, which the peers dial (n2, n3 use the next ones; 0: no links, and no cut-owner)")
	fs.BoolVar(&o.random, "random", false, "inject each fault at a random moment once every node is ready and ticking again, without waiting for agreement or placement")
	fs.DurationVar(&o.randomMax, "random-max", 3*time.Second, "with -random, the longest wait before a fault")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the random moments (-random) and of load-owner's pauses")
	fs.DurationVar(&o.loadFor, "load-for", time.Minute, "how long load-owner loads the owner's node in each repetition")
	fs.DurationVar(&o.leaseTTL, "lease-ttl", 0, "passed to the nodes as -lease-ttl (0 = the node default)")
	fs.IntVar(&o.tickRate, "tick-rate", 0, "passed to the nodes as -tick-rate (0 = the node default)")
	fs.StringVar(&o.logLevel, "log-level", "info", "the nodes' -log-level")
	fs.BoolVar(&o.isolate, "isolate", true, "before a leader fault, move the other placed streams' leaders off the node to kill")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data, node logs, events.log)")
	fs.StringVar(&o.out, "out", "", "also write the results as a markdown block to this file")
	fs.DurationVar(&o.recoveryTimeout, "recovery-timeout", 30*time.Second, "a repetition that has not recovered after this fails")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, cli.Usagef("%s", err.Error())
	}
	if fs.NArg() > 0 {
		return o, cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	if o.bin == "" {
		return o, cli.Usagef("-bin is required (build the node with: go build -o bin/tickmesh-node ./cmd/node)")
	}
	if st, err := os.Stat(o.bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return o, cli.Usagef("-bin %q is not an executable file", o.bin)
	}
	if *n < 1 {
		return o, cli.Usagef("-n must be at least 1")
	}
	for _, p := range []int{o.httpPort, o.adminPort, o.natsPort, o.routePort} {
		if p < 1 || p > 65533 {
			return o, cli.Usagef("port %d out of range", p)
		}
	}
	if o.linkPort < 0 || o.linkPort > 65533 {
		return o, cli.Usagef("-link-port %d out of range", o.linkPort)
	}
	if o.randomMax < 0 || o.loadFor < 5*time.Second {
		return o, cli.Usagef("-random-max must not be negative and -load-for must be at least 5s")
	}
	if o.leaseTTL < 0 || o.leaseTTL%time.Second != 0 {
		return o, cli.Usagef("-lease-ttl must be whole seconds")
	}
	if o.tickRate < 0 || o.tickRate > 120 {
		return o, cli.Usagef("-tick-rate must be 0 (default) to 120")
	}
	if o.recoveryTimeout < time.Second {
		return o, cli.Usagef("-recovery-timeout must be at least 1s")
	}
	var err error
	if o.faults, err = parseFaults(*faultsFlag); err != nil {
		return o, err
	}
	if o.linkPort == 0 && slices.Contains(o.faults, faultCutOwner) {
		return o, cli.Usagef("cut-owner needs route links (-link-port)")
	}
	if o.reps, err = parseReps(*repsFlag, o.faults, *n); err != nil {
		return o, err
	}
	o.commandLine = commandLine(args)
	return o, nil
}

// parseFaults checks a comma-separated fault list and returns it in faultOrder.
func parseFaults(s string) ([]string, error) {
	want := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(faultOrder, f) {
			return nil, cli.Usagef("unknown fault %q (known: %s)", f, strings.Join(faultOrder, ", "))
		}
		want[f] = true
	}
	if len(want) == 0 {
		return nil, cli.Usagef("-faults selects nothing")
	}
	var out []string
	for _, f := range faultOrder {
		if want[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

// parseReps gives every selected fault n repetitions, then applies the name=count overrides in s.
func parseReps(s string, faults []string, n int) (map[string]int, error) {
	reps := map[string]int{}
	for _, f := range faults {
		reps[f] = n
	}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, count, ok := strings.Cut(kv, "=")
		c, err := strconv.Atoi(count)
		if !ok || err != nil || c < 1 {
			return nil, cli.Usagef("-reps: %q: want fault=count with count ≥ 1", kv)
		}
		if _, sel := reps[name]; !sel {
			return nil, cli.Usagef("-reps: %q is not a selected fault", name)
		}
		reps[name] = c
	}
	return reps, nil
}

// commandLine renders how failbench was invoked, for the report.
func commandLine(args []string) string {
	parts := []string{"go run ./cmd/failbench"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
