package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/pkg/config"
)

// exitEvent is a child process of `up` that ended.
type exitEvent struct {
	name string
	pid  int
	err  error // from Wait: nil, "exit status 1", "signal: killed"...
}

// up starts the cluster, waits until it is ready, prints where everything is and runs until ctx ends or nothing
// it manages is left; then it stops every process recorded in run/, including nodes restarted since by `start`.
// It records itself in up.pid, so that `down` can end it too, whatever was restarted in between.
func up(ctx context.Context, c *local, o options, out io.Writer) (err error) {
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
	if err := cluster.CheckFree(append(c.listens(nginx != ""), c.linkListens()...)); err != nil {
		return fmt.Errorf("%w, or choose other ports (-base-http, -base-admin, -base-nats, -base-route, -base-link, -nginx-port)", err)
	}
	for _, d := range []string{c.runDir(), c.logDir(), filepath.Join(c.Dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := c.writeSettings(); err != nil {
		return err
	}
	secrets, created, err := cluster.EnsureSecrets(c.Dir)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(out, "drew the cluster's credentials into %s (kept for this checkout; delete it and the data directory to start over)\n", relativePath(cluster.SecretsFile(c.Dir)))
	}
	if err := cluster.WriteContexts(c.Dir, c.Nodes, secrets); err != nil {
		return err
	}
	env := nodeEnv(os.Environ(), secrets)
	if err := cluster.WritePID(c.upFile().Path, os.Getpid()); err != nil {
		return err
	}
	defer func() { _ = c.upFile().Remove() }()

	st := &starter{exits: make(chan exitEvent, 2*nodeCount+3)}
	if c.Nodes[0].Link != "" {
		stopLinks, err := runLinks(ctx, c, out)
		if err != nil {
			return err
		}
		// Deferred before shutdown, so run after it: the nodes' route connections end with the nodes.
		defer stopLinks()
	}
	defer func() {
		if serr := shutdown(c, out); serr != nil && err == nil {
			err = serr
			return
		}
		st.wg.Wait()
	}()
	for _, n := range c.Nodes {
		pid, err := st.start(n.Name, c.nodeCommand(n, env, true))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "started %s (pid %d): http %s, nats %s, routes %s, log %s\n", n.Name, pid, n.HTTP, n.NATS, n.Route, relativePath(c.logFile(n.Name)))
	}
	if nginx != "" {
		cmd, err := c.nginxCommand(nginx)
		if err != nil {
			return err
		}
		pid, err := st.start(nginxName, cmd)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "started nginx (pid %d): load balancer on %s, config %s\n", pid, c.nginxListen(), relativePath(filepath.Join(c.nginxDir(), "nginx.conf")))
	} else if o.nginx == "auto" {
		fmt.Fprintln(out, "nginx is not installed: no load balancer; clients can use the nodes directly (apt-get install nginx-light for one)")
	}

	if err := waitReady(ctx, c, nginx != "", o.readyTimeout, st.exits, out); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "\ninterrupted while starting")
			return nil
		}
		return err
	}
	startPrometheus(c, prometheus, prometheusAddr, st, out)
	printURLs(out, c, nginx != "")

	// Nodes restarted by `start` are not children of up: no exit event tells when they are gone, so up also
	// looks every second.
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "\nstopping the cluster")
			return nil
		case e := <-st.exits:
			fmt.Fprintf(out, "%s (pid %d) exited: %s\n", e.name, e.pid, cluster.DescribeExit(e.err))
		case <-poll.C:
		}
		if !anyRunning(c) {
			fmt.Fprintln(out, "nothing is running any more (task down?): exiting")
			return nil
		}
	}
}

// starter starts the children of up: a goroutine of its own waits for each and reports its exit.
type starter struct {
	exits chan exitEvent // buffered for every child up starts: the waiters never block
	wg    sync.WaitGroup
}

// start starts cmd and returns its pid.
func (s *starter) start(name string, cmd cluster.Command) (int, error) {
	p, err := cmd.Start()
	if err != nil {
		return 0, err
	}
	s.wg.Go(func() {
		err := p.Wait()
		s.exits <- exitEvent{name: name, pid: p.Process.Pid, err: err}
	})
	return p.Process.Pid, nil
}

// nodeCommand starts node n detached from the terminal's signals, recording its pid in run/.
func (c *local) nodeCommand(n cluster.Node, env []string, fresh bool) cluster.Command {
	return cluster.Command{Name: "localcluster " + n.Name, Path: c.Bin, Args: n.Args(), Env: env, Log: c.logFile(n.Name),
		Fresh: fresh, PIDFile: c.pidFile(n.Name)}
}

// shutdown stops every process recorded in run/; a second SIGINT or SIGTERM skips to SIGKILL.
func shutdown(c *local, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	recs, err := c.records()
	if err != nil {
		return err
	}
	if err := cluster.StopPIDFiles(ctx, recs, cluster.StopGrace, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "cluster stopped")
	return nil
}

func refuseIfRunning(c *local) error {
	if pid, ok := c.upFile().Running(); ok {
		return fmt.Errorf("a `task up` for %s is already running (pid %d); stop it first (task down)", relativePath(c.Dir), pid)
	}
	recs, err := c.records()
	if err != nil {
		return err
	}
	var running []string
	for _, r := range recs {
		if pid, ok := r.Running(); ok {
			running = append(running, fmt.Sprintf("%s (pid %d)", r.Name, pid))
		} else {
			_ = r.Remove() // stale
		}
	}
	if len(running) > 0 {
		return fmt.Errorf("a cluster from %s is already running: %s; stop it first (task down)", relativePath(c.Dir), strings.Join(running, ", "))
	}
	return nil
}

func anyRunning(c *local) bool {
	recs, _ := c.records()
	for _, r := range recs {
		if _, ok := r.Running(); ok {
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
func (c *local) nginxConfig() deploy.Nginx {
	var upstreams []string
	for _, node := range c.Nodes {
		upstreams = append(upstreams, node.HTTP)
	}
	n := deploy.LocalNginx(c.nginxDir(), c.nginxListen(), upstreams...)
	n.Generated = "Generated by cmd/localcluster at every `up`: edit deploy/nginx/nginx.conf.tmpl instead."
	return n
}

// nginxArgs run nginx in the foreground with prefix dir, never reading or writing the system's configuration or
// logs (-e: the log of startup errors, before the configuration is read).
func nginxArgs(dir string) []string {
	return []string{"-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"}
}

// nginxCommand writes nginx's configuration and returns how to start it.
func (c *local) nginxCommand(nginx string) (cluster.Command, error) {
	conf, err := c.nginxConfig().Render()
	if err != nil {
		return cluster.Command{}, err
	}
	dir := c.nginxDir()
	if err := os.MkdirAll(filepath.Join(dir, "temp"), 0o755); err != nil {
		return cluster.Command{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), conf, 0o644); err != nil {
		return cluster.Command{}, err
	}
	return cluster.Command{Name: "localcluster nginx", Path: nginx, Args: nginxArgs(dir), Env: os.Environ(),
		Log: c.logFile(nginxName), Fresh: true, PIDFile: c.pidFile(nginxName)}, nil
}

// waitReady waits until every node answers /readyz with 200 (and nginx proxies it), printing progress. It fails
// when a process exits, ctx ends or the timeout passes.
func waitReady(ctx context.Context, c *local, withNginx bool, timeout time.Duration, exits <-chan exitEvent, out io.Writer) error {
	start := time.Now()
	deadline := start.Add(timeout)
	lastReport := start
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	fmt.Fprintf(out, "waiting for every node's /readyz (up to %v)\n", timeout)
	for {
		var waiting []string
		for i, h := range probeAll(ctx, c.Nodes) {
			if h.Code != http.StatusOK {
				waiting = append(waiting, c.Nodes[i].Name+" "+h.String())
			}
		}
		if len(waiting) == 0 && withNginx {
			if h := cluster.ProbeHealth(ctx, c.nginxURL()+"/readyz"); h.Code != http.StatusOK {
				waiting = append(waiting, "nginx "+h.String())
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
			return fmt.Errorf("%s (pid %d) exited while starting: %s\nlast lines of %s:\n  %s", e.name, e.pid, cluster.DescribeExit(e.err),
				relativePath(log), strings.Join(cluster.TailFile(log, 15), "\n  "))
		case <-tick.C:
		}
	}
}

// probeAll GETs every node's /readyz at once.
func probeAll(ctx context.Context, nodes []cluster.Node) []cluster.Health {
	out := make([]cluster.Health, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { out[i] = cluster.ProbeHealth(ctx, n.URL()+"/readyz") })
	}
	wg.Wait()
	return out
}

// printURLs tells where everything is.
func printURLs(out io.Writer, c *local, withNginx bool) {
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
	fmt.Fprintf(out, "  credentials:  %s\n", relativePath(cluster.SecretsFile(c.Dir)))
	fmt.Fprintln(out, "  NATS CLI (install: task tools:nats):")
	fmt.Fprintf(out, "    nats --context %s sub 'game.>'        (read-only viewer; or task watch:ticks)\n", relativePath(cluster.ContextFile(c.Dir, "viewer")))
	fmt.Fprintf(out, "    nats --context %s kv ls               (admin: every right in the game's account)\n", relativePath(cluster.ContextFile(c.Dir, "admin")))
	fmt.Fprintf(out, "    nats --context %s server list           (system account)\n", relativePath(cluster.ContextFile(c.Dir, "sys")))
	fmt.Fprintln(out, "  chaos: task kill|stop|start|freeze|thaw -- n2;  task cut|heal -- n2;  task status;  task owner")
	fmt.Fprintln(out, "Press Ctrl-C (or run task down) to stop the cluster.")
}
