// Command failbench is the failover benchmark (`task bench:failover`, package internal/failbench): it starts three
// real node processes, injects each fault many times and reports the tick gap the surviving nodes see and the
// stale ticks published and accepted.
//
//	go build -o bin/tickmesh-node ./cmd/node
//	go run ./cmd/failbench -bin bin/tickmesh-node [-n 20] [-faults kill-owner,...] [-out results.md] [-keep]
//
// main parses the flags into a failbench.Config, runs it until it ends or the first SIGINT or SIGTERM, writes
// the report to -out (also the partial one of an interrupted run) and exits 2 after a usage error, 1 after any
// other.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tickmesh/tickmesh/internal/cli"
	"github.com/tickmesh/tickmesh/internal/failbench"
)

func main() {
	if os.Getenv(failbench.BurnEnv) == "1" {
		failbench.Burn()
	}
	cli.Main("failbench", " (see -h)", run)
}

// run parses args, runs the benchmark and writes the report file.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, out, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	rep, err := failbench.Run(ctx, cfg, stdout)
	if rep != nil && out != "" {
		var buf bytes.Buffer
		rep.WriteMarkdown(&buf)
		if werr := os.WriteFile(out, buf.Bytes(), 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// parseFlags reads the command line into a Config and the report file's path; failbench.Run validates the Config.
func parseFlags(args []string, stdout io.Writer) (cfg failbench.Config, out string, err error) {
	cfg = failbench.DefaultConfig()
	fs := flag.NewFlagSet("failbench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.StringVar(&cfg.Bin, "bin", "", "node binary (required; build it with: go build -o bin/tickmesh-node ./cmd/node)")
	fs.StringVar(&cfg.Room, "room", cfg.Room, "the room whose owner the faults hit (its game by the nodes' default rule, e.g. collect-… for the collect game); a room other than the lobby is held open by a WebSocket player")
	fs.IntVar(&cfg.N, "n", cfg.N, "repetitions of each fault")
	repsFlag := fs.String("reps", "", "per-fault repetitions overriding -n, like stop-owner=5,kill-inputs-leader=8")
	faultsFlag := fs.String("faults", strings.Join(cfg.Faults, ","), "comma-separated faults to run")
	fs.IntVar(&cfg.Ports.HTTP, "http-port", cfg.Ports.HTTP, "HTTP port of n1 (n2, n3 use the next ones)")
	fs.IntVar(&cfg.Ports.Admin, "admin-port", cfg.Ports.Admin, "admin HTTP port of n1 (metrics, /api/cluster; n2, n3 use the next ones)")
	fs.IntVar(&cfg.Ports.NATS, "nats-port", cfg.Ports.NATS, "NATS client port of n1 (n2, n3 use the next ones)")
	fs.IntVar(&cfg.Ports.Route, "route-port", cfg.Ports.Route, "NATS route port of n1 (n2, n3 use the next ones)")
	fs.IntVar(&cfg.Ports.Link, "link-port", cfg.Ports.Link, "route link of n1, which the peers dial (n2, n3 use the next ones; 0: no links, and no cut-owner)")
	fs.BoolVar(&cfg.Random, "random", cfg.Random, "inject each fault at a random moment once every node is ready and ticking again, without waiting for agreement or placement")
	fs.DurationVar(&cfg.RandomMax, "random-max", cfg.RandomMax, "with -random, the longest wait before a fault")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the random moments (-random) and of load-owner's pauses")
	fs.DurationVar(&cfg.LoadFor, "load-for", cfg.LoadFor, "how long load-owner loads the owner's node in each repetition")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", cfg.LeaseTTL, "passed to the nodes as -lease-ttl (0 = the node default)")
	fs.IntVar(&cfg.TickRate, "tick-rate", cfg.TickRate, "passed to the nodes as -tick-rate (0 = the node default)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "the nodes' -log-level")
	fs.BoolVar(&cfg.Isolate, "isolate", cfg.Isolate, "before a leader fault, move the other placed streams' leaders off the node to kill")
	fs.BoolVar(&cfg.Keep, "keep", cfg.Keep, "keep the temporary directory (data, node logs, events.log)")
	fs.StringVar(&out, "out", "", "also write the results as a markdown block to this file")
	fs.DurationVar(&cfg.RecoveryTimeout, "recovery-timeout", cfg.RecoveryTimeout, "a repetition that has not recovered after this fails")
	if err := cli.Parse(fs, args); err != nil {
		return cfg, "", err
	}
	cfg.Faults = nil
	for _, f := range strings.Split(*faultsFlag, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.Faults = append(cfg.Faults, f)
		}
	}
	cfg.Reps = map[string]int{}
	for _, kv := range strings.Split(*repsFlag, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, count, ok := strings.Cut(kv, "=")
		c, err := strconv.Atoi(count)
		if !ok || err != nil || c < 1 {
			return cfg, "", cli.Usagef("-reps: %q: want fault=count with count ≥ 1", kv)
		}
		cfg.Reps[name] = c
	}
	cfg.CommandLine = cli.CommandLine("failbench", args)
	return cfg, out, nil
}
