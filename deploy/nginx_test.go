package deploy

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite deploy/nginx/compose.conf from the template")

func TestRenderHasTheLoadBalancerSettings(t *testing.T) {
	conf, err := LocalNginx("/x/.tickmesh/nginx", "127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083").Render()
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	for _, want := range []string{
		"upstream tickmesh {",
		"server 127.0.0.1:8081 max_fails=1 fail_timeout=5s;",
		"server 127.0.0.1:8082 max_fails=1 fail_timeout=5s;",
		"server 127.0.0.1:8083 max_fails=1 fail_timeout=5s;",
		"map $http_upgrade $connection_upgrade {",
		"proxy_http_version 1.1;",
		"proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;",
		"proxy_set_header Host $http_host;",
		"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
		"proxy_set_header X-Real-IP $remote_addr;",
		"proxy_read_timeout 60s;",
		"proxy_send_timeout 60s;",
		"proxy_next_upstream error timeout http_502 http_503;",
		"limit_conn_zone $binary_remote_addr zone=tickmesh_ws_conn:10m;",
		"limit_conn tickmesh_ws_conn 50;",
		"limit_req_zone $binary_remote_addr zone=tickmesh_ws_req:10m rate=10r/s;",
		"limit_req zone=tickmesh_ws_req burst=20 nodelay;",
		"location /ws {",
		"location / {",
		"listen 127.0.0.1:8080;",
		`pid "/x/.tickmesh/nginx/nginx.pid";`,
		`error_log "/x/.tickmesh/nginx/error.log" warn;`,
		`access_log "/x/.tickmesh/nginx/access.log";`,
		`proxy_temp_path "/x/.tickmesh/nginx/temp/proxy";`,
		`client_body_temp_path "/x/.tickmesh/nginx/temp/client_body";`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered configuration lacks %q", want)
		}
	}
	if strings.Contains(s, "\nuser ") {
		t.Error("local rendering has a user directive")
	}
	// Both locations forward the client's address and Host (proxy_set_header is not inherited).
	if n := strings.Count(s, "proxy_set_header Host $http_host;"); n != 2 {
		t.Errorf("Host header set in %d places, want 2 (each location)", n)
	}
}

func TestRenderRefusesInjection(t *testing.T) {
	for name, mutate := range map[string]func(*Nginx){
		"semicolon in path": func(n *Nginx) { n.Pid = "/tmp/x; user root" },
		"newline in path":   func(n *Nginx) { n.ErrorLog = "/tmp/x\nuser root;" },
		"quote in path":     func(n *Nginx) { n.AccessLog = `/tmp/"x` },
		"variable":          func(n *Nginx) { n.AccessLog = "/tmp/$host.log" },
		"brace in upstream": func(n *Nginx) { n.Upstreams = []string{"127.0.0.1:1 }"} },
		"no upstream":       func(n *Nginx) { n.Upstreams = nil },
		"upstream no port":  func(n *Nginx) { n.Upstreams = []string{"node1"} },
		"space in listen":   func(n *Nginx) { n.Listen = "8080 default_server" },
		"empty pid":         func(n *Nginx) { n.Pid = "" },
		"zero connections":  func(n *Nginx) { n.WorkerConnections = 0 },
		"two-line note":     func(n *Nginx) { n.Generated = "a\nb" },
	} {
		n := LocalNginx("/tmp/n", "127.0.0.1:8080", "127.0.0.1:8081")
		mutate(&n)
		if _, err := n.Render(); err == nil {
			t.Errorf("%s: rendered without error", name)
		}
	}
	// Spaces in paths are fine: they are quoted.
	n := LocalNginx("/tmp/with space", "127.0.0.1:8080", "127.0.0.1:8081")
	if _, err := n.Render(); err != nil {
		t.Errorf("path with a space: %v", err)
	}
}

// TestComposeNginxConf checks that deploy/nginx/compose.conf is the template rendered with ComposeNginx.
func TestComposeNginxConf(t *testing.T) {
	want, err := ComposeNginx().Render()
	if err != nil {
		t.Fatal(err)
	}
	const file = "nginx/compose.conf"
	if *update {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not the rendering of the template with ComposeNginx(); run: go test ./deploy -run TestComposeNginxConf -update", file)
	}
	s := string(got)
	for _, want := range []string{
		"user nginx;", "listen 8080;", "server node1:8080 max_fails=1 fail_timeout=5s;",
		"server node2:8080 max_fails=1 fail_timeout=5s;", "server node3:8080 max_fails=1 fail_timeout=5s;",
		`error_log "stderr" warn;`, `access_log "/dev/stdout";`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %q", file, want)
		}
	}
	if strings.Contains(s, "temp_path") {
		t.Errorf("%s sets temp paths; the image's defaults are meant", file)
	}
}

// nginxBinary returns the path of nginx or skips the test.
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("nginx not installed: cannot run `nginx -t` on the rendered configuration (apt-get install nginx-light)")
	return ""
}

// nginxTest runs `nginx -t` on conf with prefix dir, never touching the system configuration or logs.
func nginxTest(t *testing.T, nginx, dir string, conf []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "temp"), 0o755); err != nil { // nginx creates only the last element
		t.Fatal(err)
	}
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir, "-c", file, "-e", filepath.Join(dir, "startup-error.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, conf)
	}
}

func TestNginxAcceptsLocalRendering(t *testing.T) {
	nginx := nginxBinary(t)
	dir := t.TempDir()
	conf, err := LocalNginx(dir, "127.0.0.1:18080", "127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083").Render()
	if err != nil {
		t.Fatal(err)
	}
	nginxTest(t, nginx, dir, conf)
}

func TestNginxAcceptsComposeRendering(t *testing.T) {
	nginx := nginxBinary(t)
	dir := t.TempDir()
	// compose.conf as is, but for what only exists in the container: the nginx user, the node1..3 host names
	// (nginx -t resolves them), and the image's pid and temp directories.
	n := ComposeNginx()
	n.User = ""
	n.Upstreams = []string{"127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"}
	n.Pid = filepath.Join(dir, "nginx.pid")
	n.TempDir = filepath.Join(dir, "temp")
	conf, err := n.Render()
	if err != nil {
		t.Fatal(err)
	}
	nginxTest(t, nginx, dir, conf)
}
