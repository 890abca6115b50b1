// Command node runs one Tickmesh node: an embedded NATS server with JetStream, room ownership, the WebSocket
// gateway and the browser client. Settings come from flags and the environment (see README.md, Settings).
//
// Exit codes: 0 after a clean shutdown, 2 for a configuration problem (one line naming the setting), 1 for a
// runtime failure. SIGTERM or SIGINT shut down gracefully; a second signal exits at once.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv)
	if errors.Is(err, config.ErrHelp) {
		config.Usage(stderr)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tickmesh: configuration: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	if cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n, err := node.New(ctx, cfg.Node, log)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "tickmesh: configuration: %v\n", ce)
			return 2
		}
		fmt.Fprintf(stderr, "tickmesh: start: %v\n", err)
		return 1
	}
	// A second signal exits at once.
	go func() {
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		<-ch
		fmt.Fprintln(stderr, "tickmesh: second signal, exiting now")
		os.Exit(1)
	}()
	log.Info("node ready to serve", "name", cfg.Node.Name, "http", cfg.Node.HTTPAddr, "public_url", n.URL(),
		"admin", n.AdminURL(), "nats", cfg.Node.Mesh.ClientAddr)
	if err := n.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "tickmesh: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("node", cfg.Node.Name)
}
