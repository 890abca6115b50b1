package cluster

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// Node is everything about one node that the harness decides: its addresses and flags. Secrets never go into
// flags (they show in ps); they reach the node through the environment (Secrets.Env).
type Node struct {
	Name  string
	HTTP  string // public listener, host:port: the game, /ws, /healthz, /readyz
	Admin string // admin listener (-admin-http), host:port; "" when the node has none and HTTP serves everything
	NATS  string // NATS client port
	Route string // NATS route listener
	// Link is the route link in front of Route (links.go), which the peers dial and know the node by; "" when
	// the peers dial Route directly.
	Link    string
	Routes  []string // the peers' route addresses (their links, when there are links)
	DataDir string
	Flags   []string // further flags, after the ones above (-lease-ttl, -log-level, ...)
}

// URL is the base URL of the public listener.
func (n Node) URL() string { return "http://" + n.HTTP }

// AdminURL is the base URL that serves /metrics and /api/cluster: the admin listener when the node has one.
func (n Node) AdminURL() string {
	if n.Admin == "" {
		return n.URL()
	}
	return "http://" + n.Admin
}

// WSURL is the node's WebSocket endpoint.
func (n Node) WSURL() string { return "ws://" + n.HTTP + "/ws" }

// NATSURL is the node's NATS client URL.
func (n Node) NATSURL() string { return "nats://" + n.NATS }

// Args are the node's command-line flags.
func (n Node) Args() []string {
	args := []string{"-name", n.Name, "-http", n.HTTP}
	if n.Admin != "" {
		args = append(args, "-admin-http", n.Admin)
	}
	args = append(args,
		"-nats", n.NATS,
		"-cluster", n.Route,
		"-routes", strings.Join(n.Routes, ","),
		"-data", n.DataDir,
		"-public-url", n.URL(),
	)
	if n.Link != "" {
		args = append(args, "-cluster-advertise", n.Link)
	}
	return append(args, n.Flags...)
}

// Listens lists the addresses the node listens on, each with what it is for (the route link is held by
// whoever runs the links, not by the node).
func (n Node) Listens() []Listen {
	ls := []Listen{{n.HTTP, n.Name + " HTTP"}}
	if n.Admin != "" {
		ls = append(ls, Listen{n.Admin, n.Name + " admin HTTP"})
	}
	return append(ls, Listen{n.NATS, n.Name + " NATS client"}, Listen{n.Route, n.Name + " NATS routes"})
}

// Listen is an address something listens on and what for.
type Listen struct {
	Addr string
	What string
}

// CheckFree fails on the first address something already listens on, naming it and how to find out what.
func CheckFree(ls []Listen) error {
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			_, port, _ := net.SplitHostPort(l.Addr)
			return fmt.Errorf("port %s (%s) is in use: %v; see `ss -ltnp 'sport = :%s'`", l.Addr, l.What, err, port)
		}
		ln.Close()
	}
	return nil
}

// Ports are the first port of each listener of a cluster on one host: node i (from 0) listens on base+i. A zero
// Admin or Link means none.
type Ports struct {
	HTTP, Admin, NATS, Route, Link int
}

// Local lays out n nodes named n1..nN on 127.0.0.1 with ports from p, each node's data in dataDir/<name>, every
// node routing to every other (through the links when p.Link is set).
func Local(n int, p Ports, dataDir string) []Node {
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = "127.0.0.1"
	}
	return layout(hosts, p, 1, dataDir)
}

// OnHosts lays out one node per address, all on the same ports p, named n1..nN, each node's data in
// dataDir/<name>/data.
func OnHosts(addrs []string, p Ports, dataDir string) []Node {
	nodes := layout(addrs, p, 0, dataDir)
	for i := range nodes {
		nodes[i].DataDir = filepath.Join(nodes[i].DataDir, "data")
	}
	return nodes
}

// layout puts node i on hosts[i], its ports at base + i*stride.
func layout(hosts []string, p Ports, stride int, dataDir string) []Node {
	addr := func(i, base int) string {
		if base == 0 {
			return ""
		}
		return net.JoinHostPort(hosts[i], strconv.Itoa(base+i*stride))
	}
	nodes := make([]Node, len(hosts))
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		nodes[i] = Node{Name: name, HTTP: addr(i, p.HTTP), Admin: addr(i, p.Admin), NATS: addr(i, p.NATS),
			Route: addr(i, p.Route), Link: addr(i, p.Link), DataDir: filepath.Join(dataDir, name)}
	}
	for i := range nodes {
		for j, peer := range nodes {
			switch {
			case j == i:
			case peer.Link != "":
				nodes[i].Routes = append(nodes[i].Routes, peer.Link)
			default:
				nodes[i].Routes = append(nodes[i].Routes, peer.Route)
			}
		}
	}
	return nodes
}
