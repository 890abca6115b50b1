package security

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

// strangerWindow is how long a stranger's node keeps trying to join before the test gives up on it: routes
// are dialled at once and retried every second, and a peer that is let in is listed within a heartbeat.
const strangerWindow = 12 * time.Second

// TestAStrangersNodeWithoutRouteCredentialsIsNotRouted starts a Tickmesh node that knows n1's route address
// but not the cluster's route credentials (it runs with the development switch, as an attacker would): it is
// never routed, never listed in /api/cluster, the cluster's size does not change and every node stays ready.
// A server with the credentials, at the same address, is routed: the refusal is the credentials'.
func TestAStrangersNodeWithoutRouteCredentialsIsNotRouted(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	alice := joinLobby(t, c.Member("n1").Node, "alice")

	cfg := c.JoinConfig("stranger", "n1")
	cfg.Mesh.RouteUser, cfg.Mesh.RoutePassword = "", ""
	cfg.DevInsecure = true
	assertNotAdmitted(t, c, cfg)
	alice.keepsPlaying(20)

	friend := rawPeer(t, "friend", c.Member("n1").Config.Mesh.ClusterAddr, c.Secrets.ClusterUser, c.Secrets.ClusterPassword, nil)
	testingutil.WaitFor(t, 10*time.Second, "n1 routes a server that has the credentials", func() bool {
		return c.Member("n1").Node.Mesh().Routed("friend")
	})
	friend.Shutdown()
}

// TestARouteCertificateOfAnotherCAIsRefused runs a cluster with route TLS and starts a node that has the route
// credentials and trusts the cluster's CA, but presents a certificate of another CA: the cluster verifies the
// peers that dial it, so the node is not routed.
func TestARouteCertificateOfAnotherCAIsRefused(t *testing.T) {
	cert, key, ca := nodetest.WriteCerts(t)
	c := nodetest.StartCluster(t, 3, func(cfg *node.Config) {
		cfg.Mesh.RouteTLSCert, cfg.Mesh.RouteTLSKey, cfg.Mesh.RouteTLSCA = cert, key, ca
	})
	alice := joinLobby(t, c.Member("n2").Node, "alice")

	otherCert, otherKey, _ := nodetest.WriteCerts(t)
	cfg := c.JoinConfig("stranger", "n1")
	cfg.Mesh.RouteTLSCert, cfg.Mesh.RouteTLSKey, cfg.Mesh.RouteTLSCA = otherCert, otherKey, ca
	assertNotAdmitted(t, c, cfg)
	alice.keepsPlaying(20)

	friend := rawPeer(t, "friend", c.Member("n1").Config.Mesh.ClusterAddr, c.Secrets.ClusterUser, c.Secrets.ClusterPassword,
		&server.TLSConfigOpts{CertFile: cert, KeyFile: key, CaFile: ca, Verify: true, Timeout: 2})
	testingutil.WaitFor(t, 10*time.Second, "n1 routes a server with the cluster's certificate", func() bool {
		return c.Member("n1").Node.Mesh().Routed("friend")
	})
	friend.Shutdown()
}

// assertNotAdmitted starts the node cfg and watches the cluster c for strangerWindow: the node is never routed
// nor listed, the cluster's size stays len(c.Members()), and every member stays ready. Then it stops the node.
func assertNotAdmitted(t *testing.T, c *nodetest.Cluster, cfg node.Config) {
	t.Helper()
	members := c.Members()
	ctx, cancel := context.WithTimeout(context.Background(), strangerWindow+5*time.Second)
	defer cancel()
	started := make(chan *node.Node, 1)
	go func() {
		// Without a route, the node's setup waits for a JetStream meta leader until ctx ends.
		n, err := node.New(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			n = nil
		}
		started <- n
	}()
	deadline := time.Now().Add(strangerWindow)
	for time.Now().Before(deadline) {
		for _, m := range members {
			if m.Node.Mesh().Routed(cfg.Name) {
				t.Fatalf("%s routes the stranger %s", m.Name, cfg.Name)
			}
			for _, n := range clusterView(t, m.Node).Nodes {
				if n.Name == cfg.Name {
					t.Fatalf("%s lists the stranger to browsers: %+v", m.Name, n)
				}
			}
			code, r := readiness(t, m.Node)
			if code != 200 || r.ClusterSize != len(members) {
				t.Fatalf("%s: /readyz %d, cluster size %d (want 200, %d): %+v", m.Name, code, r.ClusterSize, len(members), r)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	cancel()
	if n := <-started; n != nil {
		n.Close() // it formed a cluster of its own; it never joined ours
	}
}

// rawPeer starts a bare NATS server (no JetStream) named name that routes to addr with the given route
// credentials and TLS configuration; t.Cleanup shuts it down.
func rawPeer(t *testing.T, name, addr, user, pass string, tlsOpts *server.TLSConfigOpts) *server.Server {
	t.Helper()
	routes, err := config.ParseRoutes(addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		r.User = url.UserPassword(user, pass)
	}
	opts := &server.Options{
		ServerName: name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: "tickmesh", Host: "127.0.0.1", Port: server.RANDOM_PORT, Username: user, Password: pass},
		Routes:  routes,
	}
	if tlsOpts != nil {
		tc, err := server.GenTLSConfig(tlsOpts)
		if err != nil {
			t.Fatal(err)
		}
		tc.RootCAs = tc.ClientCAs
		opts.Cluster.TLSConfig = tc
		opts.Cluster.TLSTimeout = 2
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(fmt.Errorf("raw peer %s: %w", name, err))
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("raw peer %s not ready", name)
	}
	t.Cleanup(s.Shutdown)
	return s
}
