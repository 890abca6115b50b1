package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/procfs"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// The input-heavy mode: -node names every node of the cluster under test (its pid, for /proc, and its admin
// listener, for /metrics), so that the report can say what the inputs cost the node that leads INPUTS, how many
// INPUTS messages they took, and whether memory stayed flat; -input-steps runs the load at several input rates
// and names the highest one the cluster sustained.

// NodeSpec is one -node: name=pid@admin-host:port.
type NodeSpec struct {
	Name  string
	PID   int
	Admin string // host:port of the admin listener
}

// parseNode reads a -node value.
func parseNode(s string) (NodeSpec, error) {
	name, rest, ok1 := strings.Cut(s, "=")
	pid, admin, ok2 := strings.Cut(rest, "@")
	n, err := strconv.Atoi(pid)
	if !ok1 || !ok2 || name == "" || admin == "" || err != nil || n <= 0 {
		return NodeSpec{}, fmt.Errorf("bad -node %q: want name=pid@admin-host:port", s)
	}
	return NodeSpec{Name: name, PID: n, Admin: admin}, nil
}

// nodeFlags collects repeated -node flags.
type nodeFlags struct{ specs *[]NodeSpec }

func (f nodeFlags) String() string { return "" }

func (f nodeFlags) Set(s string) error {
	n, err := parseNode(s)
	if err != nil {
		return err
	}
	*f.specs = append(*f.specs, n)
	return nil
}

// parseSteps reads -input-steps: input rates per client, comma-separated, increasing; the first may be 0, a run
// without inputs whose CPU the others are compared with.
func parseSteps(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r < 0 || r > protocol.DefaultRate || (len(out) > 0 && r <= out[len(out)-1]) {
			return nil, fmt.Errorf("bad -input-steps %q: want increasing rates in [0, %d] (0 first only)", s, protocol.DefaultRate)
		}
		out = append(out, r)
	}
	return out, nil
}

// nodeSample is one node at one moment: its process and its metrics.
type nodeSample struct {
	proc    procfs.Sample
	procErr error
	metrics cluster.Metrics
	metErr  error
}

func sampleNodes(ctx context.Context, nodes []NodeSpec) []nodeSample {
	out := make([]nodeSample, len(nodes))
	for i, n := range nodes {
		out[i].proc, out[i].procErr = procfs.Process(n.PID)
		mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		out[i].metrics, out[i].metErr = cluster.ReadMetrics(mctx, cluster.Node{Name: n.Name, Admin: n.Admin})
		cancel()
	}
	return out
}

// Series read from the nodes' /metrics.
const (
	seriesBatches = "tickmesh_gateway_input_batches_total" // durable publishes stored (one per event before batches)
	seriesEvents  = "tickmesh_gateway_events_acked_total"  // events stored
	seriesPending = "tickmesh_gateway_events_pending"
	seriesDropped = "tickmesh_gateway_events_dropped_total" // inputs answered not_ready
)

// inputsLeader is the node that leads INPUTS according to a node's metrics ("" when none is named).
func inputsLeader(m cluster.Metrics) string {
	for series, v := range m {
		rest, ok := strings.CutPrefix(series, "tickmesh_stream_leader{")
		if !ok || v != 1 || !strings.Contains(rest, `stream="`+wire.InputsStream+`"`) {
			continue
		}
		if _, after, ok := strings.Cut(rest, `leader="`); ok {
			if name, _, ok := strings.Cut(after, `"`); ok {
				return name
			}
		}
	}
	return ""
}

// NodeInputs is what one node did during the window.
type NodeInputs struct {
	Name         string  `json:"name"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUCores     float64 `json:"cpu_cores"`
	RSSStartKB   uint64  `json:"rss_window_start_kb"`
	RSSEndKB     uint64  `json:"rss_window_end_kb"`
	EventsStored float64 `json:"events_stored"`   // by this node's gateway
	Batches      float64 `json:"batches_stored"`  // INPUTS messages this node's gateway wrote
	Dropped      float64 `json:"inputs_refused"`  // answered not_ready
	PendingEnd   float64 `json:"events_pending"`  // at the window's end
	Error        string  `json:"error,omitempty"` // a sample that failed
}

// InputsReport is the input-heavy part of a report (with -node).
type InputsReport struct {
	Leader             string       `json:"inputs_leader"`        // at the window's start
	LeaderAtEnd        string       `json:"inputs_leader_at_end"` // differs when leadership moved: the CPU figure mixes two nodes then
	LeaderCPUPerInput  float64      `json:"leader_cpu_us_per_input"`
	InputsAckedPerSec  float64      `json:"inputs_acked_per_second"` // cluster-wide, as the clients saw their acks
	EventsStoredPerSec float64      `json:"events_stored_per_second"`
	MessagesPerSec     float64      `json:"inputs_messages_per_second"` // INPUTS messages written
	EventsPerMessage   float64      `json:"events_per_message"`
	Nodes              []NodeInputs `json:"nodes"`
}

// inputsReport compares the nodes' samples at the window's start and end.
func inputsReport(nodes []NodeSpec, start, end []nodeSample, window float64, acked uint64) *InputsReport {
	r := &InputsReport{}
	var events, batches float64
	for i, n := range nodes {
		ni := NodeInputs{Name: n.Name}
		s, e := start[i], end[i]
		switch {
		case s.procErr != nil || e.procErr != nil:
			ni.Error = fmt.Sprint(firstErr(s.procErr, e.procErr))
		case e.proc.CPUTicks >= s.proc.CPUTicks:
			ni.CPUSeconds = float64(e.proc.CPUTicks-s.proc.CPUTicks) / procfs.ClockTicks
			ni.RSSStartKB, ni.RSSEndKB = s.proc.RSSKB, e.proc.RSSKB
		}
		if window > 0 {
			ni.CPUCores = ni.CPUSeconds / window
		}
		if s.metErr != nil || e.metErr != nil {
			ni.Error = strings.TrimPrefix(ni.Error+"; "+fmt.Sprint(firstErr(s.metErr, e.metErr)), "; ")
		} else {
			ni.EventsStored = e.metrics[seriesEvents] - s.metrics[seriesEvents]
			ni.Batches = e.metrics[seriesBatches] - s.metrics[seriesBatches]
			ni.Dropped = e.metrics[seriesDropped] - s.metrics[seriesDropped]
			ni.PendingEnd = e.metrics[seriesPending]
			if r.Leader == "" {
				r.Leader = inputsLeader(s.metrics)
			}
			if r.LeaderAtEnd == "" {
				r.LeaderAtEnd = inputsLeader(e.metrics)
			}
		}
		events += ni.EventsStored
		batches += ni.Batches
		r.Nodes = append(r.Nodes, ni)
	}
	if window > 0 {
		r.InputsAckedPerSec = float64(acked) / window
		r.EventsStoredPerSec = events / window
		r.MessagesPerSec = batches / window
	}
	if batches > 0 {
		r.EventsPerMessage = events / batches
	}
	for _, ni := range r.Nodes {
		if ni.Name == r.Leader && events > 0 {
			r.LeaderCPUPerInput = ni.CPUSeconds * 1e6 / events
		}
	}
	return r
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// writeInputs adds the input-heavy rows to a report's table.
func (r *InputsReport) write(row func(k, format string, a ...any)) {
	leader := r.Leader
	if r.LeaderAtEnd != r.Leader {
		leader = fmt.Sprintf("%s, then %s (moved during the window: the CPU figure mixes them)", r.Leader, r.LeaderAtEnd)
	}
	row("inputs leader", "%s: %.1f µs of CPU per event stored", leader, r.LeaderCPUPerInput)
	row("inputs stored", "%.0f events/s in %.0f INPUTS messages/s (%.1f events per message); acked by ticks %.0f/s",
		r.EventsStoredPerSec, r.MessagesPerSec, r.EventsPerMessage, r.InputsAckedPerSec)
	for _, n := range r.Nodes {
		if n.Error != "" {
			row("  "+n.Name, "%s", n.Error)
			continue
		}
		row("  "+n.Name, "CPU %.0f%% of a core; RSS %.1f → %.1f MB; stored %.0f events in %.0f messages; refused %.0f; pending at the end %.0f",
			100*n.CPUCores, float64(n.RSSStartKB)/1024, float64(n.RSSEndKB)/1024, n.EventsStored, n.Batches, n.Dropped, n.PendingEnd)
	}
}

// Sustained is how a step is judged: the cluster kept up with the offered inputs when none was refused
// (not_ready), at least 99 % of the window's inputs were acknowledged by a tick, and the input → acknowledging
// tick p99 stayed within a second (a queue that grows shows there first).
func Sustained(r *Report) bool {
	return r.ErrorFrames[protocol.CodeNotReady] == 0 && r.InputsSent > 0 &&
		float64(r.InputsAcked) >= 0.99*float64(r.InputsSent) && r.InputLatency.P99 <= 1000
}

// nodeCores is the named node's CPU (cores) in r, and whether r has it.
func nodeCores(r *Report, name string) (float64, bool) {
	if r.Inputs == nil {
		return 0, false
	}
	for _, n := range r.Inputs.Nodes {
		if n.Name == name && n.Error == "" {
			return n.CPUCores, true
		}
	}
	return 0, false
}

// WriteSteps prints one line per step and the highest sustained cluster-wide input rate. With a first step of 0
// inputs/s, "marginal" is the leader's CPU per event above what the same node used in that step (ticks, fan-out,
// leases): what the inputs themselves cost it.
func WriteSteps(w io.Writer, rates []float64, reports []*Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "inputs/s per client\toffered/s\tacked/s\tnot_ready\tinput→tick p50 ms\tp99 ms\tleader µs/event\tmarginal µs/event\tevents/message\tsustained\n")
	best := 0.0
	for i, r := range reports {
		marginal := "-"
		if i > 0 && rates[0] == 0 && r.Inputs != nil && r.Inputs.EventsStoredPerSec > 0 {
			cores, ok1 := nodeCores(r, r.Inputs.Leader)
			base, ok2 := nodeCores(reports[0], r.Inputs.Leader)
			if ok1 && ok2 {
				marginal = fmt.Sprintf("%.1f", (cores-base)*1e6/r.Inputs.EventsStoredPerSec)
			}
		}
		offered, acked := 0.0, 0.0
		if r.WindowSeconds > 0 {
			offered = float64(r.InputsSent) / r.WindowSeconds
			acked = float64(r.InputsAcked) / r.WindowSeconds
		}
		leader, perMsg := "-", "-"
		if r.Inputs != nil {
			leader = fmt.Sprintf("%.1f", r.Inputs.LeaderCPUPerInput)
			perMsg = fmt.Sprintf("%.1f", r.Inputs.EventsPerMessage)
		}
		ok := Sustained(r)
		if ok {
			best = max(best, acked)
		}
		fmt.Fprintf(tw, "%g\t%.0f\t%.0f\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%v\n", rates[i], offered, acked,
			r.ErrorFrames[protocol.CodeNotReady], r.InputLatency.P50, r.InputLatency.P99, leader, marginal, perMsg, ok)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if best == 0 {
		_, err := fmt.Fprintln(w, "highest sustained cluster-wide input rate: none of the steps")
		return err
	}
	_, err := fmt.Fprintf(w, "highest sustained cluster-wide input rate: %.0f inputs/s\n", best)
	return err
}
