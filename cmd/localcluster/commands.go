package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// down stops everything recorded in run/, whether or not `up` still runs (if it does, it exits too).
func down(ctx context.Context, c *cluster, out io.Writer) error {
	recs, err := c.records()
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		fmt.Fprintf(out, "nothing recorded in %s: no cluster running\n", relativePath(c.runDir()))
		return nil
	}
	if err := stopAll(ctx, recs, stopTimeout, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "everything stopped")
	return nil
}

// signalNode is kill (SIGKILL), stop (SIGTERM, then SIGKILL after 10 s), freeze (SIGSTOP) or thaw (SIGCONT).
func signalNode(ctx context.Context, c *cluster, action, name string, out io.Writer) error {
	if _, err := c.node(name); err != nil {
		return err
	}
	r := c.proc(name)
	pid, ok := r.running()
	if !ok {
		removeQuietly(r.File)
		return fmt.Errorf("%s is not running (start it: task start -- %s)", name, name)
	}
	switch action {
	case "kill":
		if err := signalGroup(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %s: %w", name, err)
		}
		if left := waitGone(ctx, map[int]procRecord{pid: r}, 5*time.Second); len(left) > 0 {
			return fmt.Errorf("%s (pid %d) still alive after SIGKILL", name, pid)
		}
		removeQuietly(r.File)
		fmt.Fprintf(out, "%s (pid %d) killed\n", name, pid)
	case "stop":
		if err := stopAll(ctx, []procRecord{r}, stopTimeout, out); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s stopped\n", name)
	case "freeze":
		if err := signalGroup(pid, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("freeze %s: %w", name, err)
		}
		fmt.Fprintf(out, "%s (pid %d) frozen (SIGSTOP); thaw it with: task thaw -- %s\n", name, pid, name)
	case "thaw":
		if err := signalGroup(pid, syscall.SIGCONT); err != nil {
			return fmt.Errorf("thaw %s: %w", name, err)
		}
		fmt.Fprintf(out, "%s (pid %d) thawed (SIGCONT)\n", name, pid)
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	return nil
}

// startNode starts a node of the cluster again, detached in its own process group, with the settings `up`
// used. A running `up` stops it on exit with the rest (it stops whatever run/ records).
func startNode(c *cluster, name string, out io.Writer) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	r := c.proc(name)
	if pid, ok := r.running(); ok {
		return fmt.Errorf("%s is already running (pid %d)", name, pid)
	}
	if st, err := os.Stat(c.Bin); err != nil || st.IsDir() {
		return fmt.Errorf("node binary %s not found: build it first (task build)", relativePath(c.Bin))
	}
	if err := checkPorts(n.ports()); err != nil {
		return err
	}
	secrets, _, err := c.ensureSecrets()
	if err != nil {
		return err
	}
	env := nodeEnv(os.Environ(), secrets)
	cmd, err := launch(c, name, c.Bin, n.Args(), env, false)
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
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
func status(c *cluster, out io.Writer) error {
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
			pid, err := readPid(c.pidFile(r.name))
			switch {
			case errors.Is(err, os.ErrNotExist):
				r.pid, r.state = "-", "stopped"
			case err != nil:
				r.pid, r.state = "?", err.Error()
			default:
				r.pid = fmt.Sprint(pid)
				r.state = processState(pid, c.marker(r.name))
			}
			r.readyz = getReadyz(context.Background(), r.url+"/readyz").String()
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
	if !alive(pid, marker) {
		return "dead (stale pid file)"
	}
	if procState(pid) == 'T' {
		return "frozen"
	}
	return "running"
}

// clusterView is the JSON of GET /api/cluster.
type clusterView struct {
	Node  string `json:"node"`
	Nodes []struct {
		Name    string `json:"name"`
		URL     string `json:"url"`
		Ready   bool   `json:"ready"`
		Sockets int    `json:"sockets"`
	} `json:"nodes"`
	Rooms []struct {
		Room  string `json:"room"`
		Owner string `json:"owner"`
		Epoch uint64 `json:"epoch"`
	} `json:"rooms"`
}

// owner prints the cluster view of the first node that answers: nodes, then rooms with owner and epoch.
func owner(c *cluster, out io.Writer) error {
	var errs []error
	for _, n := range c.Nodes {
		v, err := fetchClusterView(n.AdminURL() + "/api/cluster")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		printClusterView(out, v)
		return nil
	}
	return fmt.Errorf("no node answered GET /api/cluster: %w", errors.Join(errs...))
}

func fetchClusterView(url string) (clusterView, error) {
	var v clusterView
	resp, err := httpClient.Get(url)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("%s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&v); err != nil {
		return v, fmt.Errorf("decode: %w", err)
	}
	return v, nil
}

func printClusterView(out io.Writer, v clusterView) {
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
