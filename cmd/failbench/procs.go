package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tickmesh/tickmesh/pkg/config"
)

// proc is one node process: how to start it and, while it runs, its process.
type proc struct {
	name      string
	httpAddr  string
	adminAddr string // metrics and /api/cluster
	natsURL   string
	args      []string
	logPath   string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has been waited for
	err     error         // its exit status
	stopped bool          // SIGSTOPped and not continued
}

// cluster is the three node processes.
type cluster struct {
	bin     string
	dir     string
	procs   []*proc
	http    *http.Client
	logf    func(format string, args ...any)
	secrets config.Secrets // drawn for the run: the nodes start with credentials, as in production
}

func newCluster(o options, dir string, logf func(string, ...any)) (*cluster, error) {
	secrets, err := config.NewSecrets(rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: o.bin, dir: dir, http: &http.Client{Timeout: time.Second}, logf: logf, secrets: secrets}
	const n = 3
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		httpAddr := fmt.Sprintf("127.0.0.1:%d", o.httpPort+i)
		adminAddr := fmt.Sprintf("127.0.0.1:%d", o.adminPort+i)
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("127.0.0.1:%d", o.routePort+j))
			}
		}
		args := []string{
			"-name", name,
			"-http", httpAddr,
			"-public-url", "http://" + httpAddr,
			"-admin-http", adminAddr,
			"-nats", fmt.Sprintf("127.0.0.1:%d", o.natsPort+i),
			"-cluster", fmt.Sprintf("127.0.0.1:%d", o.routePort+i),
			"-routes", strings.Join(routes, ","),
			"-cluster-name", "failbench",
			"-data", filepath.Join(dir, "data", name),
			"-log-level", o.logLevel,
		}
		if o.leaseTTL > 0 {
			args = append(args, "-lease-ttl", o.leaseTTL.String())
		}
		if o.tickRate > 0 {
			args = append(args, "-tick-rate", strconv.Itoa(o.tickRate))
		}
		c.procs = append(c.procs, &proc{
			name: name, httpAddr: httpAddr, adminAddr: adminAddr, natsURL: fmt.Sprintf("nats://127.0.0.1:%d", o.natsPort+i),
			args: args, logPath: filepath.Join(dir, name+".log"),
		})
	}
	return c, nil
}

// checkPorts fails when one of the cluster's ports is taken.
func checkPorts(o options) error {
	for i := range 3 {
		for _, p := range []int{o.httpPort + i, o.adminPort + i, o.natsPort + i, o.routePort + i} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				return fmt.Errorf("port %d is not free (choose others with -http-port, -admin-port, -nats-port, -route-port): %w", p, err)
			}
			l.Close()
		}
	}
	return nil
}

func (c *cluster) proc(name string) *proc {
	for _, p := range c.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (c *cluster) names() []string {
	out := make([]string, len(c.procs))
	for i, p := range c.procs {
		out[i] = p.name
	}
	return out
}

// others returns the node names except the given ones.
func (c *cluster) others(except ...string) []string {
	var out []string
	for _, p := range c.procs {
		skip := false
		for _, e := range except {
			skip = skip || p.name == e
		}
		if !skip {
			out = append(out, p.name)
		}
	}
	return out
}

// childEnv is the environment of a node: only what a process needs and the run's credentials, so that
// settings in failbench's own environment (NODE_NAME, DEV_INSECURE, …) cannot change the nodes.
func (c *cluster) childEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, c.secrets.Env()...)
}

// start starts p's process (again), appending to its log file.
func (c *cluster) start(p *proc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("%s is already running", p.name)
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== failbench: starting %s at %s: %s %s\n", p.name, time.Now().Format(time.RFC3339Nano), c.bin, strings.Join(p.args, " "))
	cmd := exec.Command(c.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = c.childEnv()
	// Own process group: a Ctrl-C in the terminal reaches failbench only, which then stops the nodes. The
	// parent-death signal kills them should failbench itself be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.err, p.stopped = cmd, exited, nil, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	c.logf("started %s (pid %d)", p.name, cmd.Process.Pid)
	return nil
}

// spawnRequests go to one goroutine locked to its OS thread for the life of the program: the parent-death
// signal fires when the thread that started a child exits, and Go may retire other threads.
var (
	spawnOnce     sync.Once
	spawnRequests chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnRequests = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread()
			for r := range spawnRequests {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// running reports whether p's process is alive (not yet waited for).
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// exitErr is the exit status of p's last process.
func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// signal sends sig to p's process.
func (c *cluster) signal(p *proc, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s was never started", p.name)
	}
	select {
	case <-p.exited:
		return fmt.Errorf("%s is not running", p.name)
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	c.logf("sent %v to %s (pid %d)", sig, p.name, p.cmd.Process.Pid)
	return nil
}

// waitExit waits up to d for p's process to exit.
func (p *proc) waitExit(ctx context.Context, d time.Duration) bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-exited:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// stop ends p's process: SIGCONT if it is stopped, SIGTERM, and SIGKILL after 10 s.
func (c *cluster) stop(p *proc) {
	if !p.running() {
		return
	}
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	_ = c.signal(p, syscall.SIGTERM)
	if stopped {
		_ = c.signal(p, syscall.SIGCONT)
	}
	if p.waitExit(context.Background(), 10*time.Second) {
		return
	}
	_ = c.signal(p, syscall.SIGKILL)
	p.waitExit(context.Background(), 5*time.Second)
}

// stopAll stops every node at once.
func (c *cluster) stopAll() {
	var wg sync.WaitGroup
	for _, p := range c.procs {
		wg.Go(func() { c.stop(p) })
	}
	wg.Wait()
}

// ready reports whether p answers /readyz with 200.
func (c *cluster) ready(ctx context.Context, p *proc) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.httpAddr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitReady waits until every node is ready. A node that exits meanwhile is an error, unless onExit (when
// set) handles it, typically by restarting it.
func (c *cluster) waitReady(ctx context.Context, timeout time.Duration, onExit func(*proc) error) error {
	deadline := time.Now().Add(timeout)
	for {
		notReady := ""
		for _, p := range c.procs {
			if !p.running() {
				err := fmt.Errorf("%s exited: %v (see %s)", p.name, p.exitErr(), p.logPath)
				if onExit == nil {
					return err
				}
				if err := onExit(p); err != nil {
					return err
				}
				notReady = p.name
				break
			}
			if !c.ready(ctx, p) {
				notReady = p.name
				break
			}
		}
		if notReady == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (see %s)", notReady, timeout, c.proc(notReady).logPath)
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// clusterView is the part of GET /api/cluster failbench reads.
type clusterView struct {
	Node  string `json:"node"`
	Rooms []struct {
		Room  string `json:"room"`
		Owner string `json:"owner"`
		Epoch uint64 `json:"epoch"`
	} `json:"rooms"`
}

// lobbyOwner asks p who owns the lobby.
func (c *cluster) lobbyOwner(ctx context.Context, p *proc) (owner string, epoch uint64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.adminAddr+"/api/cluster", nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("%s: /api/cluster: %s", p.name, resp.Status)
	}
	var v clusterView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", 0, fmt.Errorf("%s: /api/cluster: %w", p.name, err)
	}
	for _, r := range v.Rooms {
		if r.Room == "lobby" {
			return r.Owner, r.Epoch, nil
		}
	}
	return "", 0, nil
}

// Metrics failbench reads from the nodes (all labelled room="lobby").
const (
	fencedMetric = "tickmesh_room_ticks_fenced_total" // ticks a node's relay dropped
	ticksMetric  = "tickmesh_room_ticks_total"        // ticks a node published as owner
	ownedMetric  = "tickmesh_room_owned"              // 1 while the node owns the room
	pausesMetric = "tickmesh_room_pauses_total"       // owner loop found itself paused and re-confirmed its lease
	// renewErrorsMetric counts lease renewals with an unknown outcome.
	renewErrorsMetric = "tickmesh_room_lease_renew_errors_total"
)

// lobbyMetrics reads p's lobby metrics by name (absent metrics are missing from the map).
func (c *cluster) lobbyMetrics(ctx context.Context, p *proc) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.adminAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: /metrics: %s", p.name, resp.Status)
	}
	return parseLabelled(bufio.NewScanner(resp.Body), `room="lobby"`)
}

// fenced reads p's fenced-ticks counter for the lobby (0 while the counter does not exist yet).
func (c *cluster) fenced(ctx context.Context, p *proc) (float64, error) {
	m, err := c.lobbyMetrics(ctx, p)
	return m[fencedMetric], err
}

// parseLabelled returns, from Prometheus text format, the value of every sample whose labels contain label, by
// metric name (with extra labels, the name is followed by them, like name{cause="lost"}).
func parseLabelled(sc *bufio.Scanner, label string) (map[string]float64, error) {
	out := map[string]float64{}
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !strings.Contains(labels, label) {
			continue
		}
		if i := strings.IndexByte(value, ' '); i >= 0 { // a timestamp follows
			value = value[:i]
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		if extra := strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(labels, label, ""), ",,", ",")); strings.Trim(extra, ",") != "" {
			name += "{" + strings.Trim(extra, ",") + "}"
		}
		out[name] = v
	}
	return out, sc.Err()
}
