// Package e2e tests Tickmesh the way `task up` runs it: the real node binary, three processes started by the
// local cluster launcher, nginx in front, pkg/client players through nginx, and the stock `nats` CLI running the
// README's recipes with the contexts the launcher writes. Each player runs in a goroutine its test's cleanup
// stops and waits for.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	harness "github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/client"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// cluster is a local cluster started by `localcluster up`.
type cluster struct {
	t       *testing.T
	lc      string
	flags   []string
	state   string          // the launcher's -dir: secrets.env, nats/<user>.json, logs/
	nodes   []harness.Node  // the layout localcluster gives the nodes on these ports
	secrets harness.Secrets // the credentials the launcher drew for the cluster
	nginx   int
	natsURL string
	out     *testingutil.Output
}

// context is the nats CLI context the launcher wrote for user (viewer, admin, sys).
func (c *cluster) context(user string) string { return harness.ContextFile(c.state, user) }

func nginxPath() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// startCluster runs `localcluster up` with nginx on free ports and waits until it reports ready.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if nginxPath() == "" {
		t.Skip("nginx not installed: this test runs the cluster behind nginx as `task up` does (apt-get install nginx-light)")
	}
	tmp := t.TempDir()
	node, lc := filepath.Join(tmp, "tickmesh-node"), filepath.Join(tmp, "localcluster")
	for out, pkg := range map[string]string{node: "./cmd/node", lc: "./cmd/localcluster"} {
		if err := harness.GoBuild(t.Context(), out, pkg); err != nil {
			t.Fatal(err)
		}
	}
	base := testingutil.FreePortBlock(t, 16)
	state := filepath.Join(tmp, "state")
	ports := harness.Ports{HTTP: base, Admin: base + 13, NATS: base + 3, Route: base + 6, Link: base + 10}
	c := &cluster{t: t, lc: lc, state: state, nginx: base + 9, out: &testingutil.Output{}, nodes: harness.Local(3, ports, filepath.Join(state, "data")),
		flags: []string{"-dir", state, "-base-http", strconv.Itoa(ports.HTTP), "-base-admin", strconv.Itoa(ports.Admin),
			"-base-nats", strconv.Itoa(ports.NATS), "-base-route", strconv.Itoa(ports.Route), "-nginx-port", strconv.Itoa(base + 9),
			"-base-link", strconv.Itoa(ports.Link)}}
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.NATSURL())
	}
	c.natsURL = strings.Join(urls, ",")
	up := exec.Command(lc, append([]string{"up", "-bin", node, "-nginx", "on", "-prometheus", "off"}, c.flags...)...)
	up.Stdout, up.Stderr = c.out, c.out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- up.Wait() }()
	t.Cleanup(func() {
		c.run("down")
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			up.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("launcher output:\n%s", c.out.String())
			for _, n := range []string{"n1", "n2", "n3", "nginx"} {
				if b, err := os.ReadFile(filepath.Join(state, "logs", n+".log")); err == nil {
					t.Logf("%s.log (tail):\n%s", n, b[max(0, len(b)-4000):])
				}
			}
		}
	})
	testingutil.WaitFor(t, 120*time.Second, "the cluster ready", func() bool {
		select {
		case err := <-done:
			t.Fatalf("launcher exited: %v\n%s", err, c.out.String())
		default:
		}
		return strings.Contains(c.out.String(), "cluster is ready")
	})
	var err error
	if c.secrets, err = harness.ReadSecrets(state); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) run(args ...string) string {
	out, err := exec.Command(c.lc, append(args, c.flags...)...).CombinedOutput()
	if err != nil {
		c.t.Logf("localcluster %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// owner asks a live node who owns the lobby.
func (c *cluster) owner() (string, uint64) {
	for _, n := range c.nodes {
		if v, err := harness.View(context.Background(), n); err == nil {
			return harness.RoomOwner(v, "lobby")
		}
	}
	return "", 0
}

// bot is a pkg/client player through nginx that reconnects with its resume token, as the browser client does.
type bot struct {
	name   string
	mu     sync.Mutex
	player string
	epoch  uint64
	last   uint64
	ticks  int
	stale  int
	lastAt time.Time
	ids    map[string]bool
	conn   int    // the connection of the last tick
	connE  uint64 // and its epoch
	connS  uint64 // and seq
}

func newBot(t *testing.T, url, name string) *bot {
	b := &bot{name: name, ids: map[string]bool{}}
	cl, err := client.New(client.Config{URLs: []string{url}, Name: name,
		Backoff: client.Backoff{Min: 100 * time.Millisecond, Base: 200 * time.Millisecond, Cap: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = cl.Run(ctx, b.handler()) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return b
}

// handler counts what a player sees. Within one connection the server must never go back; across connections (a
// new node's relay may be a tick behind) the client's fence drops what it already has, as the browser does.
func (b *bot) handler() client.Handler {
	return client.Handler{
		Welcome: func(_ client.Conn, w *protocol.Welcome) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.player = w.Player
			b.ids[w.Player] = true
			return nil
		},
		Tick: func(t *client.Tick) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			if t.Conn.N == b.conn && (t.Epoch < b.connE || t.Epoch == b.connE && t.Seq <= b.connS) {
				b.stale++
			}
			b.conn, b.connE, b.connS = t.Conn.N, t.Epoch, t.Seq
			if t.Fresh {
				b.epoch, b.last = t.Epoch, t.Seq
			}
			b.ticks++
			b.lastAt = t.At
			return nil
		},
	}
}

type botState struct {
	player   string
	ids      int
	epoch    uint64
	ticks    int
	stale    int
	lastTick time.Time
}

func (b *bot) state() botState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return botState{player: b.player, ids: len(b.ids), epoch: b.epoch, ticks: b.ticks, stale: b.stale, lastTick: b.lastAt}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testingutil.WaitFor(t, d, what, cond)
}

func TestClientsThroughNginxSurviveOwnerThenNonOwnerKill(t *testing.T) {
	c := startCluster(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", c.nginx)
	var bots []*bot
	for i := range 6 {
		bots = append(bots, newBot(t, url, fmt.Sprintf("bot%d", i)))
	}
	flowing := func(after time.Time) func() bool {
		return func() bool {
			for _, b := range bots {
				if s := b.state(); s.player == "" || !s.lastTick.After(after) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 30*time.Second, "every bot receives ticks through nginx", flowing(time.Now()))
	players := map[*bot]string{}
	for _, b := range bots {
		players[b] = b.state().player
	}

	owner, epoch := c.owner()
	if owner == "" {
		t.Fatal("no lobby owner")
	}
	c.run("kill", owner)
	waitFor(t, 30*time.Second, "a new owner", func() bool {
		o, e := c.owner()
		return o != "" && o != owner && e > epoch
	})
	killedAt := time.Now()
	waitFor(t, 30*time.Second, "ticks again for every bot after the owner died", flowing(killedAt.Add(time.Second)))
	c.run("start", owner)

	// Then a node that does not own the lobby.
	owner2, _ := c.owner()
	victim := ""
	for _, n := range []string{"n1", "n2", "n3"} {
		if n != owner2 && n != owner {
			victim = n
		}
	}
	c.run("kill", victim)
	waitFor(t, 30*time.Second, "ticks for every bot after a non-owner died", flowing(time.Now().Add(time.Second)))

	for _, b := range bots {
		s := b.state()
		if s.player != players[b] || s.ids != 1 {
			t.Errorf("%s changed player: %s → %s (%d ids)", b.name, players[b], s.player, s.ids)
		}
		if s.stale != 0 {
			t.Errorf("%s received %d ticks not above the previous one on the same connection", b.name, s.stale)
		}
	}
}

// TestREADMENATSRecipesWork runs the README's and nats/README.md's `nats` CLI commands against the cluster, with
// the contexts `task up` writes: the viewer watches and reads, and is refused a write; sys lists the servers.
func TestREADMENATSRecipesWork(t *testing.T) {
	natsBin, err := exec.LookPath("nats")
	if err != nil {
		t.Skip("the nats CLI is not installed (task tools:nats; .ci/run installs it): cannot check the recipes")
	}
	c := startCluster(t)
	viewer, sys := c.context("viewer"), c.context("sys")
	nats := func(args ...string) (string, error) {
		cmd := exec.Command(natsBin, args...)
		cmd.Env = append(os.Environ(), "NATS_CONTEXT=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := nats(args...)
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	waitFor(t, 30*time.Second, "a lobby owner", func() bool { o, _ := c.owner(); return o != "" })
	owner, epoch := c.owner()

	if out := run("--context", viewer, "sub", "game.>", "--count", "3"); !strings.Contains(out, `"type":"tick"`) {
		t.Fatalf("nats sub game.> shows no tick:\n%s", out)
	}
	out := run("--context", viewer, "kv", "get", "owners", "lobby", "--raw")
	if !strings.Contains(out, `"node":"`+owner+`"`) || !strings.Contains(out, fmt.Sprintf(`"epoch":%d`, epoch)) {
		t.Fatalf("nats kv get owners lobby = %s, want node %s epoch %d", out, owner, epoch)
	}
	// kv watch prints the current value first; stop it after a moment.
	watch := exec.Command(natsBin, "--context", viewer, "kv", "watch", "owners")
	var wout testingutil.Output
	watch.Stdout, watch.Stderr = &wout, &wout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "nats kv watch owners shows the lobby", func() bool { return strings.Contains(wout.String(), "lobby") })
	watch.Process.Kill()
	watch.Wait()
	for _, args := range [][]string{{"kv", "ls"}, {"kv", "info", "owners"}, {"stream", "info", "INPUTS"}} {
		run(append([]string{"--context", viewer}, args...)...)
	}
	if out, err := nats("--context", viewer, "kv", "put", "owners", "lobby", "forged"); err == nil {
		t.Fatalf("the viewer wrote the lobby's lease:\n%s", out)
	}
	if out := run("--context", sys, "server", "list", "3"); !strings.Contains(out, "n1") || !strings.Contains(out, "n3") {
		t.Fatalf("nats server list:\n%s", out)
	}
	run("--context", sys, "server", "report", "jetstream")
	run("--context", c.context("admin"), "kv", "ls")
}
