// Package e2e tests Tickmesh the way `task up` runs it: the real node binary, three processes started by the
// local cluster launcher, nginx in front, WebSocket clients through nginx, and the stock `nats` CLI running the
// README's recipes.
package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/internal/proctest"
	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// cluster is a local cluster started by `localcluster up`.
type cluster struct {
	t       *testing.T
	lc      string
	flags   []string
	state   string // the launcher's -dir: secrets.env, nats/<user>.json, logs/
	base    int
	nginx   int
	natsURL string
	out     *proctest.Output
}

// adminPort is node i's (1-based) admin listener: /metrics, /api/cluster.
func (c *cluster) adminPort(i int) int { return c.base + 13 + i - 1 }

// secrets are the credentials the launcher drew for the cluster.
func (c *cluster) secrets() config.Secrets {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.state, "secrets.env"))
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := config.ParseSecrets(string(b))
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// context is the nats CLI context the launcher wrote for user (viewer, admin, sys).
func (c *cluster) context(user string) string { return filepath.Join(c.state, "nats", user+".json") }

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
	proctest.GoBuild(t, node, "./cmd/node")
	proctest.GoBuild(t, lc, "./cmd/localcluster")
	base := proctest.FreePortBlock(t, 16)
	state := filepath.Join(tmp, "state")
	c := &cluster{t: t, lc: lc, state: state, base: base, nginx: base + 9, out: &proctest.Output{},
		natsURL: fmt.Sprintf("nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", base+3, base+4, base+5),
		flags: []string{"-dir", state, "-base-http", strconv.Itoa(base), "-base-nats", strconv.Itoa(base + 3),
			"-base-route", strconv.Itoa(base + 6), "-nginx-port", strconv.Itoa(base + 9), "-base-link", strconv.Itoa(base + 10),
			"-base-admin", strconv.Itoa(base + 13)}}
	up := exec.Command(lc, append([]string{"up", "-bin", node, "-nginx", "on"}, c.flags...)...)
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
	deadline := time.Now().Add(120 * time.Second)
	for !strings.Contains(c.out.String(), "cluster is ready") {
		select {
		case err := <-done:
			t.Fatalf("launcher exited: %v\n%s", err, c.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready in 120 s:\n%s", c.out.String())
		}
		time.Sleep(100 * time.Millisecond)
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
	for i := range 3 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/cluster", c.adminPort(i+1)))
		if err != nil {
			continue
		}
		var v struct {
			Rooms []struct {
				Room, Owner string
				Epoch       uint64
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, r := range v.Rooms {
			if r.Room == "lobby" {
				return r.Owner, r.Epoch
			}
		}
	}
	return "", 0
}

// bot is a WebSocket client through nginx that reconnects with its resume token, as the browser client does.
type bot struct {
	t      *testing.T
	url    string
	name   string
	mu     sync.Mutex
	player string
	token  string
	seq    uint64
	epoch  uint64
	last   uint64
	ticks  int
	stale  int
	lastAt time.Time
	ids    map[string]bool
	stop   chan struct{}
	done   chan struct{}
}

func newBot(t *testing.T, url, name string) *bot {
	b := &bot{t: t, url: url, name: name, ids: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	t.Cleanup(b.close)
	return b
}

func (b *bot) close() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

func (b *bot) loop() {
	defer close(b.done)
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		b.session()
		select {
		case <-b.stop:
			return
		case <-time.After(time.Duration(100+rand.IntN(200)) * time.Millisecond):
		}
	}
}

// session runs one connection until it breaks.
func (b *bot) session() {
	ws, _, err := websocket.DefaultDialer.Dial(b.url, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	go func() {
		<-b.stop
		ws.Close()
	}()
	b.mu.Lock()
	b.seq++
	hello := &protocol.Hello{Protocol: protocol.Version, Name: b.name, Resume: b.token, Seq: b.seq}
	b.mu.Unlock()
	frame, _ := protocol.Encode(hello)
	if ws.WriteMessage(websocket.TextMessage, frame) != nil {
		return
	}
	// Within one connection the server must never go back; across connections (a new node's relay may be a
	// tick behind) the client's own fence drops what it already has, as the browser client does.
	var connEpoch, connSeq uint64
	for {
		ws.SetReadDeadline(time.Now().Add(3 * time.Second)) // no tick for 3 s = dead connection
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			continue
		}
		switch m := msg.(type) {
		case *protocol.Welcome:
			b.mu.Lock()
			b.player, b.token = m.Player, m.Resume
			b.ids[m.Player] = true
			b.mu.Unlock()
		case *protocol.Tick:
			b.mu.Lock()
			if m.Epoch < connEpoch || (m.Epoch == connEpoch && m.Seq <= connSeq) {
				b.stale++
			}
			connEpoch, connSeq = m.Epoch, m.Seq
			if m.Epoch > b.epoch || (m.Epoch == b.epoch && m.Seq > b.last) {
				b.epoch, b.last = m.Epoch, m.Seq
			}
			b.ticks++
			b.lastAt = time.Now()
			b.mu.Unlock()
		}
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
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	var wout proctest.Output
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
