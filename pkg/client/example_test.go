package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/tickmesh/tickmesh/pkg/client"
	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// A bot: it joins the lobby, holds the right arrow key once the game runs, and leaves when a tick shows its
// input applied. The node runs in this process, standing for a cluster.
func Example() {
	url, stop, err := startNode()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	bot, err := client.New(client.Config{URLs: []string{url}, Name: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sent client.Sent
	err = bot.Run(ctx, client.Handler{
		Welcome: func(_ client.Conn, w *protocol.Welcome) error {
			fmt.Println("welcomed in", w.Room)
			return nil
		},
		Tick: func(t *client.Tick) error {
			switch {
			case !t.Fresh: // a tick older than one already seen: not what a player is shown
			case sent.Seq == 0:
				sent, err = bot.Input(protocol.Keys{Right: true})
				if err != nil {
					return err // abandons the connection; Run reconnects
				}
			default:
				if ack, ok := t.Ack(bot.Player()); ok && ack >= sent.Seq {
					fmt.Println("input applied")
					cancel()
				}
			}
			return nil
		},
	})
	fmt.Println("stopped:", errors.Is(err, context.Canceled))
	// Output:
	// welcomed in lobby
	// input applied
	// stopped: true
}

// startNode starts a standalone node on free loopback ports with its data in a temporary directory, and returns
// its URL once it is ready.
func startNode() (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "tickmesh-example-")
	if err != nil {
		return "", nil, err
	}
	secrets, err := config.NewSecrets(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	cfg := node.DefaultConfig()
	cfg.Name, cfg.HTTPAddr, cfg.AdminAddr, cfg.Mesh.ClientAddr, cfg.Mesh.DataDir = "n1", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", dir
	secrets.Apply(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return "", nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(n.URL() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n.URL(), stop, nil
			}
		}
	}
	stop()
	return "", nil, errors.New("the node was not ready within a minute")
}
