package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tickmesh/tickmesh/internal/procfs"
	"github.com/tickmesh/tickmesh/internal/stats"
)

// Percentiles summarises a sample (milliseconds unless stated).
type Percentiles struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// summarize sorts samples in place and returns their percentiles (all zero for no samples).
func summarize(samples []float64) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	slices.Sort(samples)
	return Percentiles{
		N:    len(samples),
		P50:  stats.PercentileSorted(samples, 50),
		P90:  stats.PercentileSorted(samples, 90),
		P99:  stats.PercentileSorted(samples, 99),
		P999: stats.PercentileSorted(samples, 99.9),
		Max:  samples[len(samples)-1],
	}
}

// Report is the result of a run.
type Report struct {
	Config ReportConfig `json:"config"`

	Requested          int            `json:"clients_requested"`
	Connected          int            `json:"clients_connected"`            // welcomed and open when the window started
	Failed             map[string]int `json:"clients_failed"`               // by reason
	ClosedInWindow     map[string]int `json:"clients_closed"`               // by close code: closed during the window
	ClosedBeforeWindow map[string]int `json:"clients_closed_before_window"` // by close code: welcomed, closed during the ramp
	SeenInTicks        int            `json:"clients_seen_in_ticks"`        // clients whose player appeared in a tick
	OpenAtWindowEnd    int            `json:"clients_open_at_the_end"`      //

	WindowSeconds float64 `json:"window_seconds"`
	TickRate      int     `json:"tick_rate"`

	TicksDelivered      uint64  `json:"ticks_delivered"`
	TicksPerSecond      float64 `json:"ticks_per_second"`
	TicksExpected       float64 `json:"ticks_expected"`
	FractionDelivered   float64 `json:"fraction_delivered"`
	TicksPublished      uint64  `json:"ticks_published_seen"`  // per client, the span of its room's tick seqs in the window
	FractionOfPublished float64 `json:"fraction_of_published"` // delivered / published: what the gateway dropped
	RoomTickRate        float64 `json:"room_tick_rate"`        // published ticks per second, mean over clients
	TicksSkipped        uint64  `json:"ticks_skipped"`         // seq gaps within an epoch (replaced or dropped on the way)
	TicksOutOfOrder     uint64  `json:"ticks_out_of_order"`    // (epoch, seq) not above the previous one: must be 0
	BytesPerSecond      float64 `json:"bytes_per_second"`
	// BytesIn, BytesPerTick and BytesPerSocketSecond count tick frames as they travel: the payload and its
	// WebSocket header (2-10 bytes), not TCP/IP.
	BytesIn              uint64  `json:"bytes_in"`
	BytesPerTick         float64 `json:"bytes_per_tick"`
	BytesPerSocketSecond float64 `json:"bytes_per_socket_second"`

	TickLatency  Percentiles    `json:"tick_latency_ms"` // receive time - tick.time
	InputLatency Percentiles    `json:"input_latency_ms"`
	InputsSent   uint64         `json:"inputs_sent"`
	InputsAcked  uint64         `json:"inputs_acked"`
	ErrorFrames  map[string]int `json:"error_frames"` // by code

	// Inputs is the input-heavy part (with -node): the INPUTS leader's CPU per event, INPUTS messages, nodes.
	Inputs *InputsReport `json:"inputs,omitempty"`

	Server  *ProcReport `json:"server,omitempty"`
	Loadgen *ProcReport `json:"loadgen,omitempty"`
	// CoreBusy is each core's busy fraction during the window, from /proc/stat: when the cores that run the
	// load generator (and, in bench:fanout, the owner node) are saturated, latency and delivery measure them
	// as much as the server.
	CoreBusy []float64 `json:"core_busy,omitempty"`
}

// ReportConfig echoes the settings of the run.
type ReportConfig struct {
	URLs      []string `json:"urls"`
	Clients   int      `json:"clients"`
	Room      string   `json:"room"`
	Rooms     int      `json:"rooms"`
	Ramp      string   `json:"ramp"`
	Duration  string   `json:"duration"`
	InputRate float64  `json:"input_rate"`
	Sample    int      `json:"sample"`
	Protocol  int      `json:"protocol"`
	Moving    float64  `json:"moving"`
	TurnEvery string   `json:"turn_every"`
}

// ProcReport is what a process used during the run.
type ProcReport struct {
	PID              int     `json:"pid"`
	CPUSeconds       float64 `json:"cpu_seconds"`         // user + system during the window
	CPUCores         float64 `json:"cpu_cores"`           // CPUSeconds / window
	CPUMicrosPerMsg  float64 `json:"cpu_us_per_message"`  // per delivered tick
	RSSBeforeKB      uint64  `json:"rss_before_kb"`       // before the first connection
	RSSStartKB       uint64  `json:"rss_window_start_kb"` //
	RSSEndKB         uint64  `json:"rss_window_end_kb"`   //
	RSSPerSocketKB   float64 `json:"rss_per_socket_kb"`   // (end - before) / connected
	SampleErrorsText string  `json:"sample_error,omitempty"`
}

// procReport turns three samples of a process into its report.
func procReport(pid int, before, start, end procfs.Sample, window float64, delivered uint64, sockets int) *ProcReport {
	r := &ProcReport{PID: pid, RSSBeforeKB: before.RSSKB, RSSStartKB: start.RSSKB, RSSEndKB: end.RSSKB}
	if end.CPUTicks >= start.CPUTicks {
		r.CPUSeconds = float64(end.CPUTicks-start.CPUTicks) / procfs.ClockTicks
	}
	if window > 0 {
		r.CPUCores = r.CPUSeconds / window
	}
	if delivered > 0 {
		r.CPUMicrosPerMsg = r.CPUSeconds * 1e6 / float64(delivered)
	}
	if sockets > 0 {
		r.RSSPerSocketKB = (float64(end.RSSKB) - float64(before.RSSKB)) / float64(sockets)
	}
	return r
}

func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func formatPercentiles(p Percentiles) string {
	if p.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (n=%d)", p.P50, p.P90, p.P99, p.P999, p.Max, p.N)
}

func formatProc(p *ProcReport) string {
	if p.SampleErrorsText != "" {
		return "pid " + fmt.Sprint(p.PID) + ": " + p.SampleErrorsText
	}
	return fmt.Sprintf("pid %d: CPU %.2f s (%.0f%% of a core), %.2f µs per delivered message; RSS %.1f → %.1f MB, %.1f KB per socket",
		p.PID, p.CPUSeconds, 100*p.CPUCores, p.CPUMicrosPerMsg, float64(p.RSSBeforeKB)/1024, float64(p.RSSEndKB)/1024, p.RSSPerSocketKB)
}

// WriteTable prints the report as a two-column table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("run", "%d clients over %d room(s) from %s, ramp %s, window %.1f s, input rate %g/s per client, protocol %d, moving %.0f%% (turning every %s)",
		r.Config.Clients, r.Config.Rooms, strings.Join(r.Config.URLs, ","), r.Config.Ramp, r.WindowSeconds, r.Config.InputRate,
		r.Config.Protocol, 100*r.Config.Moving, r.Config.TurnEvery)
	row("clients", "connected %d of %d; failed: %s; seen in ticks %d; open at the end %d",
		r.Connected, r.Requested, formatCounts(r.Failed), r.SeenInTicks, r.OpenAtWindowEnd)
	row("closed in window", "%s (during the ramp: %s)", formatCounts(r.ClosedInWindow), formatCounts(r.ClosedBeforeWindow))
	row("ticks delivered", "%d (%.0f/s, %.1f MB/s); expected %.0f at %d/s: fraction %.4f",
		r.TicksDelivered, r.TicksPerSecond, r.BytesPerSecond/1e6, r.TicksExpected, r.TickRate, r.FractionDelivered)
	row("ticks published", "%d seen in the clients' rooms (%.1f/s per room, mean over clients): %.4f of them delivered",
		r.TicksPublished, r.RoomTickRate, r.FractionOfPublished)
	row("ticks skipped", "%d (seq gaps); out of order %d", r.TicksSkipped, r.TicksOutOfOrder)
	row("tick bytes", "%.1f per tick on the wire (payload and WebSocket header), %.0f per socket per second", r.BytesPerTick, r.BytesPerSocketSecond)
	row("tick latency ms", "%s", formatPercentiles(r.TickLatency))
	row("input→tick ms", "%s; inputs sent %d, acked %d", formatPercentiles(r.InputLatency), r.InputsSent, r.InputsAcked)
	row("error frames", "%s", formatCounts(r.ErrorFrames))
	if r.Inputs != nil {
		r.Inputs.write(row)
	}
	if r.Server != nil {
		row("server", "%s", formatProc(r.Server))
	}
	if r.Loadgen != nil {
		row("loadgen", "%s", formatProc(r.Loadgen))
	}
	if len(r.CoreBusy) > 0 {
		parts := make([]string, len(r.CoreBusy))
		for i, b := range r.CoreBusy {
			parts[i] = fmt.Sprintf("cpu%d %.0f%%", i, 100*b)
		}
		row("cores busy", "%s", strings.Join(parts, ", "))
	}
	return tw.Flush()
}

// WriteComparison prints runs of the same load in different protocols side by side, one column per run.
func WriteComparison(w io.Writer, rs []*Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	line := func(k string, f func(r *Report) string) {
		fmt.Fprintf(tw, "%s\t", k)
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t", f(r))
		}
		fmt.Fprintln(tw)
	}
	line("protocol", func(r *Report) string { return fmt.Sprint(r.Config.Protocol) })
	line("clients, rooms, moving", func(r *Report) string {
		return fmt.Sprintf("%d, %d, %.0f%%", r.Connected, r.Config.Rooms, 100*r.Config.Moving)
	})
	line("bytes per tick (wire)", func(r *Report) string { return fmt.Sprintf("%.1f", r.BytesPerTick) })
	line("bytes per socket per s", func(r *Report) string { return fmt.Sprintf("%.0f", r.BytesPerSocketSecond) })
	line("relay CPU µs per message", func(r *Report) string {
		if r.Server == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f", r.Server.CPUMicrosPerMsg)
	})
	line("delivered / expected", func(r *Report) string { return fmt.Sprintf("%.4f", r.FractionDelivered) })
	line("tick latency p50 / p99 ms", func(r *Report) string {
		return fmt.Sprintf("%.1f / %.1f", r.TickLatency.P50, r.TickLatency.P99)
	})
	line("input→tick p50 / p99 ms", func(r *Report) string {
		return fmt.Sprintf("%.1f / %.1f", r.InputLatency.P50, r.InputLatency.P99)
	})
	line("cores busy", func(r *Report) string {
		parts := make([]string, len(r.CoreBusy))
		for i, b := range r.CoreBusy {
			parts[i] = fmt.Sprintf("%.0f%%", 100*b)
		}
		return strings.Join(parts, " / ")
	})
	return tw.Flush()
}
