package cluster

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

func TestLayouts(t *testing.T) {
	nodes := Local(3, Ports{HTTP: 9001, NATS: 9101, Route: 9201, Link: 9301}, "/d")
	n2 := nodes[1]
	if n2.Name != "n2" || n2.HTTP != "127.0.0.1:9002" || n2.Link != "127.0.0.1:9302" || n2.DataDir != "/d/n2" ||
		!slices.Equal(n2.Routes, []string{"127.0.0.1:9301", "127.0.0.1:9303"}) {
		t.Fatalf("n2 = %+v", n2)
	}
	if n2.AdminURL() != n2.URL() || n2.WSURL() != "ws://127.0.0.1:9002/ws" || n2.NATSURL() != "nats://127.0.0.1:9102" {
		t.Fatalf("URLs of n2: %s %s %s", n2.AdminURL(), n2.WSURL(), n2.NATSURL())
	}
	n2.Admin, n2.Flags = "127.0.0.1:9402", []string{"-lease-ttl", "3s"}
	args := strings.Join(n2.Args(), " ")
	for _, want := range []string{"-admin-http 127.0.0.1:9402", "-cluster-advertise 127.0.0.1:9302", "-routes 127.0.0.1:9301,127.0.0.1:9303"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if !strings.HasSuffix(args, "-lease-ttl 3s") || n2.AdminURL() != "http://127.0.0.1:9402" || len(n2.Listens()) != 4 {
		t.Errorf("args %q, admin %s, listens %v", args, n2.AdminURL(), n2.Listens())
	}
	hosts := OnHosts([]string{"10.0.0.1", "10.0.0.2"}, Ports{HTTP: 8080, NATS: 4222, Route: 6222}, "/run")
	if hosts[1].HTTP != "10.0.0.2:8080" || hosts[1].DataDir != "/run/n2/data" || !slices.Equal(hosts[1].Routes, []string{"10.0.0.1:6222"}) {
		t.Errorf("on hosts: %+v", hosts[1])
	}
}

// TestRealCluster runs three real node processes through the harness: they form a cluster with the harness's
// credentials, observers see the lobby's ticks and lease on every node, an event published below the gateway is
// stored, a frozen and thawed node comes back, and after the owner is killed the survivors see a new epoch
// before it is started again.
func TestRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the real cluster")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tickmesh-node")
	if err := GoBuild(t.Context(), bin, "./cmd/node"); err != nil {
		t.Fatal(err)
	}
	base := testingutil.FreePortBlock(t, 12)
	nodes := Local(3, Ports{HTTP: base, Admin: base + 3, NATS: base + 6, Route: base + 9}, filepath.Join(dir, "data"))
	for i := range nodes {
		nodes[i].Flags = []string{"-lease-ttl", "3s", "-log-level", "warn"}
	}
	var mu sync.Mutex
	var exits []int
	c, err := New(Config{Bin: bin, Nodes: nodes, Env: CleanEnv(), LogDir: dir, ParentDeath: true, Logf: t.Logf,
		OnExit: func(i int, _ error) {
			mu.Lock()
			defer mu.Unlock()
			exits = append(exits, i)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for i := range c.Len() {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Start(0); err == nil {
		t.Fatal("a running node started twice")
	}
	ctx := t.Context()
	if err := c.WaitReady(ctx, 2*time.Minute, nil); err != nil {
		for i := range c.Len() {
			t.Logf("%s: %s", c.Node(i).Name, strings.Join(c.Tail(i, 10), "\n"))
		}
		t.Fatal(err)
	}

	// The client port wants the cluster's credentials.
	if nc, err := nats.Connect(c.Node(0).NATSURL(), nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}

	// Every node's observer sees ticks and the lease.
	type seen struct {
		ticks int
		epoch uint64 // highest lease epoch
	}
	var smu sync.Mutex
	obs := make([]seen, c.Len())
	var observers []*Observer
	for i := range c.Len() {
		o, err := Observe(c.Node(i), AsAdmin(c.Secrets()), "test", Watch{Room: "lobby",
			Tick: func(_ time.Time, m *nats.Msg) {
				if _, _, err := wire.ParseTickHeader(m.Header); err == nil {
					smu.Lock()
					obs[i].ticks++
					smu.Unlock()
				}
			},
			Lease: func(e uint64) {
				smu.Lock()
				obs[i].epoch = max(obs[i].epoch, e)
				smu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		observers = append(observers, o)
		defer o.Close()
	}
	var owner string
	var epoch uint64
	testingutil.WaitFor(t, time.Minute, "every node agrees on the lobby's owner and every observer sees ticks and the lease", func() bool {
		owner, epoch = "", 0
		for i := range c.Len() {
			v, err := View(ctx, c.Node(i))
			o, e := RoomOwner(v, "lobby")
			if err != nil || o == "" || owner != "" && (o != owner || e != epoch) {
				return false
			}
			owner, epoch = o, e
		}
		smu.Lock()
		defer smu.Unlock()
		for _, s := range obs {
			if s.ticks == 0 || s.epoch != epoch {
				return false
			}
		}
		return true
	})
	if !observers[0].Attached() || !strings.Contains(observers[0].Stats(), "CONNECTED to n1") {
		t.Errorf("observer of n1: attached %v, %s", observers[0].Attached(), observers[0].Stats())
	}
	oi := c.Index(owner)
	other := (oi + 1) % c.Len()

	// Stream leaders answer through any observer; an event published below the gateway is stored.
	if l, err := StreamLeader(ctx, observers[other].JetStream(), wire.InputsStream); err != nil || c.Index(l) < 0 {
		t.Fatalf("INPUTS leader %q, %v", l, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = PublishEvent(pctx, observers[other].JetStream(), "lobby", sim.Event{Kind: sim.KindJoin, Player: "pharness0000000", Name: "h", Seq: 1})
	cancel()
	if err != nil {
		t.Fatalf("publish a join: %v", err)
	}
	if m, err := ReadMetrics(ctx, c.Node(oi)); err != nil || m[`tickmesh_room_owned{room="lobby"}`] != 1 {
		t.Errorf("the owner's tickmesh_room_owned: %v, %v", m[`tickmesh_room_owned{room="lobby"}`], err)
	}

	// A frozen node answers nothing; thawed, it is ready again.
	if err := c.Freeze(other); err != nil || !c.Frozen(other) {
		t.Fatalf("freeze: %v, frozen %v", err, c.Frozen(other))
	}
	if _, code, _ := Readyz(ctx, c.Node(other)); code != 0 {
		t.Errorf("a frozen node answered /readyz with %d", code)
	}
	if err := c.Thaw(other); err != nil || c.Frozen(other) {
		t.Fatalf("thaw: %v, frozen %v", err, c.Frozen(other))
	}

	// Kill the owner: the survivors' observers see a higher lease epoch; started again, the node is ready.
	pid := c.PID(oi)
	if err := c.Kill(oi); err != nil {
		t.Fatal(err)
	}
	if c.Running(oi) || c.ExitErr(oi) == nil || !strings.Contains(c.ExitErr(oi).Error(), "killed") {
		t.Fatalf("after kill: running %v, exit %v", c.Running(oi), c.ExitErr(oi))
	}
	if err := c.Signal(oi, syscall.SIGTERM); err == nil {
		t.Error("a signal to a dead node was sent")
	}
	testingutil.WaitFor(t, time.Minute, "a new lease epoch on the survivors", func() bool {
		smu.Lock()
		defer smu.Unlock()
		return obs[other].epoch > epoch
	})
	if err := c.Start(oi); err != nil || c.PID(oi) == pid {
		t.Fatalf("restart: %v (pid %d, was %d)", err, c.PID(oi), pid)
	}
	if err := c.WaitReady(ctx, 2*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if code := testingutil.HTTPStatus(c.Node(oi).URL() + "/readyz"); code != http.StatusOK {
		t.Fatalf("restarted node /readyz %d", code)
	}
	c.StopAll()
	for i := range c.Len() {
		if c.Running(i) {
			t.Errorf("%s still runs after StopAll", c.Node(i).Name)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(exits) != 4 { // the killed owner, then the three of StopAll
		t.Errorf("exits seen: %v", exits)
	}
	if err := c.Kill(0); err == nil {
		t.Error("kill of a stopped node succeeded")
	}
}
