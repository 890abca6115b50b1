package security

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// TestASpoofedXRealIPFromAnUntrustedPeerIsIgnored: a client that sends X-Real-IP or X-Forwarded-For itself
// (no trusted proxy in between) is still counted under its own address, so it cannot escape the per-IP limit;
// behind a trusted proxy the forwarded address is the client's.
func TestASpoofedXRealIPFromAnUntrustedPeerIsIgnored(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) { cfg.Gateway.MaxConnsPerIP = 2 })
	n := c.Member("n1").Node
	a := joinLobby(t, n, "a")
	joinLobby(t, n, "b")
	for i, h := range []http.Header{
		{"X-Real-Ip": {"203.0.113.7"}},
		{"X-Forwarded-For": {"203.0.113.8"}},
		{"X-Forwarded-For": {"203.0.113.9, 127.0.0.1"}},
	} {
		p := dialPlayer(t, wsURL(n), "spoofer", h)
		if code, text := p.waitClose(10 * time.Second); code != protocol.CloseOverloaded || text != "max_conns_per_ip" {
			t.Fatalf("spoof %d (%v): closed %d %q, want %d max_conns_per_ip", i, h, code, text, protocol.CloseOverloaded)
		}
	}
	a.keepsPlaying(10)

	proxied := nodetest.StartCluster(t, 1, func(cfg *node.Config) {
		cfg.Gateway.MaxConnsPerIP = 2
		cfg.Gateway.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	pn := proxied.Member("n1").Node
	joinLobby(t, pn, "a")
	joinLobby(t, pn, "b")
	// Through the trusted proxy (this test stands for nginx on loopback): other clients, under their own limits.
	for i, h := range []http.Header{
		{"X-Real-Ip": {"203.0.113.7"}},
		{"X-Forwarded-For": {"198.51.100.1, 203.0.113.8"}},
		{"X-Forwarded-For": {"203.0.113.9, 127.0.0.1"}},
	} {
		p := dialPlayer(t, wsURL(pn), "proxied", h)
		p.hello("", 1)
		if w := p.waitWelcome(); w.Player == "" {
			t.Fatalf("proxied %d: no welcome", i)
		}
	}
	if got := proxied.Metric("n1", `tickmesh_gateway_rejected_total{reason="max_conns_per_ip"}`); got != 0 {
		t.Fatalf("%d proxied clients refused for their IP, want 0", got)
	}
}

// TestAnIdleKeepAliveConnectionIsClosed opens a keep-alive connection to each listener, makes one request and
// then stays silent: the node closes the connection once it has been idle for the idle timeout.
func TestAnIdleKeepAliveConnectionIsClosed(t *testing.T) {
	const idle = time.Second
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) { cfg.HTTP.IdleTimeout = idle })
	n := c.Member("n1").Node
	for _, base := range []string{n.URL(), n.AdminURL()} {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("%s: %d, close %v: want a kept-alive 200", base, resp.StatusCode, resp.Close)
		}
		// Nothing more is sent: the next read ends with the server's close, well within 10 idle timeouts.
		_ = conn.SetReadDeadline(time.Now().Add(10 * idle))
		_, err = br.ReadByte()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: an idle keep-alive connection is still open after %v", base, 10*idle)
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("%s: read after idling: %v, want EOF", base, err)
		}
	}
}

// TestAWebSocketOutlivesTheHTTPWriteTimeout: the HTTP servers' write timeout bounds a response, not an
// upgraded WebSocket, which the gateway gives its own deadline per write.
func TestAWebSocketOutlivesTheHTTPWriteTimeout(t *testing.T) {
	const write = time.Second
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) {
		cfg.HTTP.WriteTimeout, cfg.HTTP.IdleTimeout = write, write
	})
	p := joinLobby(t, c.Member("n1").Node, "alice")
	time.Sleep(3 * write)
	p.keepsPlaying(20) // at 20 ticks/s: a second past three write timeouts
	one := 1.0
	p.send(&protocol.Ping{T: &one})
	p.keepsPlaying(5)
}
