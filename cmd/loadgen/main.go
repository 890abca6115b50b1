// Command loadgen opens many WebSocket clients against Tickmesh nodes and measures what they receive: ticks
// delivered per second and the fraction of the ticks the room's owner published, tick delivery latency (receive
// time - tick.time, so run it on the machine of the owner), input → acknowledgement latency, and, given the
// server's pid, the server's CPU time per delivered message and resident memory per socket.
//
//	loadgen -url ws://127.0.0.1:8080/ws -n 1000 -ramp 10s -duration 30s -pid $(pgrep -f tm-node)
//
// Clients connect evenly over -ramp (round robin over the -url list), say hello as new players in -room (or
// spread over -rooms rooms named <room>-0, <room>-1, ...), and are measured for -duration once every one is
// welcomed or has failed. With -input-rate each client sends that many key changes a second. Each client is a
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
	cfg, jsonPath, err := parseFlags(args, stderr)
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
	r, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 1
	}
	if err := r.WriteTable(stdout); err != nil {
		return 1
	}
	if jsonPath != "" {
		data, err := json.MarshalIndent(r, "", "  ")
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

func parseFlags(args []string, stderr io.Writer) (Config, string, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{Progress: stderr}
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
	jsonPath := fs.String("json", "", "also write the report as JSON to this file (- for stdout)")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, u := range strings.Split(*urls, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		ws, err := wsURL(u)
		if err != nil {
			return cfg, "", err
		}
		cfg.URLs = append(cfg.URLs, ws)
	}
	return cfg, *jsonPath, nil
}

// wsURL accepts a WebSocket URL or a node's http(s) base URL, and returns the WebSocket endpoint.
func wsURL(s string) (string, error) {
	u, ok := tmclient.NormalizeURL(s)
	if !ok {
		return "", fmt.Errorf("bad -url %q: want ws://, wss://, http:// or https://", s)
	}
	return u, nil
}
