// Command roombench is the room-count benchmark (`task bench:rooms`, issue #22, package internal/roombench): the
// same number of clients spread over more and more rooms on a local 3-node cluster, to show what a room costs the
// cluster.
//
//	go build -o bin/tickmesh-node ./cmd/node
//	go run ./cmd/roombench -bin bin/tickmesh-node [-clients 1000] [-rooms 10,100,500,1000] [-out results.md]
//
// main parses the flags into a roombench.Config, runs it until it ends or the first SIGINT or SIGTERM, writes the
// report to -out after a complete run and exits 2 after a usage error, 1 after any other.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tickmesh/tickmesh/internal/cli"
	"github.com/tickmesh/tickmesh/internal/roombench"
)

func main() { cli.Main("roombench", " (see -h)", run) }

// run parses args, runs the benchmark and writes the report file.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, out, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	rep, err := roombench.Run(ctx, cfg, stdout)
	if err != nil || out == "" {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	rep.Write(f, true)
	return f.Close()
}

// parseFlags reads the command line into a Config and the report file's path; roombench.Run validates the Config.
func parseFlags(args []string, stdout io.Writer) (cfg roombench.Config, out string, err error) {
	cfg = roombench.DefaultConfig()
	fs := flag.NewFlagSet("roombench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.StringVar(&cfg.Bin, "bin", "", "node binary (required; build it with: go build -o bin/tickmesh-node ./cmd/node)")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "clients, the same for every room count")
	roomsFlag := fs.String("rooms", joinInts(cfg.Rooms), "comma-separated room counts; the first is the baseline of the per-room differences")
	fs.DurationVar(&cfg.Ramp, "ramp", cfg.Ramp, "spread the connections over this long")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "wait this long after the last client is welcomed (rooms placed and balanced, first snapshots written)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measurement window")
	fs.BoolVar(&cfg.Failover, "failover", cfg.Failover, "after the window, kill the node that owns the most rooms and measure the rooms' tick gaps")
	fs.DurationVar(&cfg.RecoveryTimeout, "recovery-timeout", cfg.RecoveryTimeout, "a room that has not ticked again after this counts as not recovered")
	fs.IntVar(&cfg.TickRate, "tick-rate", cfg.TickRate, "the nodes' tick rate")
	fs.IntVar(&cfg.Ports.HTTP, "http-port", cfg.Ports.HTTP, "HTTP port of n1 (n2, n3 use the next ones)")
	fs.IntVar(&cfg.Ports.Admin, "admin-port", cfg.Ports.Admin, "admin HTTP port of n1")
	fs.IntVar(&cfg.Ports.NATS, "nats-port", cfg.Ports.NATS, "NATS client port of n1")
	fs.IntVar(&cfg.Ports.Route, "route-port", cfg.Ports.Route, "NATS route port of n1")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "the nodes' -log-level")
	nodeFlags := fs.String("node-flags", "", "more flags for every node, space-separated (e.g. -pprof)")
	fs.BoolVar(&cfg.Keep, "keep", cfg.Keep, "keep the temporary directory (data, node logs)")
	fs.StringVar(&out, "out", "", "also write the results as a markdown block to this file")
	if err := cli.Parse(fs, args); err != nil {
		return cfg, "", err
	}
	cfg.NodeFlags = strings.Fields(*nodeFlags)
	cfg.Rooms = nil
	for _, f := range strings.Split(*roomsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return cfg, "", cli.Usagef("-rooms: %q is not a room count", f)
		}
		cfg.Rooms = append(cfg.Rooms, n)
	}
	cfg.CommandLine = cli.CommandLine("roombench", args)
	return cfg, out, nil
}

// joinInts renders ns as a comma-separated flag value.
func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
