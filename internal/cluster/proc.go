package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config of a Cluster.
type Config struct {
	Bin   string // the node binary
	Nodes []Node
	// Env is the start of every node's environment (CleanEnv, or the caller's own); Secrets.Env follows it.
	Env []string
	// Secrets are the cluster's credentials: the nodes get them in their environment, the harness's NATS
	// clients log in with them. Zero: New draws fresh ones.
	Secrets Secrets
	// Wrap is the command prefix of node i (nil: none), for example `ip netns exec <ns>`.
	Wrap func(i int) []string
	// LogDir holds <name>.log, every node's output over all its starts.
	LogDir string
	// ParentDeath kills the nodes should this process die without stopping them.
	ParentDeath bool
	// OnExit is called from the waiter goroutine when a node's process has exited.
	OnExit func(i int, err error)
	// Logf receives a line for every start and signal (nil: none).
	Logf func(format string, args ...any)
}

// Cluster is the node processes this process starts and waits for. A node index names a slot that may be
// started, killed and started again with the same flags and data directory. Its methods are safe for concurrent
// use.
type Cluster struct {
	cfg   Config
	env   []string
	procs []*proc
	wg    sync.WaitGroup // one waiter per started process
}

// proc is the current process of one slot.
type proc struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has been waited for
	err    error         // its exit status
	frozen bool          // SIGSTOPped and not continued
	starts int
}

// New prepares a cluster (nothing runs yet), drawing its credentials unless cfg has them.
func New(cfg Config) (*Cluster, error) {
	if cfg.Secrets.SessionSecret == "" {
		s, err := NewSecrets()
		if err != nil {
			return nil, err
		}
		cfg.Secrets = s
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	c := &Cluster{cfg: cfg, env: append(append([]string(nil), cfg.Env...), cfg.Secrets.Env()...)}
	for range cfg.Nodes {
		c.procs = append(c.procs, &proc{})
	}
	return c, nil
}

// Len is the number of nodes.
func (c *Cluster) Len() int { return len(c.cfg.Nodes) }

// Node is node i's layout.
func (c *Cluster) Node(i int) Node { return c.cfg.Nodes[i] }

// Secrets are the cluster's credentials.
func (c *Cluster) Secrets() Secrets { return c.cfg.Secrets }

// Bin is the node binary.
func (c *Cluster) Bin() string { return c.cfg.Bin }

// Index is the index of the node called name, -1 if none.
func (c *Cluster) Index(name string) int {
	for i, n := range c.cfg.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// Names are the nodes' names in order.
func (c *Cluster) Names() []string {
	out := make([]string, len(c.cfg.Nodes))
	for i, n := range c.cfg.Nodes {
		out[i] = n.Name
	}
	return out
}

// LogPath is node i's log file.
func (c *Cluster) LogPath(i int) string {
	return filepath.Join(c.cfg.LogDir, c.cfg.Nodes[i].Name+".log")
}

// Start starts node i, which must not be running, appending its output to its log.
func (c *Cluster) Start(i int) error {
	p, n := c.procs[i], c.cfg.Nodes[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !closed(p.done) {
		return fmt.Errorf("%s is already running", n.Name)
	}
	var wrap []string
	if c.cfg.Wrap != nil {
		wrap = c.cfg.Wrap(i)
	}
	p.starts++
	cmd, err := Command{Name: fmt.Sprintf("%s start #%d", n.Name, p.starts), Path: c.cfg.Bin, Args: n.Args(), Env: c.env,
		Wrap: wrap, Log: c.LogPath(i), ParentDeath: c.cfg.ParentDeath}.Start()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err, p.frozen = cmd, done, nil, false
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := cmd.Wait()
		if f, ferr := os.OpenFile(c.LogPath(i), os.O_WRONLY|os.O_APPEND, 0); ferr == nil {
			fmt.Fprintf(f, "==== %s %s exited: %v\n", time.Now().Format(time.RFC3339Nano), n.Name, DescribeExit(err))
			f.Close()
		}
		p.mu.Lock()
		p.err, p.frozen = err, false
		p.mu.Unlock()
		close(done)
		if c.cfg.OnExit != nil {
			c.cfg.OnExit(i, err)
		}
	}()
	c.cfg.Logf("started %s (pid %d)", n.Name, cmd.Process.Pid)
	return nil
}

// DescribeExit names how a process ended, from its Wait error.
func DescribeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Running reports whether node i's process is alive (a frozen one is).
func (c *Cluster) Running(i int) bool {
	p := c.procs[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !closed(p.done)
}

// Frozen reports whether node i is SIGSTOPped.
func (c *Cluster) Frozen(i int) bool {
	p := c.procs[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozen
}

// ExitErr is how node i's last process ended (nil while it runs).
func (c *Cluster) ExitErr(i int) error {
	p := c.procs[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// PID is node i's current process id (0 before its first start).
func (c *Cluster) PID(i int) int {
	p := c.procs[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Signal sends sig to node i's process group.
func (c *Cluster) Signal(i int, sig syscall.Signal) error {
	p, name := c.procs[i], c.cfg.Nodes[i].Name
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s was never started", name)
	}
	if closed(p.done) {
		return fmt.Errorf("%s is not running", name)
	}
	if err := SignalGroup(p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %v to %s: %w", sig, name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.frozen = true
	case syscall.SIGCONT, syscall.SIGKILL:
		p.frozen = false
	}
	c.cfg.Logf("sent %v to %s (pid %d)", sig, name, p.cmd.Process.Pid)
	return nil
}

// Kill sends SIGKILL to node i and waits for it to exit.
func (c *Cluster) Kill(i int) error {
	if err := c.Signal(i, syscall.SIGKILL); err != nil {
		return err
	}
	if !c.WaitExit(context.Background(), i, 10*time.Second) {
		return fmt.Errorf("%s did not exit 10 s after SIGKILL", c.cfg.Nodes[i].Name)
	}
	return nil
}

// Freeze sends SIGSTOP to node i: it keeps its sockets and does nothing.
func (c *Cluster) Freeze(i int) error { return c.Signal(i, syscall.SIGSTOP) }

// Thaw sends SIGCONT to node i.
func (c *Cluster) Thaw(i int) error { return c.Signal(i, syscall.SIGCONT) }

// WaitExit waits up to d for node i's current process to exit, and reports whether it has.
func (c *Cluster) WaitExit(ctx context.Context, i int, d time.Duration) bool {
	p := c.procs[i]
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Stop stops node i gracefully (SIGTERM, SIGKILL after StopGrace) and waits for it.
func (c *Cluster) Stop(i int) { c.stop([]int{i}) }

// StopAll stops every running node at once, gracefully.
func (c *Cluster) StopAll() {
	var all []int
	for i := range c.procs {
		all = append(all, i)
	}
	c.stop(all)
}

func (c *Cluster) stop(idx []int) {
	var ts []target
	for _, i := range idx {
		p := c.procs[i]
		p.mu.Lock()
		if p.cmd != nil && !closed(p.done) {
			done := p.done
			ts = append(ts, target{name: c.cfg.Nodes[i].Name, pid: p.cmd.Process.Pid, gone: func() bool { return closed(done) }})
		}
		p.mu.Unlock()
	}
	stopTargets(context.Background(), ts, StopGrace, logWriter(c.cfg.Logf))
}

// Close kills every node still running and waits until every process has been waited for.
func (c *Cluster) Close() {
	for i := range c.procs {
		if c.Running(i) {
			if err := c.Kill(i); err != nil {
				c.cfg.Logf("close: %v", err)
			}
		}
	}
	c.wg.Wait()
}

// Tail returns the last n lines of node i's log.
func (c *Cluster) Tail(i, n int) []string { return TailFile(c.LogPath(i), n) }

// TailFile returns the last n lines of a file (or why there are none).
func TailFile(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return lines[max(0, len(lines)-n):]
}

// WaitReady waits until every node answers /readyz with 200. A node that exits meanwhile is an error, unless
// onExit (when set) handles it, typically by starting it again.
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration, onExit func(i int) error) error {
	deadline := time.Now().Add(timeout)
	for {
		notReady := -1
		for i := range c.procs {
			if !c.Running(i) {
				if onExit == nil {
					return fmt.Errorf("%s exited: %v (see %s)", c.cfg.Nodes[i].Name, c.ExitErr(i), c.LogPath(i))
				}
				if err := onExit(i); err != nil {
					return err
				}
			}
			if _, code, _ := Readyz(ctx, c.cfg.Nodes[i]); code != 200 {
				notReady = i
				break
			}
		}
		if notReady < 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (see %s)", c.cfg.Nodes[notReady].Name, timeout, c.LogPath(notReady))
		}
		if !Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// Sleep waits d or until ctx ends, and reports whether d passed (a timer nobody waits for any more is
// collected: no Stop needed).
func Sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	return ctx.Err() == nil
}

// logWriter turns each Write into a line for logf.
type logWriter func(format string, args ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = logWriter(nil)
