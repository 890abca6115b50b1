package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/procfs"
	"github.com/tickmesh/tickmesh/pkg/node"
)

// down stops everything recorded in run/, then the `up` of this directory if it still runs: whatever was
// restarted in between, nothing of the cluster is left running or listening (up holds the route links).
func down(ctx context.Context, c *local, out io.Writer) error {
	recs, err := c.records()
	if err != nil {
		return err
	}
	upPID, upRunning := c.upFile().Running()
	if len(recs) == 0 && !upRunning {
		fmt.Fprintf(out, "nothing recorded in %s: no cluster running\n", relativePath(c.runDir()))
		return nil
	}
	if err := cluster.StopPIDFiles(ctx, recs, cluster.StopGrace, out); err != nil {
		return err
	}
	if upRunning {
		// With nothing left to stop, up only closes its links and removes its files.
		if err := cluster.StopPIDFiles(ctx, []cluster.PIDFile{c.upFile()}, cluster.StopGrace, out); err != nil {
			return err
		}
		fmt.Fprintf(out, "up (pid %d) ended\n", upPID)
	}
	fmt.Fprintln(out, "everything stopped")
	return nil
}

// signalNode is kill (SIGKILL), stop (SIGTERM, then SIGKILL after 10 s), freeze (SIGSTOP) or thaw (SIGCONT).
func signalNode(ctx context.Context, c *local, action, name string, out io.Writer) error {
	if _, err := c.node(name); err != nil {
		return err
	}
	r := c.proc(name)
	pid, ok := r.Running()
	if !ok {
		_ = r.Remove()
		return fmt.Errorf("%s is not running (start it: task start -- %s)", name, name)
	}
	switch action {
	case "kill":
		if err := cluster.SignalGroup(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %s: %w", name, err)
		}
		if !cluster.WaitPIDGone(ctx, pid, r.Marker, 5*time.Second) {
			return fmt.Errorf("%s (pid %d) still alive after SIGKILL", name, pid)
		}
		_ = r.Remove()
		fmt.Fprintf(out, "%s (pid %d) killed\n", name, pid)
	case "stop":
		if err := cluster.StopPIDFiles(ctx, []cluster.PIDFile{r}, cluster.StopGrace, out); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s stopped\n", name)
	case "freeze":
		if err := cluster.SignalGroup(pid, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("freeze %s: %w", name, err)
		}
		fmt.Fprintf(out, "%s (pid %d) frozen (SIGSTOP); thaw it with: task thaw -- %s\n", name, pid, name)
	case "thaw":
		if err := cluster.SignalGroup(pid, syscall.SIGCONT); err != nil {
			return fmt.Errorf("thaw %s: %w", name, err)
		}
		fmt.Fprintf(out, "%s (pid %d) thawed (SIGCONT)\n", name, pid)
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	return nil
}

// startNode starts a node of the cluster again, detached in its own process group, with the settings `up` used.
// A running `up` stops it on exit with the rest (it stops whatever run/ records), and so does `down`.
func startNode(c *local, name string, out io.Writer) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if pid, ok := c.proc(name).Running(); ok {
		return fmt.Errorf("%s is already running (pid %d)", name, pid)
	}
	if st, err := os.Stat(c.Bin); err != nil || st.IsDir() {
		return fmt.Errorf("node binary %s not found: build it first (task build)", relativePath(c.Bin))
	}
	if err := cluster.CheckFree(n.Listens()); err != nil {
		return err
	}
	secrets, _, err := cluster.EnsureSecrets(c.Dir)
	if err != nil {
		return err
	}
	cmd, err := c.nodeCommand(n, nodeEnv(os.Environ(), secrets), false).Start()
	if err != nil {
		return err
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release() // detached: whoever runs `up` or `down` stops it
	fmt.Fprintf(out, "%s started (pid %d), log %s; readiness: task status\n", name, pid, relativePath(c.logFile(name)))
	return nil
}

// row is one line of `status`.
type row struct {
	name, pid, state, readyz, url string
}

// status prints each process: recorded pid, whether it runs (or is frozen), and its /readyz.
func status(c *local, out io.Writer) error {
	var rows []row
	for _, n := range c.Nodes {
		rows = append(rows, row{name: n.Name, url: n.URL()})
	}
	if _, err := os.Stat(c.pidFile(nginxName)); err == nil {
		rows = append(rows, row{name: nginxName, url: c.nginxURL()})
	}
	var wg sync.WaitGroup
	for i := range rows {
		wg.Go(func() {
			r := &rows[i]
			pid, err := cluster.ReadPID(c.pidFile(r.name))
			switch {
			case errors.Is(err, os.ErrNotExist):
				r.pid, r.state = "-", "stopped"
			case err != nil:
				r.pid, r.state = "?", err.Error()
			default:
				r.pid = fmt.Sprint(pid)
				r.state = processState(pid, c.marker(r.name))
			}
			r.readyz = cluster.ProbeHealth(context.Background(), r.url+"/readyz").String()
		})
	}
	wg.Wait()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPID\tPROCESS\tREADYZ\tURL")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, r.pid, r.state, r.readyz, r.url)
	}
	return tw.Flush()
}

// processState describes a recorded process: running, frozen, or dead (stale pid file).
func processState(pid int, marker string) string {
	if !cluster.Alive(pid, marker) {
		return "dead (stale pid file)"
	}
	if procfs.State(pid) == 'T' {
		return "frozen"
	}
	return "running"
}

// owner prints the cluster view of the first node that answers: nodes, then rooms with owner and epoch.
func owner(c *local, out io.Writer) error {
	var errs []error
	for _, n := range c.Nodes {
		v, err := cluster.View(context.Background(), n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		printClusterView(out, v)
		return nil
	}
	return fmt.Errorf("no node answered GET /api/cluster: %w", errors.Join(errs...))
}

func printClusterView(out io.Writer, v node.ClusterView) {
	fmt.Fprintf(out, "cluster as %s sees it\n", v.Node)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREADY\tSOCKETS\tURL")
	for _, n := range v.Nodes {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%s\n", n.Name, n.Ready, n.Sockets, n.URL)
	}
	tw.Flush()
	fmt.Fprintln(out)
	if len(v.Rooms) == 0 {
		fmt.Fprintln(out, "no rooms")
		return
	}
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOM\tOWNER\tEPOCH")
	for _, r := range v.Rooms {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", r.Room, r.Owner, r.Epoch)
	}
	tw.Flush()
}
