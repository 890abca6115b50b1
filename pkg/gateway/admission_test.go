package gateway_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// withOrigin is a handshake header carrying a browser's Origin.
func withOrigin(origin string) dialOpts {
	return dialOpts{header: http.Header{"Origin": {origin}}}
}

// joinWith dials with o, says hello as a new player and waits for the welcome.
func joinWith(t *testing.T, c *nodetest.Cluster, name, player string, o dialOpts) *client {
	t.Helper()
	cl := dial(t, c, name, player, o)
	cl.hello("", 1)
	cl.waitWelcome()
	return cl
}

// refused dials with o and expects the server to complete the handshake and close at once with code and reason.
func refused(t *testing.T, c *nodetest.Cluster, name, player string, o dialOpts, code int, reason string) {
	t.Helper()
	cl := dial(t, c, name, player, o)
	if got := cl.waitClose(waitShort); got != code {
		t.Fatalf("%s: close %d, want %d", player, got, code)
	}
	cl.mu.Lock()
	text := cl.closeText
	cl.mu.Unlock()
	if text != reason {
		t.Fatalf("%s: close reason %q, want %q", player, text, reason)
	}
}

func TestPagesFromOtherHostsAreClosedWith4504WhileTheNodeServesTheRest(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	served := joinWith(t, c, "n1", "same-host", withOrigin("http://127.0.0.1:5173")) // ports are not compared
	joinWith(t, c, "n1", "no-browser", dialOpts{})                                   // no Origin: not a browser

	refused(t, c, "n1", "elsewhere", withOrigin("https://evil.example"), protocol.CloseOriginNotAllowed, "origin")
	refused(t, c, "n1", "garbage", withOrigin("::not a url"), protocol.CloseOriginNotAllowed, "origin")
	refused(t, c, "n1", "localhost", withOrigin("http://localhost:8080"), protocol.CloseOriginNotAllowed, "origin")

	served.waitTicks(3)
	if got := c.Metric("n1", `tickmesh_gateway_rejected_total{reason="origin"}`); got != 3 {
		t.Fatalf("rejected for their origin: %d, want 3", got)
	}
}

func TestAnAllowListReplacesTheSameHostRule(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) {
		cfg.Gateway.AllowedOrigins = []string{"https://game.example"}
	})
	joinWith(t, c, "n1", "listed", withOrigin("https://game.example"))
	joinWith(t, c, "n1", "listed-in-capitals", withOrigin("https://GAME.example"))
	joinWith(t, c, "n1", "no-browser", dialOpts{})
	refused(t, c, "n1", "same-host", withOrigin("http://127.0.0.1:5173"), protocol.CloseOriginNotAllowed, "origin")
	refused(t, c, "n1", "other-port", withOrigin("https://game.example:8443"), protocol.CloseOriginNotAllowed, "origin")

	star := nodetest.StartCluster(t, 1, func(cfg *node.Config) {
		cfg.Gateway.AllowedOrigins = []string{"*"}
	})
	joinWith(t, star, "n1", "anywhere", withOrigin("https://anywhere.example"))
}

func TestConnectionLimitsPerIPAndPerNodeCloseWith4004AndFreeUpWhenASocketLeaves(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) {
		cfg.Gateway.MaxConnsPerIP = 2
		cfg.Gateway.MaxConns = 3
		cfg.Gateway.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} // the test stands for nginx
	})
	behindProxy := func(ip string) dialOpts { return dialOpts{header: http.Header{"X-Real-Ip": {ip}}} }

	a := join(t, c, "n1", "a")
	b := join(t, c, "n1", "b")
	refused(t, c, "n1", "third-from-loopback", dialOpts{}, protocol.CloseOverloaded, "max_conns_per_ip")
	// Behind a local proxy (nginx) the client's address comes from X-Real-IP: another client, under its own limit.
	proxied := joinWith(t, c, "n1", "proxied", behindProxy("203.0.113.7"))
	refused(t, c, "n1", "fourth", behindProxy("203.0.113.8"), protocol.CloseOverloaded, "max_conns")

	// The refusals cost the others nothing.
	b.waitTicks(3)
	proxied.waitTicks(3)

	if got := c.Metric("n1", `tickmesh_gateway_rejected_total{reason="max_conns"}`); got != 1 {
		t.Fatalf("refused at the node's limit: %d, want 1", got)
	}
	if got := c.Metric("n1", `tickmesh_gateway_rejected_total{reason="max_conns_per_ip"}`); got != 1 {
		t.Fatalf("refused at the per-IP limit: %d, want 1", got)
	}

	// A socket that leaves gives its place back, to its IP and to the node. Until a's handler has released it,
	// a new socket is refused (at the node's limit, which is checked first), so these counts are not checked
	// after this.
	a.leave()
	testingutil.WaitFor(t, waitShort, "a new socket from loopback admitted after a left", func() bool {
		cl := dial(t, c, "n1", "again", dialOpts{})
		hello, _ := protocol.Encode(&protocol.Hello{Protocol: protocol.Version, Name: cl.name})
		_ = cl.write(websocket.TextMessage, hello) // fails when refused: the close tells
		var welcomed bool
		testingutil.WaitFor(t, waitShort, "welcome or close", func() bool {
			cl.mu.Lock()
			defer cl.mu.Unlock()
			welcomed = cl.welcome != nil
			return welcomed || cl.closeCode != 0 // refused until a's handler has released its place
		})
		return welcomed
	})
}
