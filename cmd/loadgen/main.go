// Command loadgen opens many WebSocket clients against Tickmesh nodes and measures what they receive: ticks
// delivered per second and the fraction of the ticks the room's owner published, tick delivery latency (receive
// time - tick.time, so run it on the machine of the owner), input → acknowledgement latency, and, given the
// server's pid, the server's CPU time per delivered message and resident memory per socket.
//
//	loadgen -url ws://127.0.0.1:8080/ws -n 1000 -ramp 10s -duration 30s -pid $(pgrep -f tm-node)
//
// Clients connect evenly over -ramp (round robin over the -url list), say hello as new players in -room (or
// spread over -rooms rooms named <room>-0, <room>-1, ...), and are measured for -duration once every one is
// welcomed or has failed. With -input-rate each client sends that many key changes a second.
//
// The input-heavy mode (task bench:inputs): -node name=pid@admin-host:port for every node of the cluster adds
// what the inputs cost the node that leads INPUTS (CPU per event stored, from /proc), how many INPUTS messages
// they took (from /metrics), each node's memory, and inputs refused (not_ready); -input-steps 2,5,10 runs the
// load once per input rate (each a full run: ramp, then -duration) and names the highest cluster-wide rate the
// cluster sustained (Sustained).
//
// Each client is a
// pkg/client Client that does not reconnect: one goroutine (its Run) reads only the head of each tick (epoch,
// seq, time) and, while it waits for an acknowledgement, its own player's ack; a few sender goroutines share the
// inputs. Nodes limit sockets per client IP (-max-conns-per-ip, default 200): raise that limit on the node for
// runs from one machine.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	tmclient "github.com/tickmesh/tickmesh/pkg/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, jsonPath, steps, err := parseFlags(args, stderr)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 2
	}
	if limit, err := raiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "loadgen: raise the open file limit: %v\n", err)
	} else if limit > 0 && limit < uint64(cfg.Clients)+64 {
		fmt.Fprintf(stderr, "loadgen: warning: open file limit %d is below -n %d (try ulimit -n)\n", limit, cfg.Clients)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rates := steps
	if len(rates) == 0 {
		rates = []float64{cfg.InputRate}
	}
	var reports []*Report
	for i, rate := range rates {
		cfg.InputRate = rate
		if len(steps) > 0 {
			fmt.Fprintf(stdout, "== step %d of %d: %g inputs/s per client\n", i+1, len(steps), rate)
		}
		r, err := Run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "loadgen: %v\n", err)
			return 1
		}
		if err := r.WriteTable(stdout); err != nil {
			return 1
		}
		reports = append(reports, r)
	}
	if len(steps) > 0 {
		fmt.Fprintln(stdout, "== steps")
		if err := WriteSteps(stdout, rates, reports); err != nil {
			return 1
		}
	}
	if jsonPath != "" {
		var v any = reports[0]
		if len(steps) > 0 {
			v = reports
		}
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "loadgen: %v\n", err)
			return 1
		}
		data = append(data, '\n')
		if jsonPath == "-" {
			_, err = stdout.Write(data)
		} else {
			err = os.WriteFile(jsonPath, data, 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "loadgen: write the report: %v\n", err)
			return 1
		}
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (cfg Config, jsonPath string, steps []float64, err error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg = Config{Progress: stderr}
	urls := fs.String("url", "ws://127.0.0.1:8080/ws", "comma-separated WebSocket URLs (or node base URLs) of the nodes, used round robin")
	fs.IntVar(&cfg.Clients, "n", 100, "number of clients")
	fs.StringVar(&cfg.Room, "room", "lobby", "room to join; with -rooms > 1 the prefix of the room names")
	fs.IntVar(&cfg.Rooms, "rooms", 1, "spread the clients over this many rooms (<room>-0 ...)")
	fs.DurationVar(&cfg.Ramp, "ramp", 5*time.Second, "spread the connections over this long")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measurement window, after the ramp")
	fs.Float64Var(&cfg.InputRate, "input-rate", 0, "key changes per second per client (0: idle)")
	fs.IntVar(&cfg.TickRate, "tick-rate", 20, "the server's tick rate (ticks per second), for the expected tick count")
	fs.IntVar(&cfg.PID, "pid", 0, "server process to sample (/proc/<pid>/stat and status) for CPU and memory")
	fs.IntVar(&cfg.Sample, "sample", 1, "record the delivery latency of every k-th tick of each client")
	fs.StringVar(&cfg.Name, "name", "lg", "player name prefix")
	fs.Var(nodeFlags{&cfg.Nodes}, "node", "a node of the cluster under test, name=pid@admin-host:port (repeat for each): the input-heavy report")
	stepList := fs.String("input-steps", "", "comma-separated input rates per client, increasing: one run each, and the highest sustained rate")
	js := fs.String("json", "", "also write the report as JSON to this file (- for stdout; an array with -input-steps)")
	if err := fs.Parse(args); err != nil {
		return cfg, "", nil, err
	}
	if fs.NArg() > 0 {
		return cfg, "", nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if steps, err = parseSteps(*stepList); err != nil {
		return cfg, "", nil, err
	}
	for _, u := range strings.Split(*urls, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		ws, err := wsURL(u)
		if err != nil {
			return cfg, "", nil, err
		}
		cfg.URLs = append(cfg.URLs, ws)
	}
	return cfg, *js, steps, nil
}

// wsURL accepts a WebSocket URL or a node's http(s) base URL, and returns the WebSocket endpoint.
func wsURL(s string) (string, error) {
	u, ok := tmclient.NormalizeURL(s)
	if !ok {
		return "", fmt.Errorf("bad -url %q: want ws://, wss://, http:// or https://", s)
	}
	return u, nil
}
