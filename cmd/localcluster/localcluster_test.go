package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/cli"
	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/config"
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
		var ue *cli.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", args, err)
		}
	}
}

func TestNewLocalLayout(t *testing.T) {
	c, err := newLocal("/s", settings{Bin: "/b/node", BaseHTTP: 9001, BaseAdmin: 9301, BaseNATS: 9101, BaseRoute: 9201, NginxPort: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	n2 := c.Nodes[1]
	want := cluster.Node{
		Name: "n2", HTTP: "127.0.0.1:9002", Admin: "127.0.0.1:9302", NATS: "127.0.0.1:9102", Route: "127.0.0.1:9202",
		Routes: []string{"127.0.0.1:9201", "127.0.0.1:9203"}, DataDir: "/s/data/n2", Flags: []string{"-trusted-proxies", "127.0.0.1/32"},
	}
	if !reflect.DeepEqual(n2, want) {
		t.Errorf("n2 = %+v, want %+v", n2, want)
	}
	wantArgs := []string{"-name", "n2", "-http", "127.0.0.1:9002", "-admin-http", "127.0.0.1:9302", "-nats", "127.0.0.1:9102",
		"-cluster", "127.0.0.1:9202", "-routes", "127.0.0.1:9201,127.0.0.1:9203", "-data", "/s/data/n2",
		"-public-url", "http://127.0.0.1:9002", "-trusted-proxies", "127.0.0.1/32"}
	if got := n2.Args(); !slices.Equal(got, wantArgs) {
		t.Errorf("args = %q, want %q", got, wantArgs)
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
	ls := c.listens(true)
	if len(ls) != 13 || ls[12].Addr != "127.0.0.1:9000" {
		t.Errorf("listens: %v", ls)
	}
	// With links, every node dials and advertises its peers' links.
	c, _ = newLocal("/s", settings{Bin: "/b/node", BaseHTTP: 9001, BaseAdmin: 9401, BaseNATS: 9101, BaseRoute: 9201, BaseLink: 9301, NginxPort: 9000})
	if n := c.Nodes[0]; n.Link != "127.0.0.1:9301" || !slices.Equal(n.Routes, []string{"127.0.0.1:9302", "127.0.0.1:9303"}) ||
		!slices.Contains(n.Args(), "-cluster-advertise") {
		t.Errorf("n1 with links: %+v", n)
	}
	if ls := c.linkListens(); len(ls) != 3 || ls[2].Addr != "127.0.0.1:9303" {
		t.Errorf("link listens: %v", ls)
	}
}

func TestRecordedSettings(t *testing.T) {
	dir := t.TempDir()
	up, err := newLocal(dir, settings{Bin: "/b/node", BaseHTTP: 9001, BaseNATS: 9101, BaseRoute: 9201, NginxPort: 9000})
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
	c, err := loadLocal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bin != "/b/node" || c.Nodes[0].HTTP != "127.0.0.1:9001" || c.NginxPort != 9000 {
		t.Errorf("start sees %s %s %d", c.Bin, c.Nodes[0].HTTP, c.NginxPort)
	}
	// ...unless a flag says otherwise.
	cmd, _ = parseArgs([]string{"status", "-dir", dir, "-base-http", "7001"})
	c, err = loadLocal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if c.Nodes[0].HTTP != "127.0.0.1:7001" || c.Nodes[0].NATS != "127.0.0.1:9101" {
		t.Errorf("status sees %s %s", c.Nodes[0].HTTP, c.Nodes[0].NATS)
	}
	// up ignores the record.
	cmd, _ = parseArgs([]string{"up", "-dir", dir})
	c, _ = loadLocal(cmd)
	if c.Nodes[0].HTTP != "127.0.0.1:8081" {
		t.Errorf("up sees %s", c.Nodes[0].HTTP)
	}
	// Without a record: the defaults.
	cmd, _ = parseArgs([]string{"status", "-dir", t.TempDir()})
	c, _ = loadLocal(cmd)
	if c.Nodes[2].HTTP != "127.0.0.1:8083" {
		t.Errorf("default status sees %s", c.Nodes[2].HTTP)
	}
	// A broken record is an error, not a silent default.
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _ = parseArgs([]string{"status", "-dir", dir})
	if _, err := loadLocal(cmd); err == nil {
		t.Error("broken cluster.json accepted")
	}
}

func TestNginxConfigOfCluster(t *testing.T) {
	c, err := newLocal("/s", settings{Bin: "/b", BaseHTTP: 8081, BaseNATS: 4222, BaseRoute: 6222, NginxPort: 8080})
	if err != nil {
		t.Fatal(err)
	}
	// deploy's tests render LocalNginx; what matters here is what the launcher puts in it.
	n := c.nginxConfig()
	if n.Listen != "127.0.0.1:8080" || !slices.Equal(n.Upstreams, []string{"127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"}) ||
		n.Pid != "/s/nginx/nginx.pid" || n.TempDir != "/s/nginx/temp" || !strings.Contains(n.Generated, "cmd/localcluster") {
		t.Errorf("nginx configuration %+v", n)
	}
	if _, err := n.Render(); err != nil {
		t.Fatal(err)
	}
	args := nginxArgs("/s/nginx")
	want := []string{"-p", "/s/nginx", "-c", "/s/nginx/nginx.conf", "-e", "/s/nginx/error.log", "-g", "daemon off;"}
	if !slices.Equal(args, want) {
		t.Errorf("nginx args %q, want %q", args, want)
	}
	// The pid-file marker of nginx is a whole word of the command line nginx shows.
	title := "nginx: master process /usr/sbin/nginx " + strings.Join(args[:len(args)-2], " ") + " -g daemon off;"
	if !cluster.CmdlineHas([]byte(title), c.marker(nginxName)) {
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

func TestRecordsListRunDirNginxLast(t *testing.T) {
	dir := t.TempDir()
	c, _ := newLocal(dir, settings{Bin: "/b", BaseHTTP: 1, BaseNATS: 10, BaseRoute: 20, NginxPort: 30})
	for _, name := range []string{"nginx", "n2", "n1"} {
		if err := cluster.WritePID(c.pidFile(name), 1); err != nil {
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

// TestWaitReadyReportsExit checks that a process dying during startup ends the wait with the end of its log.
func TestWaitReadyReportsExit(t *testing.T) {
	base := testingutil.FreePortBlock(t, 10)
	c, err := newLocal(t.TempDir(), settings{Bin: "/b", BaseHTTP: base, BaseNATS: base + 3, BaseRoute: base + 6, NginxPort: base + 9})
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
