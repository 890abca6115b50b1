package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/procfs"
	"github.com/tickmesh/tickmesh/internal/testingutil"
)

// running is a real `localcluster up` of the real node binary, on free ports in a temporary state directory.
type running struct {
	t      *testing.T
	bin    string
	flags  []string
	state  string
	base   int
	c      *local // the layout the commands see
	out    testingutil.Output
	up     *exec.Cmd
	upDone chan error
	exited bool
	nginx  bool
}

// startUp builds the node and the launcher and runs `up` (with nginx when installed) until it reports ready.
func startUp(t *testing.T) *running {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the cluster integration test")
	}
	tmp := t.TempDir()
	nodeBin := filepath.Join(tmp, "tickmesh-node")
	r := &running{t: t, bin: filepath.Join(tmp, "localcluster"), state: filepath.Join(tmp, "state"), upDone: make(chan error, 1)}
	for out, pkg := range map[string]string{nodeBin: "./cmd/node", r.bin: "./cmd/localcluster"} {
		if err := cluster.GoBuild(t.Context(), out, pkg); err != nil {
			t.Fatal(err)
		}
	}
	_, err := findNginx("on")
	r.nginx = err == nil
	r.base = testingutil.FreePortBlock(t, 17)
	s := settings{Bin: nodeBin, BaseHTTP: r.base, BaseNATS: r.base + 3, BaseRoute: r.base + 6, NginxPort: r.base + 9, BaseLink: r.base + 10,
		BaseAdmin: r.base + 13}
	r.flags = []string{"-dir", r.state, "-base-http", strconv.Itoa(s.BaseHTTP), "-base-nats", strconv.Itoa(s.BaseNATS),
		"-base-route", strconv.Itoa(s.BaseRoute), "-nginx-port", strconv.Itoa(s.NginxPort), "-base-link", strconv.Itoa(s.BaseLink),
		"-base-admin", strconv.Itoa(s.BaseAdmin)}
	if r.c, err = newLocal(r.state, s); err != nil {
		t.Fatal(err)
	}
	// Prometheus, when installed, on a free port too: the checks that nothing is left cover it.
	r.up = exec.Command(r.bin, append([]string{"up", "-bin", nodeBin, "-nginx", "auto", "-prometheus", "127.0.0.1:" + strconv.Itoa(r.base+16)}, r.flags...)...)
	r.up.Stdout, r.up.Stderr = &r.out, &r.out
	if err := r.up.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.upDone <- r.up.Wait() }()
	t.Cleanup(func() {
		if !r.exited {
			_, _ = r.lc("down")
			_ = r.up.Process.Kill()
			<-r.upDone
		}
		if t.Failed() {
			t.Logf("up output:\n%s", r.out.String())
			for _, name := range []string{"n1", "n2", "n3", "nginx"} {
				if b, err := os.ReadFile(r.c.logFile(name)); err == nil {
					t.Logf("%s.log (last 3000 bytes):\n%s", name, b[max(0, len(b)-3000):])
				}
			}
		}
	})
	if !testingutil.Eventually(120*time.Second, 250*time.Millisecond, func() bool {
		select {
		case err := <-r.upDone:
			r.exited = true
			t.Fatalf("up exited early: %v", err)
		default:
		}
		return strings.Contains(r.out.String(), "cluster is ready")
	}) {
		t.Fatal("up did not report readiness in 120 s")
	}
	return r
}

// lc runs another localcluster command on the cluster.
func (r *running) lc(args ...string) (string, error) {
	out, err := exec.Command(r.bin, append(args, r.flags...)...).CombinedOutput()
	return string(out), err
}

// lobby is the lobby's owner and epoch as node i (1-based) sees them.
func (r *running) lobby(i int) (string, uint64) {
	v, err := cluster.View(context.Background(), r.c.Nodes[i-1])
	if err != nil {
		return "", 0
	}
	return cluster.RoomOwner(v, "lobby")
}

func (r *running) readyz(i int) int { return testingutil.HTTPStatus(r.c.Nodes[i-1].URL() + "/readyz") }

// pids are the processes run/ records now.
func (r *running) pids() map[string]int {
	out := map[string]int{}
	for _, name := range []string{"n1", "n2", "n3", "nginx", prometheusName} {
		if pid, err := cluster.ReadPID(r.c.pidFile(name)); err == nil {
			out[name] = pid
		}
	}
	return out
}

// waitUpExit waits for `up` to exit and checks that it did so cleanly.
func (r *running) waitUpExit(why string) {
	r.t.Helper()
	select {
	case err := <-r.upDone:
		r.exited = true
		if err != nil {
			r.t.Errorf("up exited with %v after %s", err, why)
		}
	case <-time.After(30 * time.Second):
		r.t.Fatalf("up still running 30 s after %s", why)
	}
}

// checkNothingLeft checks that no process of pids (nor of its group) runs, no pid file is left, and nothing
// listens on any port of the cluster, the route links included.
func (r *running) checkNothingLeft(pids map[string]int) {
	r.t.Helper()
	for name, pid := range pids {
		// Each process led its own group: nothing of it (nginx's workers included) may remain.
		live, err := procfs.LiveInGroup(pid)
		if err != nil {
			r.t.Skip(err)
		}
		if len(live) > 0 {
			r.t.Errorf("%s (pid %d): processes %v of its group still run", name, pid, live)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(r.state, "run", "*.pid")); len(files) > 0 {
		r.t.Errorf("pid files left: %v", files)
	}
	for _, f := range []string{"up.pid", "cut"} {
		if _, err := os.Stat(filepath.Join(r.state, f)); err == nil {
			r.t.Errorf("%s left after up exited", f)
		}
	}
	ls := append(r.c.listens(r.nginx), r.c.linkListens()...)
	ls = append(ls, cluster.Listen{Addr: "127.0.0.1:" + strconv.Itoa(r.base+16), What: "prometheus"})
	if err := cluster.CheckFree(ls); err != nil {
		r.t.Errorf("after the cluster stopped: %v", err)
	}
}

// TestUpKillInterrupt runs the real launcher on the real node binary: up (with nginx when installed), cut and heal
// the lobby's owner, kill n2, check the others stay ready, then SIGINT and check that every process is gone.
func TestUpKillInterrupt(t *testing.T) {
	r := startUp(t)
	pids := r.pids()
	for i := 1; i <= 3; i++ {
		if code := r.readyz(i); code != http.StatusOK {
			t.Fatalf("n%d /readyz: %d", i, code)
		}
	}

	t.Run("nginx", func(t *testing.T) {
		if !r.nginx {
			t.Skip("nginx not installed: cannot check the load balancer (apt-get install nginx-light)")
		}
		lb := r.c.nginxURL()
		if code := testingutil.HTTPStatus(lb + "/readyz"); code != http.StatusOK {
			t.Fatalf("nginx /readyz: %d", code)
		}
		// Operations are not public: nginx passes the public listeners only, which do not serve them.
		for _, path := range []string{"/api/cluster", "/metrics", "/cluster.html"} {
			if code := testingutil.HTTPStatus(lb + path); code != http.StatusNotFound {
				t.Errorf("nginx %s: %d, want 404", path, code)
			}
		}
		if !testingutil.Eventually(20*time.Second, 250*time.Millisecond, func() bool {
			v, err := cluster.View(context.Background(), r.c.Nodes[0])
			return err == nil && len(v.Nodes) == 3
		}) {
			t.Fatal("n1's admin /api/cluster does not list 3 nodes")
		}
	})

	// Cut the lobby's owner off with the cut command: the two others take the lobby over with a higher epoch and
	// the cut-off node stops being ready; after heal, all three are ready and agree again.
	var owner0 string
	var epoch0 uint64
	if !testingutil.Eventually(20*time.Second, 250*time.Millisecond, func() bool { owner0, epoch0 = r.lobby(1); return owner0 != "" }) {
		t.Fatal("no owner of the lobby")
	}
	cutIdx := int(owner0[1] - '0')
	var others []int
	for i := 1; i <= 3; i++ {
		if i != cutIdx {
			others = append(others, i)
		}
	}
	if o, err := r.lc("cut", owner0); err != nil || !strings.Contains(o, "cut off") {
		t.Fatalf("cut %s: %v\n%s", owner0, err, o)
	}
	if !testingutil.Eventually(30*time.Second, 250*time.Millisecond, func() bool {
		for _, i := range others {
			if o, e := r.lobby(i); o == "" || o == owner0 || e <= epoch0 {
				return false
			}
		}
		return r.readyz(cutIdx) == http.StatusServiceUnavailable
	}) {
		o1, e1 := r.lobby(others[0])
		t.Fatalf("after cutting %s off (epoch %d): n%d sees owner %q epoch %d; %s /readyz %d", owner0, epoch0,
			others[0], o1, e1, owner0, r.readyz(cutIdx))
	}
	if o, err := r.lc("heal"); err != nil {
		t.Fatalf("heal: %v\n%s", err, o)
	}
	if !testingutil.Eventually(60*time.Second, 250*time.Millisecond, func() bool {
		o1, e1 := r.lobby(1)
		for i := 1; i <= 3; i++ {
			if r.readyz(i) != http.StatusOK {
				return false
			}
			if o, e := r.lobby(i); o != o1 || e != e1 || o == owner0 && e == epoch0 {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("after heal the nodes are not all ready and agreed on the lobby:\n%s", func() string { o, _ := r.lc("owner"); return o }())
	}

	// Kill n2 with the kill command; n1 and n3 stay (or, after a leader election, become again) ready.
	if o, err := r.lc("kill", "n2"); err != nil {
		t.Fatalf("kill n2: %v\n%s", err, o)
	}
	if !testingutil.Eventually(5*time.Second, 50*time.Millisecond, func() bool { return !cluster.Alive(pids["n2"], r.c.marker("n2")) }) {
		t.Fatal("n2 still alive after kill")
	}
	// Right after a peer dies the survivors answer 503 for a few seconds while JetStream elects new leaders for
	// what the dead node led ("stream ... not usable (no leader)"); what matters is that the two keep a working
	// majority: both ready again, continuously, for 8 s.
	var dips []string
	stableSince := time.Time{}
	if !testingutil.Eventually(40*time.Second, 250*time.Millisecond, func() bool {
		p1 := cluster.ProbeHealth(t.Context(), r.c.Nodes[0].URL()+"/readyz")
		p3 := cluster.ProbeHealth(t.Context(), r.c.Nodes[2].URL()+"/readyz")
		if p1.Code != http.StatusOK || p3.Code != http.StatusOK {
			dips = append(dips, fmt.Sprintf("n1 %s, n3 %s", p1, p3))
			stableSince = time.Time{}
			return false
		}
		if stableSince.IsZero() {
			stableSince = time.Now()
		}
		return time.Since(stableSince) >= 8*time.Second
	}) {
		t.Fatalf("n1 and n3 not steadily ready after n2 was killed; not ready: %q", dips)
	}
	if len(dips) > 0 {
		t.Logf("after n2's death, readiness dipped %d times (leader elections), e.g. %s", len(dips), dips[0])
	}
	if o, _ := r.lc("status"); !strings.Contains(o, "stopped") {
		t.Errorf("status does not show n2 stopped:\n%s", o)
	}

	// Interrupt up: it stops everything.
	if err := r.up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r.waitUpExit("SIGINT")
	r.checkNothingLeft(pids)
	if o, err := r.lc("cut", "n1"); err == nil || !strings.Contains(o, "no `task up` is running") {
		t.Errorf("cut without up: err %v, output %q", err, o)
	}
	if !strings.Contains(r.out.String(), "cluster stopped") {
		t.Errorf("up did not report stopping:\n%s", r.out.String())
	}
}

// TestDownAfterRestartsLeavesNothing is the README's drill as a new user runs it: up, then three times kill the
// lobby's owner and start it again, then down. The restarted nodes are not up's children; down must still leave
// nothing running or listening (up included: it holds the route links), so that the next up starts.
func TestDownAfterRestartsLeavesNothing(t *testing.T) {
	r := startUp(t)
	pids := r.pids()
	epoch := uint64(0)
	for round := 1; round <= 3; round++ {
		var owner string
		if !testingutil.Eventually(60*time.Second, 250*time.Millisecond, func() bool {
			owner, epoch = r.lobby(1)
			return owner != "" && r.readyz(1) == http.StatusOK && r.readyz(2) == http.StatusOK && r.readyz(3) == http.StatusOK
		}) {
			t.Fatalf("round %d: no ready cluster with a lobby owner", round)
		}
		if o, err := r.lc("kill", owner); err != nil {
			t.Fatalf("round %d: kill %s: %v\n%s", round, owner, err, o)
		}
		i := int(owner[1] - '0')
		survivor := i%3 + 1
		if !testingutil.Eventually(30*time.Second, 250*time.Millisecond, func() bool {
			o, e := r.lobby(survivor)
			return o != "" && o != owner && e > epoch
		}) {
			t.Fatalf("round %d: no new owner after %s was killed", round, owner)
		}
		if o, err := r.lc("start", owner); err != nil {
			t.Fatalf("round %d: start %s: %v\n%s", round, owner, err, o)
		}
		for name, pid := range r.pids() {
			pids[name+"@"+strconv.Itoa(round)] = pid
		}
	}
	o, err := r.lc("down")
	if err != nil {
		t.Fatalf("down: %v\n%s", err, o)
	}
	if !strings.Contains(o, "everything stopped") || !strings.Contains(o, "up (pid") {
		t.Errorf("down did not report stopping up:\n%s", o)
	}
	r.waitUpExit("down")
	r.checkNothingLeft(pids)
	// Nothing recorded runs: a second up of the same directory would start.
	if err := refuseIfRunning(r.c); err != nil {
		t.Errorf("after down: %v", err)
	}
}

// TestUpFailsFastOnBusyPort checks that up names a port in use and starts nothing.
func TestUpFailsFastOnBusyPort(t *testing.T) {
	base := testingutil.FreePortBlock(t, 16)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+4)) // n2's NATS port
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(t.Context(), []string{"up", "-dir", dir, "-bin", bin, "-nginx", "off", "-base-http", strconv.Itoa(base),
		"-base-nats", strconv.Itoa(base + 3), "-base-route", strconv.Itoa(base + 6), "-base-link", strconv.Itoa(base + 10),
		"-base-admin", strconv.Itoa(base + 13)}, &out)
	want := fmt.Sprintf("port 127.0.0.1:%d (n2 NATS client) is in use", base+4)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "run", "*.pid")); len(files) > 0 {
		t.Errorf("pid files written: %v", files)
	}
}

// TestUpRefusesSecondCluster checks that up will not start over live pid files of the same directory, nor while
// another up of it runs.
func TestUpRefusesSecondCluster(t *testing.T) {
	dir := t.TempDir()
	c, _ := newLocal(dir, settings{Bin: "/b", BaseHTTP: 1, BaseNATS: 10, BaseRoute: 20, NginxPort: 30})
	// A process with n1's marker in its command line, recorded as n1; and one that stands for a running up.
	start := func(marker string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", "sleep 60 & wait", marker)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait()
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		return cmd
	}
	n1 := start(c.marker("n1"))
	if err := cluster.WritePID(c.pidFile("n1"), n1.Process.Pid); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"up", "-dir", dir, "-nginx", "off"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "already running: n1 (pid") {
		t.Fatalf("err = %v", err)
	}
	// A stale pid file does not block, and is cleaned up.
	_ = syscall.Kill(-n1.Process.Pid, syscall.SIGKILL)
	cluster.WaitPIDGone(t.Context(), n1.Process.Pid, c.marker("n1"), 5*time.Second)
	err = run(t.Context(), []string{"up", "-dir", dir, "-nginx", "off", "-bin", filepath.Join(dir, "missing")}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "node binary") {
		t.Fatalf("err = %v, want the missing binary", err)
	}
	if _, err := os.Stat(c.pidFile("n1")); err == nil {
		t.Error("stale pid file kept")
	}
	upProc := start(c.upFile().Marker)
	if err := cluster.WritePID(c.upFile().Path, upProc.Process.Pid); err != nil {
		t.Fatal(err)
	}
	err = run(t.Context(), []string{"up", "-dir", dir, "-nginx", "off"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "is already running (pid") {
		t.Fatalf("with an up running: err = %v", err)
	}
}
