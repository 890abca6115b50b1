package chaos

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tickmesh/tickmesh/pkg/config"
)

// Ports every node listens on, at its own address.
const (
	HTTPPort  = 8080
	AdminPort = 9090
	NATSPort  = 4222
	RoutePort = 6222
)

// BuildNode builds cmd/node into out (go build -o out ./cmd/node, from the module root). race adds -race.
func BuildNode(ctx context.Context, out string, race bool) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/node")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// ModuleRoot is the directory of the go.mod above the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Node is one node process slot: it may be started, killed and started again (same flags, same data).
type Node struct {
	Index   int
	Host    Host
	Args    []string
	DataDir string
	LogPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	starts  int
	frozen  bool
	exitErr error
}

// Cluster runs the node processes of a run.
type Cluster struct {
	Bin     string
	Net     *Net
	Dir     string
	Nodes   []*Node
	Secrets config.Secrets // drawn for the run: the nodes start with credentials, as in production

	logf func(string, ...any)
	http *http.Client
	wg   sync.WaitGroup // one waiter goroutine per started process
}

// NewCluster prepares one node per host of nt (nothing is started). extra flags are appended to every node's.
func NewCluster(bin string, nt *Net, dir string, leaseTTL time.Duration, extra []string, logf func(string, ...any)) (*Cluster, error) {
	secrets, err := config.NewSecrets(rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Bin: bin, Net: nt, Dir: dir, Secrets: secrets, logf: logf, http: &http.Client{
		Timeout: 1500 * time.Millisecond,
		Transport: &http.Transport{
			DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
			DisableKeepAlives: true,
		},
	}}
	for i, h := range nt.Hosts {
		var routes []string
		for j, o := range nt.Hosts {
			if j != i {
				routes = append(routes, fmt.Sprintf("%s:%d", o.Addr, RoutePort))
			}
		}
		nd := &Node{Index: i, Host: h, DataDir: filepath.Join(dir, h.Name, "data"), LogPath: filepath.Join(dir, h.Name+".log")}
		if err := os.MkdirAll(nd.DataDir, 0o755); err != nil {
			return nil, err
		}
		nd.Args = append([]string{
			"-name", h.Name,
			"-http", fmt.Sprintf("%s:%d", h.Addr, HTTPPort),
			"-admin-http", fmt.Sprintf("%s:%d", h.Addr, AdminPort),
			"-nats", fmt.Sprintf("%s:%d", h.Addr, NATSPort),
			"-cluster", fmt.Sprintf("%s:%d", h.Addr, RoutePort),
			"-routes", strings.Join(routes, ","),
			"-public-url", fmt.Sprintf("http://%s:%d", h.Addr, HTTPPort),
			"-data", nd.DataDir,
			"-lease-ttl", leaseTTL.String(),
		}, extra...)
		c.Nodes = append(c.Nodes, nd)
	}
	return c, nil
}

// Start starts node i (which must not be running) inside its namespace, in its own process group, appending
// its output to its log file.
func (c *Cluster) Start(i int) error {
	nd := c.Nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		select {
		case <-nd.done:
		default:
			return fmt.Errorf("%s is running", nd.Host.Name)
		}
	}
	f, err := os.OpenFile(nd.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	nd.starts++
	fmt.Fprintf(f, "=== chaos: start #%d at %s: ip netns exec %s %s %s\n", nd.starts, time.Now().Format(time.RFC3339Nano), nd.Host.NS, c.Bin, strings.Join(nd.Args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", nd.Host.NS, c.Bin}, nd.Args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), c.Secrets.Env()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	nd.cmd, nd.done, nd.frozen, nd.exitErr = cmd, done, false, nil
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := cmd.Wait()
		fmt.Fprintf(f, "=== chaos: exit at %s: %v\n", time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		nd.mu.Lock()
		nd.exitErr = err
		nd.mu.Unlock()
		close(done)
	}()
	return nil
}

// Alive reports whether node i's process is running (frozen counts as running).
func (c *Cluster) Alive(i int) bool {
	nd := c.Nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

// Frozen reports whether node i is SIGSTOPped.
func (c *Cluster) Frozen(i int) bool {
	nd := c.Nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.frozen
}

// signal sends sig to node i's process group.
func (c *Cluster) signal(i int, sig syscall.Signal) error {
	nd := c.Nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil || nd.cmd.Process == nil {
		return fmt.Errorf("%s was never started", nd.Host.Name)
	}
	select {
	case <-nd.done:
		return fmt.Errorf("%s is not running", nd.Host.Name)
	default:
	}
	if err := syscall.Kill(-nd.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %v to %s: %w", sig, nd.Host.Name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		nd.frozen = true
	case syscall.SIGCONT, syscall.SIGKILL:
		nd.frozen = false
	}
	return nil
}

// Kill sends SIGKILL to node i and waits for it to exit.
func (c *Cluster) Kill(i int) error {
	if err := c.signal(i, syscall.SIGKILL); err != nil {
		return err
	}
	nd := c.Nodes[i]
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s did not exit 10 s after SIGKILL", nd.Host.Name)
	}
}

// Freeze sends SIGSTOP to node i.
func (c *Cluster) Freeze(i int) error { return c.signal(i, syscall.SIGSTOP) }

// Thaw sends SIGCONT to node i.
func (c *Cluster) Thaw(i int) error { return c.signal(i, syscall.SIGCONT) }

// Close kills every node and waits for their waiters.
func (c *Cluster) Close() {
	for i := range c.Nodes {
		if c.Alive(i) {
			if err := c.Kill(i); err != nil {
				c.logf("close: %v", err)
			}
		}
	}
	c.wg.Wait()
}

// URL of node i's HTTP server.
func (c *Cluster) URL(i int) string {
	return fmt.Sprintf("http://%s:%d", c.Nodes[i].Host.Addr, HTTPPort)
}

// AdminURL of node i's admin listener (metrics, /api/cluster).
func (c *Cluster) AdminURL(i int) string {
	return fmt.Sprintf("http://%s:%d", c.Nodes[i].Host.Addr, AdminPort)
}

// WSURL of node i.
func (c *Cluster) WSURL(i int) string {
	return fmt.Sprintf("ws://%s:%d/ws", c.Nodes[i].Host.Addr, HTTPPort)
}

// NATSURL of node i's client port.
func (c *Cluster) NATSURL(i int) string {
	return fmt.Sprintf("nats://%s:%d", c.Nodes[i].Host.Addr, NATSPort)
}

// Index of the node named name, -1 if none.
func (c *Cluster) Index(name string) int {
	for i, nd := range c.Nodes {
		if nd.Host.Name == name {
			return i
		}
	}
	return -1
}

// Readiness is the part of GET /readyz the harness uses.
type Readiness struct {
	Ready   bool              `json:"ready"`
	Missing []string          `json:"missing"`
	Streams map[string]string `json:"streams"`
}

// ClusterView is the part of GET /api/cluster the harness uses.
type ClusterView struct {
	Node  string `json:"node"`
	Rooms []struct {
		Room  string `json:"room"`
		Owner string `json:"owner"`
		Epoch uint64 `json:"epoch"`
	} `json:"rooms"`
}

// Lobby returns the lobby's owner and epoch in the view ("" when none).
func (v ClusterView) Lobby() (string, uint64) {
	for _, r := range v.Rooms {
		if r.Room == "lobby" {
			return r.Owner, r.Epoch
		}
	}
	return "", 0
}

func (c *Cluster) getJSON(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// Readyz fetches node i's /readyz; ok is a 200.
func (c *Cluster) Readyz(ctx context.Context, i int) (r Readiness, ok bool, err error) {
	code, err := c.getJSON(ctx, c.URL(i)+"/readyz", &r)
	return r, err == nil && code == http.StatusOK, err
}

// View fetches node i's /api/cluster.
func (c *Cluster) View(ctx context.Context, i int) (ClusterView, error) {
	var v ClusterView
	code, err := c.getJSON(ctx, c.AdminURL(i)+"/api/cluster", &v)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("/api/cluster: HTTP %d", code)
	}
	return v, err
}

// FencedTotal scrapes node i's /metrics for tickmesh_room_ticks_fenced_total of the lobby (0 when absent).
func (c *Cluster) FencedTotal(ctx context.Context, i int) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.AdminURL(i)+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return parseFenced(bufio.NewScanner(resp.Body))
}

func parseFenced(sc *bufio.Scanner) (float64, error) {
	const name = `tickmesh_room_ticks_fenced_total{room="lobby"}`
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, sc.Err()
}

// Tail returns the last n lines of node i's log.
func (c *Cluster) Tail(i, n int) []string {
	b, err := os.ReadFile(c.Nodes[i].LogPath)
	if err != nil {
		return []string{err.Error()}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
