package main

import (
	"flag"
	"io"
	"time"

	"github.com/tickmesh/tickmesh/internal/cli"
)

// options are the command-line settings of every command.
type options struct {
	dir          string
	bin          string
	nginx        string // auto, on or off
	prometheus   string // auto, off or host:port
	baseHTTP     int
	baseAdmin    int
	baseNATS     int
	baseRoute    int
	baseLink     int // 0: no route links (nodes dial each other directly; no cut)
	nginxPort    int
	readyTimeout time.Duration
}

func defaultOptions() options {
	return options{
		dir:          ".tickmesh",
		bin:          "bin/tickmesh-node",
		nginx:        "auto",
		prometheus:   "auto",
		baseHTTP:     8081,
		baseAdmin:    9091,
		baseNATS:     4222,
		baseRoute:    6222,
		baseLink:     6232,
		nginxPort:    8080,
		readyTimeout: 90 * time.Second,
	}
}

// command is a parsed command line.
type command struct {
	name string
	node string          // for kill, stop, start, freeze, thaw
	opts options         //
	set  map[string]bool // flags given explicitly
}

// nodeCommands take exactly one node name.
var nodeCommands = map[string]bool{"kill": true, "stop": true, "start": true, "freeze": true, "thaw": true, "cut": true}

var plainCommands = map[string]bool{"up": true, "down": true, "status": true, "owner": true, "help": true}

// optionalNodeCommands take one node name or none.
var optionalNodeCommands = map[string]bool{"heal": true}

// parseArgs reads `<command> [flags] [node] [flags]`: flags may come before or after the node name.
func parseArgs(args []string) (command, error) {
	if len(args) == 0 {
		return command{}, cli.Usagef("no command")
	}
	cmd := command{name: args[0], opts: defaultOptions(), set: map[string]bool{}}
	switch cmd.name {
	case "-h", "-help", "--help":
		cmd.name = "help"
		return cmd, nil
	}
	if !nodeCommands[cmd.name] && !plainCommands[cmd.name] && !optionalNodeCommands[cmd.name] {
		return cmd, cli.Usagef("unknown command %q", cmd.name)
	}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &cmd.opts
	fs.StringVar(&o.dir, "dir", o.dir, "state directory")
	fs.IntVar(&o.baseHTTP, "base-http", o.baseHTTP, "first node HTTP port")
	fs.IntVar(&o.baseAdmin, "base-admin", o.baseAdmin, "first node admin port")
	fs.IntVar(&o.baseNATS, "base-nats", o.baseNATS, "first node NATS client port")
	fs.IntVar(&o.baseRoute, "base-route", o.baseRoute, "first node route port")
	fs.IntVar(&o.baseLink, "base-link", o.baseLink, "first route link port (0: no links)")
	fs.IntVar(&o.nginxPort, "nginx-port", o.nginxPort, "load balancer port")
	if cmd.name == "up" || cmd.name == "start" {
		fs.StringVar(&o.bin, "bin", o.bin, "node binary")
	}
	if cmd.name == "up" {
		fs.StringVar(&o.nginx, "nginx", o.nginx, "auto, on or off")
		fs.StringVar(&o.prometheus, "prometheus", o.prometheus, "auto, off or host:port")
		fs.DurationVar(&o.readyTimeout, "ready-timeout", o.readyTimeout, "readiness timeout")
	}

	var positional []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if err == flag.ErrHelp {
				cmd.name = "help"
				return cmd, nil
			}
			return cmd, cli.Usagef("%s: %v", cmd.name, err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
	fs.Visit(func(f *flag.Flag) { cmd.set[f.Name] = true })

	if nodeCommands[cmd.name] {
		if len(positional) != 1 {
			return cmd, cli.Usagef("%s needs one node name, e.g. `localcluster %s n2` (task %s -- n2)", cmd.name, cmd.name, cmd.name)
		}
		cmd.node = positional[0]
	} else if optionalNodeCommands[cmd.name] {
		if len(positional) > 1 {
			return cmd, cli.Usagef("%s takes at most one node name, got %q", cmd.name, positional)
		}
		if len(positional) == 1 {
			cmd.node = positional[0]
		}
	} else if len(positional) > 0 {
		return cmd, cli.Usagef("%s takes no arguments, got %q", cmd.name, positional[0])
	}

	switch o.nginx {
	case "auto", "on", "off":
	default:
		return cmd, cli.Usagef("-nginx %q: want auto, on or off", o.nginx)
	}
	for _, p := range []struct {
		name string
		port int
		n    int // ports used from this base
	}{{"-base-http", o.baseHTTP, nodeCount}, {"-base-admin", o.baseAdmin, nodeCount}, {"-base-nats", o.baseNATS, nodeCount}, {"-base-route", o.baseRoute, nodeCount}, {"-base-link", o.baseLink, nodeCount}, {"-nginx-port", o.nginxPort, 1}} {
		if p.name == "-base-link" && p.port == 0 {
			continue
		}
		if p.port < 1 || p.port+p.n-1 > 65535 {
			return cmd, cli.Usagef("%s %d: want a port from 1 to %d", p.name, p.port, 65536-p.n)
		}
	}
	if o.readyTimeout <= 0 {
		return cmd, cli.Usagef("-ready-timeout must be positive")
	}
	if o.dir == "" {
		return cmd, cli.Usagef("-dir must not be empty")
	}
	return cmd, nil
}
