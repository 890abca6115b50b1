package failbench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/procfs"
	"github.com/tickmesh/tickmesh/pkg/room"
)

// Run is the whole benchmark: start the cluster, run the faults, report, stop everything. It writes its progress
// and, at the end, the results as text to stdout. The report is returned also when the run fails or ctx ends
// once the cluster has formed (then with partial results), nil before.
func Run(ctx context.Context, o Config, stdout io.Writer) (rep *Report, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := checkPorts(o); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "failbench-")
	if err != nil {
		return nil, err
	}
	events, err := os.Create(filepath.Join(dir, "events.log"))
	if err != nil {
		return nil, err
	}
	var evMu sync.Mutex
	logf := func(format string, a ...any) {
		evMu.Lock()
		defer evMu.Unlock()
		fmt.Fprintf(events, "%s %s\n", time.Now().Format("2006-01-02T15:04:05.000000"), fmt.Sprintf(format, a...))
	}
	defer func() {
		events.Close()
		if o.Keep || err != nil {
			fmt.Fprintf(stdout, "node logs, data and events.log kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()

	binInfo := describeBinary(o.Bin)
	// Run a private copy of the binary: a rebuild or removal of -bin during the run must not change the nodes.
	if o.Bin, err = copyBinary(o.Bin, filepath.Join(dir, "tickmesh-node")); err != nil {
		return nil, err
	}
	c, err := newCluster(o, dir, logf)
	if err != nil {
		return nil, err
	}
	var links *cluster.Links
	defer func() {
		c.StopAll()
		c.Close()
		if links != nil {
			links.Close()
		}
	}()
	if o.Ports.Link > 0 {
		nodes := make([]cluster.Node, c.Len())
		for i := range nodes {
			nodes[i] = c.Node(i)
		}
		if links, err = cluster.StartLinks(nodes); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stdout, "starting n1..n3 from %s in %s\n", o.Bin, dir)
	for i := range c.Len() {
		if err := c.Start(i); err != nil {
			return nil, err
		}
	}
	// A node that exits while the fresh cluster forms is restarted (twice at most) and reported: that is a node
	// bug, but the benchmark can still measure failover.
	var startupNotes []string
	restarts := 0
	if err := c.WaitReady(ctx, readyTimeout, func(i int) error {
		name, log := c.Node(i).Name, c.LogPath(i)
		note := fmt.Sprintf("%s exited while the fresh cluster formed (%v; last log line: %s); restarted it", name, c.ExitErr(i), lastLine(log))
		logf("UNPLANNED: %s", note)
		fmt.Fprintln(stdout, "note:", note)
		startupNotes = append(startupNotes, note)
		if restarts++; restarts > 2 {
			return fmt.Errorf("%s exited during startup: %v (see %s)", name, c.ExitErr(i), log)
		}
		return c.Start(i)
	}); err != nil {
		return nil, err
	}

	rec := newRecorder(c.Names(), func(node string, s staleRec, accepted bool) {
		kind := "stale tick refused by the fence"
		if accepted {
			kind = "STALE TICK ACCEPTED"
		}
		logf("%s at %s observer: epoch %d seq %d, epoch %d already seen", kind, node, s.Epoch, s.Seq, s.Above)
	})
	b := &bench{o: o, c: c, links: links, rec: rec, obs: map[string]*observer{}, out: stdout, logf: logf,
		rng: rand.New(rand.NewPCG(o.Seed, 0xfa11))}
	defer func() {
		for _, ob := range b.obs {
			ob.Close()
		}
	}()
	for i := range c.Len() {
		ob, err := observe(c.Node(i), c.Secrets(), o.Room, rec, &b.track, logf)
		if err != nil {
			return nil, err
		}
		b.obs[c.Node(i).Name] = ob
	}

	game := lobbyGame
	if o.Room != room.Lobby {
		urls := make([]string, c.Len())
		for i := range urls {
			urls[i] = c.Node(i).WSURL()
		}
		k, err := startKeeper(ctx, urls, o.Room, logf)
		if err != nil {
			return nil, err
		}
		defer k.stop()
		game = k.roomGame()
		fmt.Fprintf(stdout, "room %s (game %s) held open by a WebSocket player\n", o.Room, game)
	}
	if b.input, err = inputFor(game); err != nil && slices.Contains(o.Faults, faultKillInputsLeader) {
		return nil, err
	}

	rep = &Report{Command: o.CommandLine, Started: time.Now(), Machine: describeMachine(),
		LeaseTTL: o.effectiveLeaseTTL(), TickRate: o.effectiveTickRate(), Notes: startupNotes, Binary: binInfo}
	defer func() {
		rep.Duration = time.Since(rep.Started)
		rep.Notes = append(rep.Notes, b.notes...)
		b.load.add(procfs.LoadAvg())
		rep.Load = b.load
		rep.Reordered = rec.reorderedTotal()
		if rep.Reordered > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%d ticks arrived at or below the last seq of their epoch (duplicates or reordering)", rep.Reordered))
		}
		if ctx.Err() != nil {
			rep.Notes = append(rep.Notes, "interrupted: partial results")
		}
		rep.writeText(stdout)
	}()

	if slices.Contains(o.Faults, faultKillInputsLeader) {
		fmt.Fprintf(stdout, "%s baseline input latency (%v, no fault)\n", time.Now().Format("15:04:05"), baselineWindow)
		l, err := b.baseline(ctx)
		if err != nil {
			return rep, err
		}
		rep.Latencies = append(rep.Latencies, l)
	}
	for _, f := range o.faults() {
		fmt.Fprintf(stdout, "%s %s × %d\n", time.Now().Format("15:04:05"), f, o.reps(f))
		logf("=== %s × %d", f, o.reps(f))
		res := b.runFault(ctx, f, o.reps(f))
		rep.Faults = append(rep.Faults, res)
		if f == faultKillInputsLeader {
			rep.Latencies = append(rep.Latencies, res.latency())
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	return rep, nil
}

// lastLine is the last line of a file ("" if none).
func lastLine(path string) string { return strings.TrimSpace(cluster.TailFile(path, 1)[0]) }

// copyBinary copies the executable src to dst and returns dst.
func copyBinary(src, dst string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("copy node binary: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		return "", fmt.Errorf("copy node binary: %w", err)
	}
	return dst, nil
}
