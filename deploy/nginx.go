// Package deploy holds Tickmesh's deployment files and the Go that goes with them: the nginx configuration
// template of the WebSocket load balancer (nginx/nginx.conf.tmpl) and the Prometheus scrape configuration
// template (prometheus/prometheus.yml.tmpl), each rendered here for the local cluster launcher (cmd/localcluster)
// and, once and committed, for docker-compose (nginx/compose.conf, prometheus/compose.yml). The package's tests
// check those files, the top-level docker-compose.yml and Dockerfile, the nats/ examples, the Grafana dashboard
// and the Kubernetes manifests (k8s/) offline.
package deploy

import (
	"bytes"
	_ "embed"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

//go:embed nginx/nginx.conf.tmpl
var nginxTemplate string

// ComposeNginxIP is nginx's address on docker-compose.yml's network (subnet ComposeSubnet): the one proxy the
// nodes believe X-Real-IP from.
const ComposeNginxIP = "172.28.0.10"

// ComposeSubnet is the subnet of docker-compose.yml's network.
const ComposeSubnet = "172.28.0.0/24"

// Nginx is what the nginx configuration template needs.
type Nginx struct {
	Generated         string   // one comment line saying where the file comes from; optional
	Listen            string   // listen address: "127.0.0.1:8080" or "8080"
	Upstreams         []string // host:port of every node's HTTP listener
	User              string   // worker user; empty = no user directive (nginx's default)
	WorkerProcesses   string   // "auto" or a number
	WorkerConnections int      // per worker
	Pid               string   // pid file
	ErrorLog          string   // error_log target: a path or "stderr"
	AccessLog         string   // access_log target: a path, "/dev/stdout" or "off"
	TempDir           string   // parent of the *_temp_path directories; empty = nginx's compiled defaults
}

// LocalNginx is the configuration of cmd/localcluster's nginx: one worker, every path (pid, logs, temporary
// files) inside dir, so that it never reads or writes the system's.
func LocalNginx(dir string, listen string, upstreams ...string) Nginx {
	return Nginx{
		Listen:            listen,
		Upstreams:         upstreams,
		WorkerProcesses:   "1",
		WorkerConnections: 1024,
		Pid:               filepath.Join(dir, "nginx.pid"),
		ErrorLog:          filepath.Join(dir, "error.log"),
		AccessLog:         filepath.Join(dir, "access.log"),
		TempDir:           filepath.Join(dir, "temp"),
	}
}

// ComposeNginx is the configuration of the nginx service of docker-compose.yml (deploy/nginx/compose.conf):
// the three node services on their container port, paths of the nginx:1.27-alpine image. In compose, nginx has
// the fixed address ComposeNginxIP, which the nodes' TRUSTED_PROXIES names.
func ComposeNginx() Nginx {
	return Nginx{
		Generated:         "Generated from deploy/nginx/nginx.conf.tmpl (deploy.ComposeNginx); regenerate with: go test ./deploy -run TestComposeNginxConf -update",
		Listen:            "8080",
		Upstreams:         []string{"node1:8080", "node2:8080", "node3:8080"},
		User:              "nginx",
		WorkerProcesses:   "auto",
		WorkerConnections: 4096,
		Pid:               "/var/run/nginx.pid",
		ErrorLog:          "stderr",
		AccessLog:         "/dev/stdout",
	}
}

// Render fills the template. It refuses values that would change the configuration's structure (quotes,
// semicolons, braces, variables, line breaks), so a path can never inject directives.
func (n Nginx) Render() ([]byte, error) {
	if err := n.check(); err != nil {
		return nil, err
	}
	t, err := template.New("nginx.conf").Option("missingkey=error").Funcs(template.FuncMap{
		"q":    strconv.Quote,
		"join": path.Join,
	}).Parse(nginxTemplate)
	if err != nil {
		return nil, fmt.Errorf("nginx template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, n); err != nil {
		return nil, fmt.Errorf("nginx template: %w", err)
	}
	return b.Bytes(), nil
}

func (n Nginx) check() error {
	if len(n.Upstreams) == 0 {
		return fmt.Errorf("nginx: no upstream servers")
	}
	if n.WorkerConnections < 1 {
		return fmt.Errorf("nginx: worker connections must be at least 1")
	}
	fields := []struct{ name, value string }{
		{"listen", n.Listen}, {"worker processes", n.WorkerProcesses}, {"pid", n.Pid},
		{"error log", n.ErrorLog}, {"access log", n.AccessLog},
	}
	for _, f := range fields {
		if f.value == "" {
			return fmt.Errorf("nginx: %s is empty", f.name)
		}
	}
	fields = append(fields, struct{ name, value string }{"user", n.User}, struct{ name, value string }{"temp dir", n.TempDir})
	for _, u := range n.Upstreams {
		fields = append(fields, struct{ name, value string }{"upstream", u})
	}
	for _, f := range fields {
		if strings.ContainsAny(f.value, "\"'\\;{}$#\r\n\t") {
			return fmt.Errorf("nginx: %s %q contains a character not allowed in the configuration", f.name, f.value)
		}
	}
	for _, f := range []struct{ name, value string }{{"listen", n.Listen}, {"user", n.User}, {"worker processes", n.WorkerProcesses}} {
		if strings.Contains(f.value, " ") {
			return fmt.Errorf("nginx: %s %q contains a space", f.name, f.value)
		}
	}
	for _, u := range n.Upstreams {
		if strings.Contains(u, " ") || !strings.Contains(u, ":") {
			return fmt.Errorf("nginx: upstream %q: want host:port", u)
		}
	}
	if strings.ContainsAny(n.Generated, "\r\n") {
		return fmt.Errorf("nginx: the generated note must be one line")
	}
	return nil
}
