// Command plainrelay is the minimal Go broadcast server the relay is measured against (internal/plainrelay,
// `task bench:baseline`): /ws answers a protocol 1 hello and sends each room's sockets one JSON tick per period.
//
//	taskset -c 0 plainrelay -http 127.0.0.1:28090 -extra-players 1
//
// It serves until the first SIGINT or SIGTERM; exit 2 after a usage error, 1 after any other.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/tickmesh/tickmesh/internal/cli"
	"github.com/tickmesh/tickmesh/internal/plainrelay"
)

func main() { cli.Main("plainrelay", " (see -h)", run) }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := plainrelay.DefaultConfig()
	fs := flag.NewFlagSet("plainrelay", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("http", "127.0.0.1:28090", "listen address of /ws")
	fs.IntVar(&cfg.TickRate, "tick-rate", cfg.TickRate, "ticks per second of each room")
	fs.IntVar(&cfg.MaxSockets, "max-sockets", cfg.MaxSockets, "open sockets at most")
	fs.IntVar(&cfg.MaxRooms, "max-rooms", cfg.MaxRooms, "rooms at most")
	fs.IntVar(&cfg.Shards, "shards", cfg.Shards, "broadcaster goroutines (default: GOMAXPROCS)")
	fs.IntVar(&cfg.ExtraPlayers, "extra-players", cfg.ExtraPlayers, "players in each room's tick without a socket here (bench:fanout's seed client)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "one tick write to one socket; a slower one drops the socket")
	if err := cli.Parse(fs, args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv, err := plainrelay.Start(ctx, cfg, ln)
	if err != nil {
		ln.Close()
		return fmt.Errorf("start the server: %w", err)
	}
	fmt.Fprintf(stdout, "plainrelay: serving ws://%s/ws\n", srv.Addr())
	<-srv.Done()
	return srv.Close()
}
