package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tickmesh/tickmesh/deploy"
	"github.com/tickmesh/tickmesh/pkg/config"
)

// exitEvent is a child process of `up` that ended.
type exitEvent struct {
	name string
	pid  int
	err  error // from Wait: nil, "exit status 1", "signal: killed"...
}

// up starts the cluster, waits until it is ready, prints where everything is and runs until ctx ends or
// nothing it manages is left; then it stops every process recorded in run/, including nodes restarted since
// by `start`.
func up(ctx context.Context, c *cluster, o options, out io.Writer) (err error) {
	if err := refuseIfRunning(c); err != nil {
		return err
	}
	if st, err := os.Stat(c.Bin); err != nil || st.IsDir() {
		return fmt.Errorf("node binary %s not found: build it first (task build, or go build -o %s ./cmd/node)", relativePath(c.Bin), relativePath(c.Bin))
	}
	nginx, err := findNginx(o.nginx)
	if err != nil {
		return err
	}
	prometheus, prometheusAddr, err := findPrometheus(o.prometheus)
	if err != nil {
		return err
	}
	if err := checkPorts(append(c.ports(nginx != ""), c.linkPorts()...)); err != nil {
		return err
	}
	for _, d := range []string{c.runDir(), c.logDir(), filepath.Join(c.Dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := c.writeSettings(); err != nil {
		return err
	}
	secrets, created, err := c.ensureSecrets()
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(out, "drew the cluster's credentials into %s (kept for this checkout; delete it and the data directory to start over)\n", relativePath(c.secretsFile()))
	}
	if err := c.writeContexts(secrets); err != nil {
		return err
	}
	env := nodeEnv(os.Environ(), secrets)

	exits := make(chan exitEvent, 2*nodeCount+3)
	var lk *links
	if c.Nodes[0].Link != "" {
		removeQuietly(c.cutFile()) // a new cluster starts with every node connected
		lk, err = startLinks(c)
		if err != nil {
			return err
		}
		info, _ := json.Marshal(linksInfo{PID: os.Getpid()})
		if err := os.WriteFile(c.linksFile(), info, 0o644); err != nil {
			lk.Close()
			return err
		}
		lctx, stopFollow := context.WithCancel(ctx)
		followed := make(chan struct{})
		go func() {
			defer close(followed)
			followCut(lctx, c, lk, out)
		}()
		defer func() {
			// After the nodes (deferred below, so run first): their route connections end with them.
			stopFollow()
			<-followed
			lk.Close()
			removeQuietly(c.linksFile())
			removeQuietly(c.cutFile())
		}()
	}
	defer func() {
		if serr := shutdown(c, out); serr != nil && err == nil {
			err = serr
		}
	}()
	for _, n := range c.Nodes {
		cmd, err := launch(c, n.Name, c.Bin, n.Args(), env, true)
		if err != nil {
			return fmt.Errorf("start %s: %w", n.Name, err)
		}
		fmt.Fprintf(out, "started %s (pid %d): http %s, nats %s, routes %s, log %s\n", n.Name, cmd.Process.Pid, n.HTTP, n.NATS, n.Route, relativePath(c.logFile(n.Name)))
		go reap(n.Name, cmd, exits)
	}
	if nginx != "" {
		cmd, err := launchNginx(c, nginx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "started nginx (pid %d): load balancer on %s, config %s\n", cmd.Process.Pid, c.nginxListen(), relativePath(filepath.Join(c.nginxDir(), "nginx.conf")))
		go reap(nginxName, cmd, exits)
	} else if o.nginx == "auto" {
		fmt.Fprintln(out, "nginx is not installed: no load balancer; clients can use the nodes directly (apt-get install nginx-light for one)")
	}

	if err := waitReady(ctx, c, nginx != "", o.readyTimeout, exits, out); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "\ninterrupted while starting")
			return nil
		}
		return err
	}
	startPrometheus(c, prometheus, prometheusAddr, exits, out)
	printURLs(out, c, nginx != "")

	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "\nstopping the cluster")
			return nil
		case e := <-exits:
			fmt.Fprintf(out, "%s (pid %d) exited: %s\n", e.name, e.pid, describeExit(e.err))
			if !anyRunning(c) {
				fmt.Fprintln(out, "nothing is running any more (task down?): exiting")
				return nil
			}
		}
	}
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func reap(name string, cmd *exec.Cmd, exits chan<- exitEvent) {
	err := cmd.Wait()
	exits <- exitEvent{name: name, pid: cmd.Process.Pid, err: err}
}

// shutdown stops every process recorded in run/; a second SIGINT or SIGTERM skips to SIGKILL.
func shutdown(c *cluster, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	recs, err := c.records()
	if err != nil {
		return err
	}
	if err := stopAll(ctx, recs, stopTimeout, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "cluster stopped")
	return nil
}

func refuseIfRunning(c *cluster) error {
	recs, err := c.records()
	if err != nil {
		return err
	}
	var running []string
	for _, r := range recs {
		if pid, ok := r.running(); ok {
			running = append(running, fmt.Sprintf("%s (pid %d)", r.Name, pid))
		} else {
			removeQuietly(r.File) // stale
		}
	}
	if len(running) > 0 {
		return fmt.Errorf("a cluster from %s is already running: %s; stop it first (task down)", relativePath(c.Dir), strings.Join(running, ", "))
	}
	return nil
}

func anyRunning(c *cluster) bool {
	recs, _ := c.records()
	for _, r := range recs {
		if _, ok := r.running(); ok {
			return true
		}
	}
	return false
}

// nodeEnv is the environment of the nodes: the launcher's, without any setting of its own that secrets.env
// holds (or that would open the cluster: DEV_INSECURE, or name another cluster's credentials), then secrets.env's.
func nodeEnv(environ []string, s config.Secrets) []string {
	drop := map[string]bool{"DEV_INSECURE": true, "CLUSTER_TOKEN": true, "CLIENT_USER": true, "CLIENT_PASSWORD": true}
	for _, kv := range s.Env() {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	var env []string
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env, s.Env()...)
}

// portUse is a TCP address the cluster listens on.
type portUse struct {
	addr string
	what string
}

func (c *cluster) ports(withNginx bool) []portUse {
	var ps []portUse
	for _, n := range c.Nodes {
		ps = append(ps, n.ports()...)
	}
	if withNginx {
		ps = append(ps, portUse{c.nginxListen(), "nginx"})
	}
	return ps
}

func (n nodeSpec) ports() []portUse {
	return []portUse{{n.HTTP, n.Name + " HTTP"}, {n.Admin, n.Name + " admin HTTP"}, {n.NATS, n.Name + " NATS client"}, {n.Route, n.Name + " NATS routes"}}
}

// linkPorts are the route links' addresses (held by `up`, not by the nodes).
func (c *cluster) linkPorts() []portUse {
	var ps []portUse
	for _, n := range c.Nodes {
		if n.Link != "" {
			ps = append(ps, portUse{n.Link, n.Name + " route link"})
		}
	}
	return ps
}

// checkPorts fails on the first address something already listens on.
func checkPorts(ps []portUse) error {
	for _, p := range ps {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			_, port, _ := net.SplitHostPort(p.addr)
			return fmt.Errorf("port %s (%s) is in use: %v; see `ss -ltnp 'sport = :%s'`, or choose other ports (-base-http, -base-admin, -base-nats, -base-route, -base-link, -nginx-port)", p.addr, p.what, err, port)
		}
		ln.Close()
	}
	return nil
}

// launch starts a process in its own process group with its output appended to logs/<name>.log (truncated
// first when fresh) and records its pid.
func launch(c *cluster, name, bin string, args, env []string, fresh bool) (*exec.Cmd, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if fresh {
		flags |= os.O_TRUNC
	}
	if err := os.MkdirAll(c.logDir(), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(c.logFile(name), flags, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "---- %s localcluster: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := writePid(c.pidFile(name), cmd.Process.Pid); err != nil {
		_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, err
	}
	return cmd, nil
}

// findNginx returns the nginx binary to use, or "" for none.
func findNginx(mode string) (string, error) {
	if mode == "off" {
		return "", nil
	}
	for _, name := range []string{"nginx", "/usr/sbin/nginx"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	if mode == "on" {
		return "", errors.New("-nginx on: nginx is not installed (apt-get install nginx-light), or use -nginx auto")
	}
	return "", nil
}

// nginxConfig is the load balancer's configuration: the project's template with every path in nginx/.
func (c *cluster) nginxConfig() deploy.Nginx {
	dir := c.nginxDir()
	n := deploy.Nginx{
		Generated:         "Generated by cmd/localcluster at every `up`: edit deploy/nginx/nginx.conf.tmpl instead.",
		Listen:            c.nginxListen(),
		WorkerProcesses:   "1",
		WorkerConnections: 1024,
		Pid:               filepath.Join(dir, "nginx.pid"),
		ErrorLog:          filepath.Join(dir, "error.log"),
		AccessLog:         filepath.Join(dir, "access.log"),
		TempDir:           filepath.Join(dir, "temp"),
	}
	for _, node := range c.Nodes {
		n.Upstreams = append(n.Upstreams, node.HTTP)
	}
	return n
}

// nginxArgs run nginx in the foreground with prefix dir, never reading or writing the system's configuration
// or logs (-e: the log of startup errors, before the configuration is read).
func nginxArgs(dir string) []string {
	return []string{"-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"}
}

func launchNginx(c *cluster, nginx string) (*exec.Cmd, error) {
	conf, err := c.nginxConfig().Render()
	if err != nil {
		return nil, err
	}
	dir := c.nginxDir()
	if err := os.MkdirAll(filepath.Join(dir, "temp"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), conf, 0o644); err != nil {
		return nil, err
	}
	cmd, err := launch(c, nginxName, nginx, nginxArgs(dir), os.Environ(), true)
	if err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	return cmd, nil
}

// probe is one GET of a health URL.
type probe struct {
	code   int
	detail string // why not ready, or the error
}

func (p probe) String() string {
	switch {
	case p.code == 0:
		return p.detail
	case p.detail != "":
		return fmt.Sprintf("%d (%s)", p.code, p.detail)
	default:
		return fmt.Sprint(p.code)
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// getReadyz GETs url and summarises the answer: the code and, for a node's /readyz, the first missing item.
func getReadyz(ctx context.Context, url string) probe {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return probe{detail: err.Error()}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return probe{detail: "timeout"}
		case errors.Is(err, syscall.ECONNREFUSED):
			return probe{detail: "refused"}
		}
		return probe{detail: err.Error()}
	}
	defer resp.Body.Close()
	var body struct {
		Missing []string `json:"missing"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	p := probe{code: resp.StatusCode}
	if len(body.Missing) > 0 {
		p.detail = body.Missing[0]
	}
	return p
}

// waitReady waits until every node answers /readyz with 200 (and nginx proxies it), printing progress. It
// fails when a process exits, ctx ends or the timeout passes.
func waitReady(ctx context.Context, c *cluster, withNginx bool, timeout time.Duration, exits <-chan exitEvent, out io.Writer) error {
	start := time.Now()
	deadline := start.Add(timeout)
	lastReport := start
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	fmt.Fprintf(out, "waiting for every node's /readyz (up to %v)\n", timeout)
	for {
		var waiting []string
		for i, p := range probeAll(ctx, c.Nodes) {
			if p.code != http.StatusOK {
				waiting = append(waiting, c.Nodes[i].Name+" "+p.String())
			}
		}
		if len(waiting) == 0 && withNginx {
			if p := getReadyz(ctx, c.nginxURL()+"/readyz"); p.code != http.StatusOK {
				waiting = append(waiting, "nginx "+p.String())
			}
		}
		if len(waiting) == 0 {
			fmt.Fprintf(out, "all ready after %v\n", time.Since(start).Round(100*time.Millisecond))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %s; see the logs in %s", timeout, strings.Join(waiting, "; "), relativePath(c.logDir()))
		}
		if time.Since(lastReport) >= 3*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(out, "  %2.0fs: %s\n", time.Since(start).Seconds(), strings.Join(waiting, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-exits:
			log := c.logFile(e.name)
			if e.name == nginxName {
				log = filepath.Join(c.nginxDir(), "error.log") // nginx -e: where its startup errors go
			}
			return fmt.Errorf("%s (pid %d) exited while starting: %s\n%s", e.name, e.pid, describeExit(e.err), tail(log, 15))
		case <-tick.C:
		}
	}
}

// probeAll GETs every node's /readyz at once.
func probeAll(ctx context.Context, nodes []nodeSpec) []probe {
	out := make([]probe, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { out[i] = getReadyz(ctx, n.URL()+"/readyz") })
	}
	wg.Wait()
	return out
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "last lines of " + relativePath(file) + ":\n  " + strings.Join(lines, "\n  ")
}

// printURLs tells where everything is.
func printURLs(out io.Writer, c *cluster, withNginx bool) {
	game := c.Nodes[0].URL() + "/"
	if withNginx {
		game = c.nginxURL() + "/"
	}

	fmt.Fprintln(out, "\nTickmesh local cluster is ready.")
	fmt.Fprintf(out, "  game:         %s\n", game)
	fmt.Fprintf(out, "  cluster view: %s/cluster.html   (admin listener: also /metrics, /api/cluster)\n", c.Nodes[0].AdminURL())
	if withNginx {
		fmt.Fprintf(out, "  (nginx on %s spreads /ws and the game over the nodes)\n", c.nginxListen())
	} else {
		fmt.Fprintln(out, "  (no load balancer: any node's URL serves the game)")
	}
	fmt.Fprintln(out, "  nodes:")
	for _, n := range c.Nodes {
		fmt.Fprintf(out, "    %s  %-24s admin %-24s %-24s log %s\n", n.Name, n.URL(), n.AdminURL(), n.NATSURL(), relativePath(c.logFile(n.Name)))
	}
	fmt.Fprintf(out, "  credentials:  %s\n", relativePath(c.secretsFile()))
	fmt.Fprintln(out, "  NATS CLI (install: task tools:nats):")
	fmt.Fprintf(out, "    nats --context %s sub 'game.>'        (read-only viewer; or task watch:ticks)\n", relativePath(c.contextFile("viewer")))
	fmt.Fprintf(out, "    nats --context %s kv ls               (admin: every right in the game's account)\n", relativePath(c.contextFile("admin")))
	fmt.Fprintf(out, "    nats --context %s server list           (system account)\n", relativePath(c.contextFile("sys")))
	fmt.Fprintln(out, "  chaos: task kill|stop|start|freeze|thaw -- n2;  task cut|heal -- n2;  task status;  task owner")
	fmt.Fprintln(out, "Press Ctrl-C (or run task down) to stop the cluster.")
}
