// Command loadgen opens many WebSocket clients against Tickmesh nodes and measures what they receive: ticks
// delivered per second and the fraction of the ticks the room's owner published, tick delivery latency (receive
// time - tick.time, so run it on the machine of the owner), input → acknowledgement latency, and, given the
// server's pid, the server's CPU time per delivered message and resident memory per socket.
//
//	loadgen -url ws://127.0.0.1:8080/ws -n 1000 -ramp 10s -duration 30s -pid $(pgrep -f tm-node)
//
// Clients connect evenly over -ramp (round robin over the -url list), say hello as new players in -room (or
// spread over -rooms rooms named <room>-0, <room>-1, ...), and are measured for -duration once every one is
// welcomed or has failed. With -input-rate each client sends that many key changes a second; with -moving a share
// of each room's clients hold a key (their players walk) and change direction every -turn-every. -protocol 1 or
// 2 is the protocol the clients speak; -protocol 1,2 runs the same load in each protocol in turn (the second
// run's clients resume the first one's players, so the rooms keep their size) and prints them side by side.
//
// The input-heavy mode (task bench:inputs): -node name=pid@admin-host:port for every node of the cluster adds
// what the inputs cost the node that leads INPUTS (CPU per event stored, from /proc), how many INPUTS messages
// they took (from /metrics), each node's memory, and inputs refused (not_ready); -input-steps 2,5,10 runs the
// load once per input rate (each a full run: ramp, then -duration; in each protocol of -protocol) and names the
// highest cluster-wide rate the cluster sustained (Sustained).
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
	"strconv"
	"strings"
	"syscall"
	"time"

	tmclient "github.com/tickmesh/tickmesh/pkg/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, protocols, jsonPath, steps, err := parseFlags(args, stderr)
	between := cfg.Between
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
	if len(protocols) > 1 {
		// The runs of the second protocol resume the first one's players.
		cfg.Stores = make([]tmclient.Store, cfg.Clients)
		for i := range cfg.Stores {
			cfg.Stores[i] = &tmclient.MemoryStore{}
		}
	}
	rates := steps
	if len(rates) == 0 {
		rates = []float64{cfg.InputRate}
	}
	var reports []*Report
	byProtocol := make([][]*Report, len(protocols))
	runs := 0
	for i, rate := range rates {
		cfg.InputRate = rate
		if len(steps) > 0 {
			fmt.Fprintf(stdout, "== step %d of %d: %g inputs/s per client\n", i+1, len(steps), rate)
		}
		var step []*Report
		for k, p := range protocols {
			if runs > 0 && cfg.Stores != nil {
				// The players of the run before left their rooms as its clients closed; let that land.
				select {
				case <-time.After(between):
				case <-ctx.Done():
					return 1
				}
			}
			runs++
			cfg.Protocol = p
			r, err := Run(ctx, cfg)
			if err != nil {
				fmt.Fprintf(stderr, "loadgen: protocol %d: %v\n", p, err)
				return 1
			}
			if err := r.WriteTable(stdout); err != nil {
				return 1
			}
			fmt.Fprintln(stdout)
			step = append(step, r)
			byProtocol[k] = append(byProtocol[k], r)
		}
		reports = append(reports, step...)
		if len(step) > 1 {
			if err := WriteComparison(stdout, step); err != nil {
				return 1
			}
		}
	}
	for k, p := range protocols {
		if len(steps) == 0 {
			break
		}
		fmt.Fprintf(stdout, "== steps, protocol %d\n", p)
		if err := WriteSteps(stdout, rates, byProtocol[k]); err != nil {
			return 1
		}
	}
	if jsonPath != "" {
		var v any = reports
		if len(reports) == 1 && len(steps) == 0 {
			v = reports[0]
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

func parseFlags(args []string, stderr io.Writer) (cfg Config, protocols []int, jsonPath string, steps []float64, err error) {
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
	protos := fs.String("protocol", "2", "protocol the clients speak: 1 (JSON ticks), 2 (binary keyframes and deltas), or 1,2: the same load in each, side by side")
	fs.Float64Var(&cfg.Moving, "moving", 0, "share of each room's clients that hold a key (0-1)")
	fs.DurationVar(&cfg.TurnEvery, "turn-every", 2*time.Second, "a moving client changes direction this often")
	fs.DurationVar(&cfg.Between, "between", 5*time.Second, "with several protocols: the pause between two runs, for the players' leaves and joins to settle")
	fs.Var(nodeFlags{&cfg.Nodes}, "node", "a node of the cluster under test, name=pid@admin-host:port (repeat for each): the input-heavy report")
	stepList := fs.String("input-steps", "", "comma-separated input rates per client, increasing: one run each (in each protocol), and the highest sustained rate")
	js := fs.String("json", "", "also write the report as JSON to this file (- for stdout; an array for several protocols or with -input-steps)")
	if err := fs.Parse(args); err != nil {
		return cfg, nil, "", nil, err
	}
	if fs.NArg() > 0 {
		return cfg, nil, "", nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if steps, err = parseSteps(*stepList); err != nil {
		return cfg, nil, "", nil, err
	}
	for _, p := range strings.Split(*protos, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 2 {
			return cfg, nil, "", nil, fmt.Errorf("-protocol %q: want 1, 2 or 1,2", *protos)
		}
		protocols = append(protocols, n)
	}
	cfg.Protocol = protocols[0]
	for _, u := range strings.Split(*urls, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		ws, err := wsURL(u)
		if err != nil {
			return cfg, nil, "", nil, err
		}
		cfg.URLs = append(cfg.URLs, ws)
	}
	return cfg, protocols, *js, steps, nil
}

// wsURL accepts a WebSocket URL or a node's http(s) base URL, and returns the WebSocket endpoint.
func wsURL(s string) (string, error) {
	u, ok := tmclient.NormalizeURL(s)
	if !ok {
		return "", fmt.Errorf("bad -url %q: want ws://, wss://, http:// or https://", s)
	}
	return u, nil
}
