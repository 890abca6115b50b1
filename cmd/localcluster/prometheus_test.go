package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/procfs"
)

func TestFindPrometheusModes(t *testing.T) {
	if bin, addr, err := findPrometheus("off"); bin != "" || addr != "" || err != nil {
		t.Errorf("off: %q %q %v", bin, addr, err)
	}
	if _, _, err := findPrometheus("9099"); err == nil {
		t.Error("a bare port accepted: want auto, off or host:port")
	}
	_, lookErr := exec.LookPath("prometheus")
	bin, addr, err := findPrometheus("auto")
	if err != nil || addr != defaultPrometheusAddr || (bin != "") != (lookErr == nil) {
		t.Errorf("auto: %q %q %v (installed: %v)", bin, addr, err, lookErr == nil)
	}
	_, _, err = findPrometheus("127.0.0.1:9199")
	if (err == nil) != (lookErr == nil) {
		t.Errorf("an address requires Prometheus: err %v, installed %v", err, lookErr == nil)
	}
}

func TestPrometheusConfigScrapesEveryNode(t *testing.T) {
	c, err := newLocal(t.TempDir(), settings{Bin: "/b", BaseHTTP: 8081, BaseAdmin: 9091, BaseNATS: 4222, BaseRoute: 6222, NginxPort: 8080})
	if err != nil {
		t.Fatal(err)
	}
	conf := c.prometheusConfig()
	if len(conf.Targets) != nodeCount {
		t.Fatalf("targets %v", conf.Targets)
	}
	for i, n := range c.Nodes {
		if conf.Targets[i].Node != n.Name || conf.Targets[i].Addr != n.Admin {
			t.Errorf("target %d = %+v, want %s at %s", i, conf.Targets[i], n.Name, n.Admin)
		}
	}
	if _, err := conf.Render(); err != nil {
		t.Fatal(err)
	}
	args := prometheusArgs(c.prometheusDir(), c.dataDir(prometheusName), defaultPrometheusAddr)
	if !slices.Contains(args, c.proc(prometheusName).Marker) {
		t.Errorf("args %q lack the marker %s by which the launcher recognises the process", args, c.proc(prometheusName).Marker)
	}
}

// fakeNodes serves /metrics on every node's metrics address of a cluster in dir, counting scrapes; it retries
// other base ports until all three are free.
func fakeNodes(t *testing.T, dir string) (*local, []*atomic.Int32) {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(10000)
		c, err := newLocal(dir, settings{Bin: "/b", BaseHTTP: base, BaseAdmin: base, BaseNATS: base, BaseRoute: base, NginxPort: base})
		if err != nil {
			t.Fatal(err)
		}
		var ls []net.Listener
		for _, n := range c.Nodes {
			l, err := net.Listen("tcp", n.Admin)
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) < len(c.Nodes) {
			for _, l := range ls {
				l.Close()
			}
			continue
		}
		counts := make([]*atomic.Int32, len(ls))
		for i, l := range ls {
			counts[i] = &atomic.Int32{}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
				counts[i].Add(1)
				fmt.Fprintf(w, "# TYPE tickmesh_ready gauge\ntickmesh_ready 1\n")
			})
			srv := &http.Server{Handler: mux}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
		}
		return c, counts
	}
	t.Fatal("no three free consecutive ports")
	return nil, nil
}

// TestStartPrometheusScrapesTheNodes starts the installed Prometheus as `up` does, against three fake nodes,
// and waits until it reports each one up with its node label; then the launcher's stop ends it.
func TestStartPrometheusScrapesTheNodes(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (apt-get install prometheus; task setup installs it): `up` runs without it")
	}
	c, scrapes := fakeNodes(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	st := &starter{exits: make(chan exitEvent, 1)}
	var out bytes.Buffer
	startPrometheus(c, bin, addr, st, &out)
	if !strings.Contains(out.String(), "started prometheus") {
		t.Fatalf("not started: %s", out.String())
	}
	recs, err := c.records()
	if err != nil || len(recs) != 1 || recs[0].Name != prometheusName {
		t.Fatalf("run/ records %+v, %v", recs, err)
	}
	pid, perr := cluster.ReadPID(recs[0].Path)
	t.Cleanup(func() {
		_ = cluster.StopPIDFiles(context.Background(), recs, cluster.StopGrace, io.Discard)
		// StopPIDFiles stops only a process it recognises by its marker: the test's own child, not yet
		// reaped (its parent is still this process, so the pid is not another's), is killed whatever, so that
		// waiting for it cannot hang the test.
		if perr == nil && procfs.Parent(pid) == os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		st.wg.Wait()
	})
	// The recognition reads the process's command line, which may take a moment to be prometheus's own.
	for recognised := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, ok := recs[0].Running(); ok {
			break
		}
		if time.Now().After(recognised) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Fatalf("the launcher does not recognise the running Prometheus (pid %d, %v) by %s in %q\n%s", pid, perr, recs[0].Marker, cmdline, out.String())
		}
	}

	type target struct {
		Labels map[string]string `json:"labels"`
		Health string            `json:"health"`
	}
	up := func() []string {
		resp, err := http.Get("http://" + addr + "/api/v1/targets")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				ActiveTargets []target `json:"activeTargets"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return nil
		}
		var nodes []string
		for _, tg := range body.Data.ActiveTargets {
			if tg.Health == "up" {
				nodes = append(nodes, tg.Labels["node"])
			}
		}
		slices.Sort(nodes)
		return nodes
	}
	deadline := time.Now().Add(60 * time.Second)
	for !slices.Equal(up(), []string{"n1", "n2", "n3"}) {
		if time.Now().After(deadline) {
			log, _ := exec.Command("tail", "-20", c.logFile(prometheusName)).Output()
			t.Fatalf("targets up: %v, want n1..n3\n%s", up(), log)
		}
		select {
		case e := <-st.exits:
			t.Fatalf("prometheus exited: %v", e.err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	for i, n := range scrapes {
		if n.Load() == 0 {
			t.Errorf("n%d never scraped", i+1)
		}
	}
	if err := cluster.StopPIDFiles(context.Background(), recs, cluster.StopGrace, io.Discard); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.exits:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit event after the stop")
	}
	if _, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command("promtool", "check", "config", filepath.Join(c.prometheusDir(), "prometheus.yml")).CombinedOutput(); err != nil {
			t.Errorf("promtool: %v\n%s", err, out)
		}
	}
}
