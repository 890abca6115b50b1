package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/proctest"
	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/node"
)

func TestParseArgs(t *testing.T) {
	cmd, err := parseArgs([]string{"up"})
	if err != nil {
		t.Fatal(err)
	}
	if cmd.name != "up" || cmd.opts != defaultOptions() || len(cmd.set) != 0 {
		t.Errorf("up: got %+v", cmd)
	}

	cmd, err = parseArgs([]string{"up", "-nginx", "off", "-bin", "/x/node", "-dir", "/tmp/s", "-base-http", "9001", "-ready-timeout", "5s"})
	if err != nil {
		t.Fatal(err)
	}
	if cmd.opts.nginx != "off" || cmd.opts.bin != "/x/node" || cmd.opts.dir != "/tmp/s" || cmd.opts.baseHTTP != 9001 || cmd.opts.readyTimeout != 5*time.Second {
		t.Errorf("up with flags: got %+v", cmd.opts)
	}
	if !cmd.set["base-http"] || !cmd.set["bin"] || cmd.set["base-nats"] {
		t.Errorf("set flags: %v", cmd.set)
	}

	// The node name may come before or after the flags.
	for _, args := range [][]string{{"kill", "n2", "-dir", "/s"}, {"kill", "-dir", "/s", "n2"}} {
		cmd, err := parseArgs(args)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if cmd.name != "kill" || cmd.node != "n2" || cmd.opts.dir != "/s" {
			t.Errorf("%v: got %+v", args, cmd)
		}
	}

	for _, name := range []string{"-h", "help"} {
		if cmd, err := parseArgs([]string{name}); err != nil || cmd.name != "help" {
			t.Errorf("%s: %+v %v", name, cmd, err)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"launch"},
		{"kill"},                  // no node
		{"kill", "n1", "n2"},      // two nodes
		{"status", "n1"},          // no argument wanted
		{"up", "-nginx", "maybe"}, // bad mode
		{"up", "-base-http", "0"},
		{"up", "-base-http", "65534"}, // 65534..65536 does not fit 3 nodes
		{"up", "-nginx-port", "70000"},
		{"up", "-ready-timeout", "0s"},
		{"up", "-dir", ""},
		{"kill", "-nginx", "off", "n2"}, // -nginx is for up only
		{"down", "-bin", "x"},           // -bin is for up and start
		{"up", "-unknown"},
	} {
		_, err := parseArgs(args)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", args, err)
		}
	}
}

func TestNewClusterLayout(t *testing.T) {
	c, err := newCluster("/s", settings{Bin: "/b/node", BaseHTTP: 9001, BaseAdmin: 9301, BaseNATS: 9101, BaseRoute: 9201, NginxPort: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	n2 := c.Nodes[1]
	want := nodeSpec{
		Name: "n2", HTTP: "127.0.0.1:9002", Admin: "127.0.0.1:9302", NATS: "127.0.0.1:9102", Route: "127.0.0.1:9202",
		Routes: []string{"127.0.0.1:9201", "127.0.0.1:9203"}, DataDir: "/s/data/n2",
	}
	if !reflect.DeepEqual(n2, want) {
		t.Errorf("n2 = %+v, want %+v", n2, want)
	}
	wantArgs := []string{"-name", "n2", "-http", "127.0.0.1:9002", "-admin-http", "127.0.0.1:9302", "-trusted-proxies", "127.0.0.1/32", "-nats", "127.0.0.1:9102", "-cluster", "127.0.0.1:9202",
		"-routes", "127.0.0.1:9201,127.0.0.1:9203", "-data", "/s/data/n2", "-public-url", "http://127.0.0.1:9002"}
	if got := n2.Args(); !slices.Equal(got, wantArgs) {
		t.Errorf("args = %q, want %q", got, wantArgs)
	}
	for i, n := range c.Nodes {
		for _, r := range n.Routes {
			if r == n.Route {
				t.Errorf("n%d routes to itself", i+1)
			}
		}
	}
	if c.pidFile("n1") != "/s/run/n1.pid" || c.logFile("nginx") != "/s/logs/nginx.log" || c.nginxURL() != "http://127.0.0.1:9000" {
		t.Errorf("paths: %s %s %s", c.pidFile("n1"), c.logFile("nginx"), c.nginxURL())
	}
	if c.marker("n3") != "/s/data/n3" || c.marker("nginx") != "/s/nginx" {
		t.Errorf("markers: %s %s", c.marker("n3"), c.marker("nginx"))
	}
	if _, err := c.node("n4"); err == nil {
		t.Error("node n4 exists")
	}
	ports := c.ports(true)
	if len(ports) != 13 || ports[12].addr != "127.0.0.1:9000" {
		t.Errorf("ports: %v", ports)
	}
}

func TestRecordedSettings(t *testing.T) {
	dir := t.TempDir()
	up, err := newCluster(dir, settings{Bin: "/b/node", BaseHTTP: 9001, BaseNATS: 9101, BaseRoute: 9201, NginxPort: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.writeSettings(); err != nil {
		t.Fatal(err)
	}
	// Another command without flags acts on what up recorded...
	cmd, err := parseArgs([]string{"start", "-dir", dir, "n1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadCluster(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bin != "/b/node" || c.Nodes[0].HTTP != "127.0.0.1:9001" || c.NginxPort != 9000 {
		t.Errorf("start sees %s %s %d", c.Bin, c.Nodes[0].HTTP, c.NginxPort)
	}
	// ...unless a flag says otherwise.
	cmd, _ = parseArgs([]string{"status", "-dir", dir, "-base-http", "7001"})
	c, err = loadCluster(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if c.Nodes[0].HTTP != "127.0.0.1:7001" || c.Nodes[0].NATS != "127.0.0.1:9101" {
		t.Errorf("status sees %s %s", c.Nodes[0].HTTP, c.Nodes[0].NATS)
	}
	// up ignores the record.
	cmd, _ = parseArgs([]string{"up", "-dir", dir})
	c, _ = loadCluster(cmd)
	if c.Nodes[0].HTTP != "127.0.0.1:8081" {
		t.Errorf("up sees %s", c.Nodes[0].HTTP)
	}
	// Without a record: the defaults.
	cmd, _ = parseArgs([]string{"status", "-dir", t.TempDir()})
	c, _ = loadCluster(cmd)
	if c.Nodes[2].HTTP != "127.0.0.1:8083" {
		t.Errorf("default status sees %s", c.Nodes[2].HTTP)
	}
	// A broken record is an error, not a silent default.
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _ = parseArgs([]string{"status", "-dir", dir})
	if _, err := loadCluster(cmd); err == nil {
		t.Error("broken cluster.json accepted")
	}
}

func TestNginxConfigOfCluster(t *testing.T) {
	c, err := newCluster("/s", settings{Bin: "/b", BaseHTTP: 8081, BaseNATS: 4222, BaseRoute: 6222, NginxPort: 8080})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := c.nginxConfig().Render()
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	for _, want := range []string{
		"listen 127.0.0.1:8080;",
		"server 127.0.0.1:8081 max_fails=1 fail_timeout=5s;",
		"server 127.0.0.1:8083 max_fails=1 fail_timeout=5s;",
		`pid "/s/nginx/nginx.pid";`, `error_log "/s/nginx/error.log" warn;`, `access_log "/s/nginx/access.log";`,
		`proxy_temp_path "/s/nginx/temp/proxy";`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("configuration lacks %q", want)
		}
	}
	args := nginxArgs("/s/nginx")
	want := []string{"-p", "/s/nginx", "-c", "/s/nginx/nginx.conf", "-e", "/s/nginx/error.log", "-g", "daemon off;"}
	if !slices.Equal(args, want) {
		t.Errorf("nginx args %q, want %q", args, want)
	}
	// The pid-file marker of nginx is a whole word of the command line nginx shows.
	title := "nginx: master process /usr/sbin/nginx " + strings.Join(args[:len(args)-2], " ") + " -g daemon off;"
	if !cmdlineHas([]byte(title), c.marker(nginxName)) {
		t.Errorf("marker %q not found in %q", c.marker(nginxName), title)
	}
}

func TestNodeEnvGivesEveryNodeTheClustersCredentialsAndNothingThatOpensIt(t *testing.T) {
	s := config.Secrets{ClusterUser: "route", ClusterPassword: "p1", SessionSecret: "s1", SysUser: "sys", SysPassword: "p2"}
	env := nodeEnv([]string{"PATH=/bin", "SESSION_SECRET=from-the-shell", "DEV_INSECURE=true", "CLIENT_USER=x", "HOME=/h"}, s)
	want := append([]string{"PATH=/bin", "HOME=/h"}, s.Env()...)
	if !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
}

func TestSecretsAreDrawnOnceAndContextsWritten(t *testing.T) {
	c, err := newCluster(t.TempDir(), settings{Bin: "/b", BaseHTTP: 8081, BaseAdmin: 9091, BaseNATS: 4222, BaseRoute: 6222, NginxPort: 8080})
	if err != nil {
		t.Fatal(err)
	}
	s, created, err := c.ensureSecrets()
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	again, created, err := c.ensureSecrets()
	if err != nil || created || again != s {
		t.Fatalf("second: %v %v, same %v", created, err, again == s)
	}
	if st, err := os.Stat(c.secretsFile()); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secrets.env: %v %v", st, err)
	}
	var n node.Config
	s.Apply(&n)
	if n.SessionSecret == "" || n.Mesh.RoutePassword == "" || n.Mesh.Viewer.Password == "" || n.Mesh.Sys.Password == "" {
		t.Fatalf("drawn secrets incomplete: %+v", s)
	}
	if err := c.writeContexts(s); err != nil {
		t.Fatal(err)
	}
	var viewer natsContext
	b, err := os.ReadFile(c.contextFile("viewer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &viewer); err != nil {
		t.Fatal(err)
	}
	if viewer.User != s.ViewerUser || viewer.Password != s.ViewerPassword || viewer.InboxPrefix != mesh.ViewerInboxPrefix ||
		viewer.URL != "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224" {
		t.Fatalf("viewer context %+v", viewer)
	}
	if st, _ := os.Stat(c.contextFile("sys")); st == nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("sys context mode: %v", st)
	}
}

func TestPidFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "run", "n1.pid")
	if _, err := readPid(file); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := writePid(file, 4242); err != nil {
		t.Fatal(err)
	}
	if pid, err := readPid(file); err != nil || pid != 4242 {
		t.Errorf("readPid = %d, %v", pid, err)
	}
	for _, bad := range []string{"", "abc", "-3", "0"} {
		if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readPid(file); err == nil {
			t.Errorf("pid file %q accepted", bad)
		}
	}

	// records lists the pid files of run/, nginx last.
	c, _ := newCluster(dir, settings{Bin: "/b", BaseHTTP: 1, BaseNATS: 10, BaseRoute: 20, NginxPort: 30})
	for _, name := range []string{"nginx", "n2", "n1"} {
		if err := writePid(c.pidFile(name), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.runDir(), "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := c.records()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"n1", "n2", "nginx"}) {
		t.Errorf("records: %v", names)
	}
	if recs[0].Marker != filepath.Join(dir, "data", "n1") || recs[2].Marker != filepath.Join(dir, "nginx") {
		t.Errorf("markers: %+v", recs)
	}
}

func TestCmdlineHas(t *testing.T) {
	args := []byte("/bin/node\x00-data\x00/s/data/n1\x00-name\x00n1\x00")
	if !cmdlineHas(args, "/s/data/n1") {
		t.Error("exact argument not found")
	}
	for _, m := range []string{"/s/data/n", "/s/data", "data/n1", "", "/s/data/n10"} {
		if cmdlineHas(args, m) {
			t.Errorf("%q matched", m)
		}
	}
	if cmdlineHas(nil, "/s/data/n1") {
		t.Error("empty command line (zombie) matched")
	}
	if !cmdlineHas([]byte("nginx: master process nginx -p /s/nginx -c /s/nginx/nginx.conf"), "/s/nginx") {
		t.Error("rewritten title not matched")
	}
}

func TestParseStatState(t *testing.T) {
	for stat, want := range map[string]byte{
		"123 (tickmesh-node) S 1 123 123 0":   'S',
		"123 (a) (b) T 1 123":                 'T',
		"123 (odd name) with) Z 1":            'Z',
		"garbage":                             0,
		"123 (x)":                             0,
		"7 (nginx: master) R 1 7 7 0 -1 4194": 'R',
	} {
		if got := parseStatState([]byte(stat)); got != want {
			t.Errorf("%q: state %q, want %q", stat, got, want)
		}
	}
}

// startSleeper starts a process in its own group with a recognisable argument and records it.
func startSleeper(t *testing.T, dir, name, shell string) procRecord {
	t.Helper()
	marker := filepath.Join(dir, "marker-"+name)
	cmd := exec.Command("sh", "-c", shell, marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait() // reap
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	r := procRecord{Name: name, File: filepath.Join(dir, name+".pid"), Marker: marker}
	if err := writePid(r.File, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStopAll(t *testing.T) {
	dir := t.TempDir()
	polite := startSleeper(t, dir, "polite", "sleep 60 & wait")
	// Ignores SIGTERM (an ignored signal stays ignored across exec), so needs SIGKILL.
	stubborn := startSleeper(t, dir, "stubborn", `trap "" TERM; sleep 60 & wait`)
	frozen := startSleeper(t, dir, "frozen", "sleep 60 & wait")
	stale := procRecord{Name: "stale", File: filepath.Join(dir, "stale.pid"), Marker: filepath.Join(dir, "marker-stale")}
	if err := writePid(stale.File, os.Getpid()); err != nil { // alive, but not the process the record means
		t.Fatal(err)
	}
	for _, r := range []procRecord{polite, stubborn, frozen} {
		if _, ok := r.running(); !ok {
			t.Fatalf("%s not seen running", r.Name)
		}
	}
	if _, ok := stale.running(); ok {
		t.Fatal("a pid file naming another process counts as running")
	}
	pid, _ := frozen.running()
	if err := signalGroup(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if s := processState(pid, frozen.Marker); s != "frozen" {
		t.Errorf("frozen process is %q", s)
	}

	var pgids []int
	for _, r := range []procRecord{polite, stubborn, frozen} {
		pid, _ := r.running()
		pgids = append(pgids, pid)
	}
	start := time.Now()
	if err := stopAll(context.Background(), []procRecord{polite, stubborn, frozen, stale}, 500*time.Millisecond, io.Discard); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stopAll took %v", d)
	}
	for _, r := range []procRecord{polite, stubborn, frozen, stale} {
		if _, err := os.Stat(r.File); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: pid file left: %v", r.Name, err)
		}
	}
	// The whole groups are gone (the shells' sleep children too).
	for _, pgid := range pgids {
		if live := liveInGroup(t, pgid); len(live) > 0 {
			t.Errorf("process group %d still has %v", pgid, live)
		}
	}
	if err := syscall.Kill(os.Getpid(), 0); err != nil {
		t.Fatal("stopAll signalled the test process through a stale pid file")
	}
}

// liveInGroup lists the processes of group pgid that are not zombies, from /proc.
func liveInGroup(t *testing.T, pgid int) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	if len(stats) == 0 {
		t.Skip("no /proc: cannot list process groups")
	}
	var live []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
		if len(fields) < 3 || fields[0] == "Z" || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(f, "/")[2])
		live = append(live, pid)
	}
	return live
}

// TestWaitReadyReportsExit checks that a process dying during startup ends the wait with the end of its log.
func TestWaitReadyReportsExit(t *testing.T) {
	base := proctest.FreePortBlock(t, 10)
	c, err := newCluster(t.TempDir(), settings{Bin: "/b", BaseHTTP: base, BaseNATS: base + 3, BaseRoute: base + 6, NginxPort: base + 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.nginxDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.nginxDir(), "error.log"), []byte("nginx: [emerg] bind() to 127.0.0.1:8080 failed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exits := make(chan exitEvent, 1)
	exits <- exitEvent{name: nginxName, pid: 42, err: errors.New("exit status 1")}
	err = waitReady(t.Context(), c, true, time.Minute, exits, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "nginx (pid 42) exited while starting") || !strings.Contains(err.Error(), "bind() to 127.0.0.1:8080 failed") {
		t.Fatalf("err = %v", err)
	}
	// An interrupted wait returns the context's error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := waitReady(ctx, c, false, time.Minute, make(chan exitEvent), io.Discard); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted: %v", err)
	}
}
