package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Route links: on one machine every node shares the loopback interface, so there is no link to pull. `up` puts
// a small TCP relay (a "link") in front of each node's route port: the nodes dial each other, and advertise
// themselves, only through the links (-routes and -cluster-advertise name the link addresses). `localcluster cut
// n2` makes every link stop carrying bytes between n2 and its peers, in both directions, without closing
// anything, as a network partition does: the nodes find out through their route pings (1 s, 2 outstanding), not
// through a clean close. Connections opened during the cut are accepted and carry nothing either. `heal` closes
// the stalled connections, so that the nodes dial again at once. Browser and NATS-client ports are not
// touched: a cut-off node keeps its players' sockets, like a node that lost its peers but not the internet.
//
// A link learns who dialed from the route handshake: the dialing server's INFO names it (server_name). Until
// then a connection counts as the target node's alone.

// cutFile is where `cut` and `heal` write the names of the nodes cut off, one per line; `up` reads it.
func (c *cluster) cutFile() string { return c.Dir + "/cut" }

// linksFile is written by `up` while its links run (its pid), and removed when it exits.
func (c *cluster) linksFile() string { return c.Dir + "/links.json" }

// linksInfo is the content of linksFile.
type linksInfo struct {
	PID int `json:"pid"`
}

// links relays every node's route traffic and cuts it on demand.
type links struct {
	mu      sync.Mutex
	closing bool
	cut     map[string]bool
	conns   map[*linkConn]struct{}
	lns     []net.Listener
	wg      sync.WaitGroup
}

// linkConn is one route connection through a link.
type linkConn struct {
	target string // the node the link is in front of
	dialer string // the node that dialed, once its INFO was seen
	client net.Conn

	mu     sync.Mutex
	server net.Conn // nil until dialed
	closed bool
}

func (lc *linkConn) close() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.closed = true
	lc.client.Close()
	if lc.server != nil {
		lc.server.Close()
	}
}

// setServer records the connection to the node; it reports false (and closes it) when the link connection
// was closed meanwhile.
func (lc *linkConn) setServer(server net.Conn) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.closed {
		server.Close()
		return false
	}
	lc.server = server
	return true
}

// involves reports whether the connection has an end in a node that is cut off.
func (lc *linkConn) involves(cut map[string]bool) bool {
	return cut[lc.target] || (lc.dialer != "" && cut[lc.dialer])
}

// startLinks listens on every node's link address.
func startLinks(c *cluster) (*links, error) {
	l := &links{cut: map[string]bool{}, conns: map[*linkConn]struct{}{}}
	for _, n := range c.Nodes {
		ln, err := net.Listen("tcp", n.Link)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("route link of %s: %w", n.Name, err)
		}
		l.lns = append(l.lns, ln)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.accept(ln, n)
		}()
	}
	return l, nil
}

// Close stops the links and every connection through them, and waits for their goroutines.
func (l *links) Close() {
	l.mu.Lock()
	l.closing = true
	for _, ln := range l.lns {
		ln.Close()
	}
	for lc := range l.conns {
		lc.close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *links) accept(ln net.Listener, target nodeSpec) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		lc := &linkConn{target: target.Name, client: client}
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			client.Close()
			return
		}
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.relay(lc, target.Route)
			l.mu.Lock()
			delete(l.conns, lc)
			l.mu.Unlock()
		}()
	}
}

// relay carries one connection until either side closes it.
func (l *links) relay(lc *linkConn, route string) {
	defer lc.close()
	server, err := net.DialTimeout("tcp", route, 2*time.Second)
	if err != nil || !lc.setServer(server) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		l.pump(lc, server, lc.client, true)
		lc.close()
	}()
	go func() {
		defer wg.Done()
		l.pump(lc, lc.client, server, false)
		lc.close()
	}()
	wg.Wait()
}

var serverNameRE = regexp.MustCompile(`"server_name":"([^"]+)"`)

// pump copies src to dst, dropping what passes while the connection is cut. From the dialer's side
// (fromDialer) it also looks for the dialer's name in its first kilobytes.
func (l *links) pump(lc *linkConn, dst io.Writer, src io.Reader, fromDialer bool) {
	buf := make([]byte, 32<<10)
	var head []byte
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.mu.Lock()
			if fromDialer && lc.dialer == "" && len(head) < 64<<10 {
				head = append(head, buf[:n]...)
				if m := serverNameRE.FindSubmatch(head); m != nil {
					lc.dialer = string(m[1])
					head = nil
				}
			}
			drop := lc.involves(l.cut)
			l.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// apply sets the nodes cut off. Connections of nodes that are healed and were stalled are closed, so that
// both sides dial again at once instead of waiting for their route pings to give up.
func (l *links) apply(cut map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var stalled []*linkConn
	for lc := range l.conns {
		if lc.involves(l.cut) && !lc.involves(cut) {
			stalled = append(stalled, lc)
		}
	}
	l.cut = cut
	for _, lc := range stalled {
		lc.close()
	}
}

// readCut reads the cut file: the set of nodes cut off (none when the file is missing).
func readCut(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	cut := map[string]bool{}
	for _, f := range strings.Fields(string(data)) {
		cut[f] = true
	}
	return cut, nil
}

func writeCut(path string, cut map[string]bool) error {
	names := make([]string, 0, len(cut))
	for n := range cut {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString(n + "\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// followCut applies the cut file to l every 100 ms until ctx ends, and tells out about each change.
func followCut(ctx context.Context, c *cluster, l *links, out io.Writer) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cut, err := readCut(c.cutFile())
		if err != nil {
			continue
		}
		names := make([]string, 0, len(cut))
		for n := range cut {
			names = append(names, n)
		}
		sort.Strings(names)
		if slices.Equal(names, last) {
			continue
		}
		l.apply(cut)
		if len(names) == 0 {
			fmt.Fprintln(out, "route links: every node connected")
		} else {
			fmt.Fprintf(out, "route links: cut off from their peers: %s\n", strings.Join(names, ", "))
		}
		last = names
	}
}

// setCut is the `cut` and `heal` commands: it changes the cut file that a running `up` follows.
func setCut(c *cluster, action, name string, out io.Writer) error {
	if err := linksRunning(c); err != nil {
		return err
	}
	cut, err := readCut(c.cutFile())
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
	if err := writeCut(c.cutFile(), cut); err != nil {
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

// linksRunning checks that an `up` of this directory runs (it holds the route links).
func linksRunning(c *cluster) error {
	data, err := os.ReadFile(c.linksFile())
	if err == nil {
		var info linksInfo
		if json.Unmarshal(data, &info) == nil && info.PID > 0 && syscall.Kill(info.PID, 0) == nil {
			return nil
		}
	}
	return fmt.Errorf("no `task up` is running for %s: the route links live in it", relativePath(c.Dir))
}
