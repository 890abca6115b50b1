package main

import (
	"bytes"
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

	"github.com/tickmesh/tickmesh/internal/proctest"
)

// TestUpKillInterrupt runs the real launcher on the real node binary: up (with nginx when installed), kill n2,
// check the others stay ready, then SIGINT and check that every process is gone.
func TestUpKillInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the cluster integration test")
	}
	tmp := t.TempDir()
	nodeBin := filepath.Join(tmp, "tickmesh-node")
	lcBin := filepath.Join(tmp, "localcluster")
	proctest.GoBuild(t, nodeBin, "./cmd/node")
	proctest.GoBuild(t, lcBin, "./cmd/localcluster")
	_, nginxErr := exec.LookPath("nginx")
	if nginxErr != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			nginxErr = nil
		}
	}

	base := proctest.FreePortBlock(t, 16)
	state := filepath.Join(tmp, "state")
	flags := []string{"-dir", state, "-base-http", strconv.Itoa(base), "-base-nats", strconv.Itoa(base + 3),
		"-base-route", strconv.Itoa(base + 6), "-nginx-port", strconv.Itoa(base + 9), "-base-link", strconv.Itoa(base + 10),
		"-base-admin", strconv.Itoa(base + 13)}
	lc := func(args ...string) (string, error) {
		out, err := exec.Command(lcBin, append(args, flags...)...).CombinedOutput()
		return string(out), err
	}

	var out proctest.Output
	up := exec.Command(lcBin, append([]string{"up", "-bin", nodeBin, "-nginx", "auto"}, flags...)...)
	up.Stdout, up.Stderr = &out, &out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan error, 1)
	go func() { upDone <- up.Wait() }()
	upExited := false
	t.Cleanup(func() {
		if !upExited {
			_, _ = lc("down")
			_ = up.Process.Kill()
			<-upDone
		}
		if t.Failed() {
			t.Logf("up output:\n%s", out.String())
			for _, name := range []string{"n1", "n2", "n3", "nginx"} {
				if b, err := os.ReadFile(filepath.Join(state, "logs", name+".log")); err == nil {
					t.Logf("%s.log (last 3000 bytes):\n%s", name, b[max(0, len(b)-3000):])
				}
			}
		}
	})

	// Ready.
	ready := proctest.Eventually(120*time.Second, func() bool {
		select {
		case err := <-upDone:
			upExited = true
			t.Fatalf("up exited early: %v", err)
		default:
		}
		return strings.Contains(out.String(), "cluster is ready")
	})
	if !ready {
		t.Fatal("up did not report readiness in 120 s")
	}
	pids := map[string]int{}
	for _, name := range []string{"n1", "n2", "n3", "nginx"} {
		pid, err := readPid(filepath.Join(state, "run", name+".pid"))
		if err != nil {
			if name == "nginx" && nginxErr != nil {
				continue
			}
			t.Fatalf("pid file of %s: %v", name, err)
		}
		pids[name] = pid
	}
	nodeURL := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+i-1) }
	adminURL := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+13+i-1) }
	for i := 1; i <= 3; i++ {
		if code := proctest.HTTPStatus(nodeURL(i) + "/readyz"); code != http.StatusOK {
			t.Fatalf("n%d /readyz: %d", i, code)
		}
	}

	t.Run("nginx", func(t *testing.T) {
		if nginxErr != nil {
			t.Skip("nginx not installed: cannot check the load balancer (apt-get install nginx-light)")
		}
		lb := fmt.Sprintf("http://127.0.0.1:%d", base+9)
		if code := proctest.HTTPStatus(lb + "/readyz"); code != http.StatusOK {
			t.Fatalf("nginx /readyz: %d", code)
		}
		// Operations are not public: nginx passes the public listeners only, which do not serve them.
		for _, path := range []string{"/api/cluster", "/metrics", "/cluster.html"} {
			if code := proctest.HTTPStatus(lb + path); code != http.StatusNotFound {
				t.Errorf("nginx %s: %d, want 404", path, code)
			}
		}
		var view clusterView
		if !proctest.Eventually(20*time.Second, func() bool {
			v, err := fetchClusterView(adminURL(1) + "/api/cluster")
			view = v
			return err == nil && len(v.Nodes) == 3
		}) {
			t.Fatalf("n1's admin /api/cluster does not list 3 nodes: %+v", view)
		}
	})

	// Cut the lobby's owner off with the cut command: the two others take the lobby over with a higher epoch and
	// the cut-off node stops being ready; after heal, all three are ready and agree again.
	lobby := func(url string) (owner string, epoch uint64) {
		v, err := fetchClusterView(url + "/api/cluster")
		if err != nil {
			return "", 0
		}
		for _, r := range v.Rooms {
			if r.Room == "lobby" {
				return r.Owner, r.Epoch
			}
		}
		return "", 0
	}
	var owner0 string
	var epoch0 uint64
	if !proctest.Eventually(20*time.Second, func() bool { owner0, epoch0 = lobby(adminURL(1)); return owner0 != "" }) {
		t.Fatal("no owner of the lobby")
	}
	cutIdx := int(owner0[1] - '0')
	others := []int{}
	for i := 1; i <= 3; i++ {
		if i != cutIdx {
			others = append(others, i)
		}
	}
	if o, err := lc("cut", owner0); err != nil || !strings.Contains(o, "cut off") {
		t.Fatalf("cut %s: %v\n%s", owner0, err, o)
	}
	if !proctest.Eventually(30*time.Second, func() bool {
		for _, i := range others {
			if o, e := lobby(adminURL(i)); o == "" || o == owner0 || e <= epoch0 {
				return false
			}
		}
		return proctest.HTTPStatus(nodeURL(cutIdx)+"/readyz") == http.StatusServiceUnavailable
	}) {
		o1, e1 := lobby(adminURL(others[0]))
		t.Fatalf("after cutting %s off (epoch %d): n%d sees owner %q epoch %d; %s /readyz %d", owner0, epoch0,
			others[0], o1, e1, owner0, proctest.HTTPStatus(nodeURL(cutIdx)+"/readyz"))
	}
	if o, err := lc("heal"); err != nil {
		t.Fatalf("heal: %v\n%s", err, o)
	}
	if !proctest.Eventually(60*time.Second, func() bool {
		o1, e1 := lobby(adminURL(1))
		for i := 1; i <= 3; i++ {
			if proctest.HTTPStatus(nodeURL(i)+"/readyz") != http.StatusOK {
				return false
			}
			if o, e := lobby(adminURL(i)); o != o1 || e != e1 || o == owner0 && e == epoch0 {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("after heal the nodes are not all ready and agreed on the lobby:\n%s", func() string { o, _ := lc("owner"); return o }())
	}

	// Kill n2 with the kill command; n1 and n3 stay (or, after a leader election, become again) ready.
	if o, err := lc("kill", "n2"); err != nil {
		t.Fatalf("kill n2: %v\n%s", err, o)
	}
	if !proctest.Eventually(5*time.Second, func() bool { return !alive(pids["n2"], filepath.Join(state, "data", "n2")) }) {
		t.Fatal("n2 still alive after kill")
	}
	// Right after a peer dies the survivors answer 503 for a few seconds while JetStream elects new leaders for
	// what the dead node led ("stream ... not usable (no leader)"); what matters is that the two keep a working
	// majority: both ready again, continuously, for 8 s.
	var dips []string
	stableSince := time.Time{}
	if !proctest.Eventually(40*time.Second, func() bool {
		p1, p3 := getReadyz(t.Context(), nodeURL(1)+"/readyz"), getReadyz(t.Context(), nodeURL(3)+"/readyz")
		if p1.code != http.StatusOK || p3.code != http.StatusOK {
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
	if o, _ := lc("status"); !strings.Contains(o, "stopped") {
		t.Errorf("status does not show n2 stopped:\n%s", o)
	}

	// Interrupt up: it stops everything.
	if err := up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-upDone:
		upExited = true
		if err != nil {
			t.Errorf("up exited with %v after SIGINT", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up still running 30 s after SIGINT")
	}
	for name, pid := range pids {
		// Each process led its own group: nothing of it (nginx's workers included) may remain.
		if live := liveInGroup(t, pid); len(live) > 0 {
			t.Errorf("%s (pid %d): processes %v of its group still run", name, pid, live)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(state, "run", "*.pid")); len(files) > 0 {
		t.Errorf("pid files left: %v", files)
	}
	for _, f := range []string{"links.json", "cut"} {
		if _, err := os.Stat(filepath.Join(state, f)); err == nil {
			t.Errorf("%s left after up exited", f)
		}
	}
	if o, err := lc("cut", "n1"); err == nil || !strings.Contains(o, "no `task up` is running") {
		t.Errorf("cut without up: err %v, output %q", err, o)
	}
	if !strings.Contains(out.String(), "cluster stopped") {
		t.Errorf("up did not report stopping:\n%s", out.String())
	}
}

// TestUpFailsFastOnBusyPort checks that up names a port in use and starts nothing.
func TestUpFailsFastOnBusyPort(t *testing.T) {
	base := proctest.FreePortBlock(t, 16)
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

// TestUpRefusesSecondCluster checks that up will not start over live pid files of the same directory.
func TestUpRefusesSecondCluster(t *testing.T) {
	dir := t.TempDir()
	c, _ := newCluster(dir, settings{Bin: "/b", BaseHTTP: 1, BaseNATS: 10, BaseRoute: 20, NginxPort: 30})
	// A process with n1's marker in its command line, recorded as n1.
	cmd := exec.Command("sh", "-c", "sleep 60 & wait", c.marker("n1"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err := writePid(c.pidFile("n1"), cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"up", "-dir", dir, "-nginx", "off"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "already running: n1 (pid") {
		t.Fatalf("err = %v", err)
	}
	// A stale pid file does not block, and is cleaned up.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	proctest.Eventually(5*time.Second, func() bool { return !alive(cmd.Process.Pid, c.marker("n1")) })
	err = run(t.Context(), []string{"up", "-dir", dir, "-nginx", "off", "-bin", filepath.Join(dir, "missing")}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "node binary") {
		t.Fatalf("err = %v, want the missing binary", err)
	}
	if _, err := os.Stat(c.pidFile("n1")); err == nil {
		t.Error("stale pid file kept")
	}
}
