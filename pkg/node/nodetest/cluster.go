// Package nodetest starts real Tickmesh nodes in-process for tests: embedded NATS servers on random loopback
// ports with routes between them, in the spirit of hashicorp/raft's MakeCluster. Every node runs its Run loop in
// a goroutine the Cluster owns; t.Cleanup stops them all and waits.
//
// Nodes start as in production, without the development switch: a Cluster draws its own credentials
// (Cluster.Secrets: route user and password, session secret, admin, viewer and sys passwords) and gives them
// to every node it starts.
package nodetest

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// LogLevel is the level of the nodes' logs in the test output.
var LogLevel = slog.LevelWarn

// Cluster is a set of in-process nodes.
type Cluster struct {
	// Secrets are the credentials of every node of the cluster.
	Secrets config.Secrets

	t     testing.TB
	dir   string
	mu    sync.Mutex
	nodes map[string]*Member
	order []string
	tune  func(*node.Config)
}

// Member is one node of a Cluster and the goroutine that runs it.
type Member struct {
	Name    string
	Node    *node.Node
	Config  node.Config // as given to node.New
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	stopped bool
}

// Option adjusts every node's configuration before it starts.
type Option func(*node.Config)

// StartCluster starts n clustered nodes (standalone when n == 1) and waits until every one is ready.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	secrets, err := config.NewSecrets(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Secrets: secrets, t: t, dir: t.TempDir(), nodes: map[string]*Member{}}
	c.tune = func(cfg *node.Config) {
		for _, o := range opts {
			o(cfg)
		}
	}
	t.Cleanup(c.KillAll)
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testingutil.FreePort(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		cfg := c.baseConfig(name)
		if n > 1 {
			cfg.Mesh.ClusterAddr = fmt.Sprintf("127.0.0.1:%d", ports[i])
			for j, p := range ports {
				if j != i {
					u, _ := config.ParseRoutes(fmt.Sprintf("127.0.0.1:%d", p))
					cfg.Mesh.Routes = append(cfg.Mesh.Routes, u...)
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Start(cfg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("start cluster: %v", err)
		}
	}
	c.WaitReady(60 * time.Second)
	return c
}

// baseConfig is a node configuration on random loopback ports under the cluster's temp dir, with the
// cluster's credentials.
func (c *Cluster) baseConfig(name string) node.Config {
	cfg := node.DefaultConfig()
	cfg.Name = name
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.Mesh.ClientAddr = "127.0.0.1:0"
	cfg.Mesh.DataDir = filepath.Join(c.dir, name)
	c.Secrets.Apply(&cfg)
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

// JoinConfig is the configuration of a new node that routes to the given existing member only.
func (c *Cluster) JoinConfig(name string, via string) node.Config {
	cfg := c.baseConfig(name)
	cfg.Mesh.ClusterAddr = fmt.Sprintf("127.0.0.1:%d", testingutil.FreePort(c.t))
	m := c.Member(via)
	u, _ := config.ParseRoutes(m.Config.Mesh.ClusterAddr)
	cfg.Mesh.Routes = u
	return cfg
}

// Start starts one node with cfg and runs it until the cluster stops it.
func (c *Cluster) Start(cfg node.Config) (*Member, error) {
	log := slog.New(slog.NewTextHandler(testWriter{c.t, cfg.Name}, &slog.HandlerOptions{Level: LogLevel}))
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, log.With("node", cfg.Name))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	m := &Member{Name: cfg.Name, Node: n, Config: cfg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		m.err = n.Run(ctx)
	}()
	c.mu.Lock()
	if _, ok := c.nodes[cfg.Name]; !ok {
		c.order = append(c.order, cfg.Name)
	}
	c.nodes[cfg.Name] = m
	c.mu.Unlock()
	return m, nil
}

// Restart starts a stopped member again with the same configuration (and data directory).
func (c *Cluster) Restart(name string) *Member {
	c.t.Helper()
	old := c.Member(name)
	if !old.stopped {
		c.t.Fatalf("restart %s: still running", name)
	}
	cfg := old.Config
	cfg.HTTPAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	m, err := c.Start(cfg)
	if err != nil {
		c.t.Fatalf("restart: %v", err)
	}
	return m
}

// Member returns the named member.
func (c *Cluster) Member(name string) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.nodes[name]
	if !ok {
		c.t.Fatalf("no member %s", name)
	}
	return m
}

// Members lists running members in start order.
func (c *Cluster) Members() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Member
	for _, name := range c.order {
		if m := c.nodes[name]; !m.stopped {
			out = append(out, m)
		}
	}
	return out
}

// Stop shuts a member down gracefully (as on SIGTERM) and waits for it.
func (c *Cluster) Stop(name string) {
	if m := c.stopping(name); m != nil {
		m.cancel()
		<-m.done
	}
}

// Kill stops a member's NATS server abruptly (no lame duck, no lease release), then reaps its goroutines: the
// closest an in-process test gets to SIGKILL.
func (c *Cluster) Kill(name string) {
	if m := c.stopping(name); m != nil {
		m.Node.Kill()
		m.cancel()
		<-m.done
	}
}

// stopping marks the member stopped and returns it, or nil when it already was.
func (c *Cluster) stopping(name string) *Member {
	m := c.Member(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.stopped {
		return nil
	}
	m.stopped = true
	return m
}

// StopAll stops every running member.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, m := range c.Members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Stop(m.Name)
		}()
	}
	wg.Wait()
}

// KillAll kills every running member at once (Kill), which is how a test's cleanup ends its cluster: a graceful
// stop of every member together spends seconds on handoffs to members that are stopping too, and the tests of a
// graceful stop call Stop themselves.
func (c *Cluster) KillAll() {
	var wg sync.WaitGroup
	for _, m := range c.Members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Kill(m.Name)
		}()
	}
	wg.Wait()
}

// WaitReady waits until every running member answers /readyz with 200.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	for _, m := range c.Members() {
		testingutil.WaitFor(c.t, timeout, m.Name+" ready", func() bool {
			return testingutil.HTTPStatus(m.Node.URL()+"/readyz") == http.StatusOK
		})
	}
}

// Metric is the value of a whole-number series (a counter or gauge, with its labels as written, for example
// `tickmesh_room_ticks_total{room="lobby"}`) on the /metrics page of member name: 0 when the series is absent.
func (c *Cluster) Metric(name, series string) int {
	c.t.Helper()
	resp, err := http.Get(c.Member(name).Node.AdminURL() + "/metrics")
	if err != nil {
		c.t.Fatalf("metrics of %s: %v", name, err)
	}
	defer resp.Body.Close()
	m, err := cluster.ParseMetrics(resp.Body)
	if err != nil {
		c.t.Fatalf("metrics of %s: %v", name, err)
	}
	v := m[series]
	if v != math.Trunc(v) {
		c.t.Fatalf("%s on %s: %v is not a whole number", series, name, v)
	}
	return int(v)
}

// testWriter sends log lines to t.Log while the test runs, and to stderr when TICKMESH_TEST_LOG=1 (the nodes log
// at warn, or at TICKMESH_TEST_LOGLEVEL).
type testWriter struct {
	t    testing.TB
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	if os.Getenv("TICKMESH_TEST_LOG") == "1" {
		os.Stderr.Write(p)
	}
	defer func() { _ = recover() }() // t.Log after the test ended panics; the line is dropped
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// AgreedOwner waits until every running member agrees on room's owner, with an epoch above above, and exactly
// that node runs it; it returns the owner's name and epoch.
func (c *Cluster) AgreedOwner(room string, above uint64, timeout time.Duration) (string, uint64) {
	c.t.Helper()
	var name string
	var epoch uint64
	testingutil.WaitFor(c.t, timeout, "one agreed owner of "+room, func() bool {
		name, epoch = "", 0
		for _, m := range c.Members() {
			n, e := m.Node.Rooms().Owner(room)
			if n == "" || e <= above || (name != "" && (n != name || e != epoch)) {
				return false
			}
			name, epoch = n, e
		}
		owners := 0
		for _, m := range c.Members() {
			if e, ok := m.Node.Rooms().Owned()[room]; ok && e == epoch {
				owners++
			}
		}
		return owners == 1
	})
	return name, epoch
}

// PublishEvent sends a player event to room through node n the way a gateway does (the live copy on core NATS,
// then the durable publish with the event's message id), and returns once INPUTS has stored it.
func PublishEvent(ctx context.Context, n *node.Node, room string, ev sim.Event) error {
	return cluster.PublishEvent(ctx, n.Mesh().JetStream(), room, ev)
}
