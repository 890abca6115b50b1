package cluster

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"sync"
	"time"
)

// Links relay every node's route traffic and cut it on demand. On one machine every node shares the loopback
// interface, so there is no link to pull: a link is a small TCP relay in front of a node's route port, and the
// nodes dial each other, and advertise themselves, only through the links (Node.Link; -routes and
// -cluster-advertise name the link addresses). Cut makes every link stop carrying bytes between a node and its
// peers, in both directions, without closing anything, as a network partition does: the nodes find out through
// their route pings, not through a clean close. Connections opened during a cut are accepted and carry nothing
// either. Healing closes the stalled connections, so that the nodes dial again at once. Browser and NATS-client
// ports are not touched: a cut-off node keeps its players' sockets, like a node that lost its peers but not the
// internet.
//
// A link learns who dialed from the route handshake: the dialing server's INFO names it (server_name). Until then
// a connection counts as the target node's alone.
type Links struct {
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
	dialer string // the node that dialed, once its INFO was seen (guarded by Links.mu)
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

// setServer records the connection to the node; it reports false (and closes it) when the link connection was
// closed meanwhile.
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

// StartLinks listens on the link address of every node that has one.
func StartLinks(nodes []Node) (*Links, error) {
	l := &Links{cut: map[string]bool{}, conns: map[*linkConn]struct{}{}}
	for _, n := range nodes {
		if n.Link == "" {
			continue
		}
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

// Addrs are the addresses the links listen on, in the order of the nodes that have one.
func (l *Links) Addrs() []string {
	var out []string
	for _, ln := range l.lns {
		out = append(out, ln.Addr().String())
	}
	return out
}

// Close stops the links and every connection through them, and waits for their goroutines.
func (l *Links) Close() {
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

func (l *Links) accept(ln net.Listener, target Node) {
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
func (l *Links) relay(lc *linkConn, route string) {
	defer lc.close()
	server, err := net.DialTimeout("tcp", route, 2*time.Second)
	if err != nil || !lc.setServer(server) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		l.pump(lc, server, lc.client, true)
		lc.close()
	})
	wg.Go(func() {
		l.pump(lc, lc.client, server, false)
		lc.close()
	})
	wg.Wait()
}

var serverNameRE = regexp.MustCompile(`"server_name":"([^"]+)"`)

// pump copies src to dst, dropping what passes while the connection is cut. From the dialer's side (fromDialer)
// it also looks for the dialer's name in its first kilobytes.
func (l *Links) pump(lc *linkConn, dst io.Writer, src io.Reader, fromDialer bool) {
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

// Cut sets the nodes cut off from their peers (by name; an empty set heals everything). Connections of nodes
// that are healed and were stalled are closed, so that both sides dial again at once instead of waiting for
// their route pings to give up.
func (l *Links) Cut(cut map[string]bool) {
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
