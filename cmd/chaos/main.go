// Command chaos runs Tickmesh's long chaos suite (package test/chaos): three real node processes on Linux
// network namespaces, WebSocket bots in one room (the lobby by default), and a seeded, shuffled list of faults, each checked
// against the invariants of docs/CHAOS.md. It writes a markdown report and exits 1 when any invariant was
// violated. It needs root.
//
//	go run ./cmd/chaos -seed 7 -owner-kills 100 -random-kills 50 -partitions 100 -freezes 50 -restarts 20
//
// Flags:
//
//	-seed N            fault plan and choices (default: the current Unix time, printed)
//	-owner-kills N     SIGKILL the owner, restart it (default 100)
//	-random-kills N    SIGKILL a random node, restart it (default 50)
//	-partitions N      nftables partitions, each one of owner isolated, non-owner isolated, one-way loss,
//	                   bridge (default 100)
//	-freezes N         SIGSTOP the owner for 2 × lease TTL (default 50)
//	-restarts N        SIGKILL and restart the whole cluster (default 20)
//	-plan k1,k2,...    run exactly these faults in this order instead (kinds as in the report)
//	-bots N            bots (default 6)
//	-lease-ttl D       the nodes' -lease-ttl (default 10s)
//	-bin PATH          node binary (default: go build ./cmd/node into the output directory)
//	-race-nodes        build the node binary with -race
//	-out DIR           output directory (default $TMPDIR/tickmesh-chaos-<seed>): report.md, node logs
//	                   (n1.log..n3.log), node data, and records.jsonl.gz (every observation) when it failed
//	-keep-data         keep the nodes' JetStream data after a passing run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/test/chaos"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", uint64(time.Now().Unix()), "seed of the fault plan and choices")
	ownerKills := fs.Int("owner-kills", 100, "owner kills")
	randomKills := fs.Int("random-kills", 50, "random-node kills")
	partitions := fs.Int("partitions", 100, "partitions")
	freezes := fs.Int("freezes", 50, "owner freezes")
	restarts := fs.Int("restarts", 20, "whole-cluster restarts")
	planFlag := fs.String("plan", "", "exact comma-separated list of faults (overrides the counts)")
	bots := fs.Int("bots", 6, "bots")
	room := fs.String("room", "lobby", "the room the bots play and the faults follow (its game by the nodes' -games: \"collect-…\" rooms play collect)")
	leaseTTL := fs.Duration("lease-ttl", 10*time.Second, "the nodes' -lease-ttl")
	bin := fs.String("bin", "", "node binary (default: build ./cmd/node)")
	raceNodes := fs.Bool("race-nodes", false, "build the node binary with -race")
	out := fs.String("out", "", "output directory (default $TMPDIR/tickmesh-chaos-<seed>)")
	keepData := fs.Bool("keep-data", false, "keep node data after a passing run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chaos: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var plan []chaos.Kind
	if *planFlag != "" {
		for _, s := range strings.Split(*planFlag, ",") {
			k, err := chaos.ParseKind(strings.TrimSpace(s))
			if err != nil {
				fmt.Fprintf(stderr, "chaos: -plan: %v\n", err)
				return 2
			}
			plan = append(plan, k)
		}
	}
	if err := chaos.CheckPrivileges(); err != nil {
		fmt.Fprintf(stderr, "chaos: cannot run here: %v\n", err)
		return 3
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("tickmesh-chaos-%d", *seed))
	}
	dir, _ = filepath.Abs(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return 1
	}
	command := "go run ./cmd/chaos " + strings.Join(append([]string{"-seed", fmt.Sprint(*seed)}, withoutSeed(args)...), " ")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	if *bin == "" {
		*bin = filepath.Join(dir, "tickmesh-node")
		logf("building %s", *bin)
		var flags []string
		if *raceNodes {
			flags = append(flags, "-race")
		}
		if err := cluster.GoBuild(ctx, *bin, "./cmd/node", flags...); err != nil {
			fmt.Fprintf(stderr, "chaos: %v\n", err)
			return 1
		}
	}
	logf("seed %d, output %s", *seed, dir)
	h, err := chaos.New(ctx, chaos.Config{
		Seed: *seed, Bots: *bots, Room: *room, LeaseTTL: *leaseTTL, Plan: plan,
		OwnerKills: *ownerKills, RandomKills: *randomKills, Partitions: *partitions, Freezes: *freezes, Restarts: *restarts,
		Bin: *bin, Dir: dir, Logf: logf,
	})
	if err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return 1
	}
	res, runErr := h.Run(ctx)
	h.Close()
	stop()
	p, err := h.WriteReport(res, command)
	if err != nil {
		fmt.Fprintf(stderr, "chaos: write report: %v\n", err)
	}
	fmt.Fprint(stdout, res.Summary())
	fmt.Fprintf(stdout, "report: %s\n", p)
	if runErr != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", runErr)
		return 1
	}
	if !res.Passed() {
		return 1
	}
	if !*keepData {
		for _, n := range []string{"n1", "n2", "n3"} {
			os.RemoveAll(filepath.Join(dir, n))
		}
	}
	return 0
}

// withoutSeed drops -seed from args (the command line printed in the report puts the seed first).
func withoutSeed(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-seed" || a == "--seed":
			i++
		case strings.HasPrefix(a, "-seed=") || strings.HasPrefix(a, "--seed="):
		default:
			out = append(out, a)
		}
	}
	return out
}
