package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tickmesh/tickmesh/internal/cluster"
)

// `up` holds a route link (internal/cluster's Links) in front of each node's route port, and `cut` and `heal`
// (other invocations) tell it which nodes to cut off through a file that it follows.

// cutFile is where `cut` and `heal` write the names of the nodes cut off, one per line; `up` reads it.
func (c *local) cutFile() string { return c.Dir + "/cut" }

// runLinks starts the links of a fresh cluster (every node connected) and follows the cut file until the
// returned function is called, which stops both.
func runLinks(ctx context.Context, c *local, out io.Writer) (stop func(), err error) {
	removeQuietly(c.cutFile())
	lk, err := cluster.StartLinks(c.Nodes)
	if err != nil {
		return nil, err
	}
	lctx, stopFollow := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		lk.Follow(lctx, c.cutFile(), func(cut []string) {
			if len(cut) == 0 {
				fmt.Fprintln(out, "route links: every node connected")
			} else {
				fmt.Fprintf(out, "route links: cut off from their peers: %s\n", strings.Join(cut, ", "))
			}
		})
	}()
	return func() {
		stopFollow()
		<-followed
		lk.Close()
		removeQuietly(c.cutFile())
	}, nil
}

// setCut is the `cut` and `heal` commands: it changes the cut file that a running `up` follows.
func setCut(c *local, action, name string, out io.Writer) error {
	if _, ok := c.upFile().Running(); !ok {
		return fmt.Errorf("no `task up` is running for %s: the route links live in it", relativePath(c.Dir))
	}
	if c.Nodes[0].Link == "" {
		return errors.New("the cluster runs without route links (-base-link 0): nothing to cut")
	}
	cut, err := cluster.ReadCuts(c.cutFile())
	if err != nil {
		return err
	}
	switch {
	case action == "cut":
		if _, err := c.node(name); err != nil {
			return err
		}
		cut[name] = true
	case name == "":
		cut = map[string]bool{}
	default:
		if _, err := c.node(name); err != nil {
			return err
		}
		delete(cut, name)
	}
	if err := cluster.WriteCuts(c.cutFile(), cut); err != nil {
		return err
	}
	switch {
	case action == "cut":
		fmt.Fprintf(out, "%s cut off from its peers (routes stall; its HTTP and NATS client ports stay up); heal it with: task heal -- %s\n", name, name)
	case name == "":
		fmt.Fprintln(out, "every node reconnected to its peers")
	default:
		fmt.Fprintf(out, "%s reconnected to its peers\n", name)
	}
	return nil
}

func removeQuietly(file string) {
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
	}
}
