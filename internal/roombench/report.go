package roombench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func jetstreamOf(nc *nats.Conn) (jetstream.JetStream, error) { return jetstream.New(nc) }

// streamSeqs reads the last sequence of every counted stream (0 when it cannot be read).
func streamSeqs(ctx context.Context, js jetstream.JetStream) map[string]uint64 {
	out := map[string]uint64{}
	for _, name := range counted {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(sctx, name)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(sctx); err == nil {
				out[name] = info.State.LastSeq
			}
		}
		cancel()
	}
	return out
}

// Report is a whole run.
type Report struct {
	o       Config
	results []result
	started time.Time
	took    time.Duration
	load    []float64
}

// Write renders the results, as markdown for docs/BENCHMARKS.md or aligned for a terminal.
func (r Report) Write(w io.Writer, markdown bool) {
	if markdown {
		fmt.Fprintf(w, "### Run of %s\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
		fmt.Fprintf(w, "- Command: `%s`\n", r.o.CommandLine)
		fmt.Fprintf(w, "- Machine: %s\n", machine())
		fmt.Fprintf(w, "- 1-minute load average between room counts: %s; run took %s\n\n", loads(r.load), r.took.Round(time.Second))
	} else {
		fmt.Fprintf(w, "\nRoom-count benchmark: %d clients, 3 nodes, %d ticks/s, %s; load average %s\n\n", r.o.Clients, r.o.TickRate, r.took.Round(time.Second), loads(r.load))
	}
	base := r.results[0]
	header := []string{"rooms", "clients welcomed", "delivered", "delivery p99", "cluster CPU", "CPU per room·s (vs first)",
		"RSS", "memory per room (vs first)", "writes/s KV_owners", "KV_snapshots", "INPUTS"}
	rows := [][]string{header}
	for _, x := range r.results {
		perRoom, memRoom := "—", "—"
		if dr := x.Rooms - base.Rooms; dr != 0 {
			perRoom = fmt.Sprintf("%.3f ms", (x.CPU-base.CPU)/float64(dr))
			memRoom = fmt.Sprintf("%.1f KB", (x.RSSMB-base.RSSMB)*1024/float64(dr))
		}
		rows = append(rows, []string{fmt.Sprint(x.Rooms), fmt.Sprintf("%d/%d", x.Welcomed, x.Clients), fmt.Sprintf("%.2f%%", 100*x.Delivered),
			ms(x.DeliveryP99), fmt.Sprintf("%.0f ms/s", x.CPU), perRoom, fmt.Sprintf("%.0f MB", x.RSSMB), memRoom,
			fmt.Sprintf("%.1f", x.Writes[counted[0]]), fmt.Sprintf("%.1f", x.Writes[counted[1]]), fmt.Sprintf("%.1f", x.Writes[counted[2]])})
	}
	table(w, rows, markdown)
	if !r.o.Failover {
		return
	}
	fmt.Fprintln(w)
	if markdown {
		fmt.Fprintln(w, "Failover: the node that owns the most rooms is SIGKILLed after the window; per room of it with a client on another node, the gap from the last tick before the kill to the first of a newer epoch.")
		fmt.Fprintln(w)
	}
	rows = [][]string{{"rooms", "killed", "its rooms", "measured", "gap p50", "gap p99", "gap max", "not recovered", "taken over by"}}
	for _, x := range r.results {
		var by []string
		for n, k := range x.TakenBy {
			by = append(by, fmt.Sprintf("%s %d", n, k))
		}
		slices.Sort(by)
		rows = append(rows, []string{fmt.Sprint(x.Rooms), x.KilledName, fmt.Sprint(x.KilledRooms), fmt.Sprint(x.Measured),
			ms(x.GapP50), ms(x.GapP99), ms(x.GapMax), fmt.Sprint(x.Unrecovered), strings.Join(by, ", ") + x.Note})
	}
	table(w, rows, markdown)
}

func table(w io.Writer, rows [][]string, markdown bool) {
	if markdown {
		for i, row := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(row)))
			}
		}
		return
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, row := range rows {
		for i, c := range row {
			fmt.Fprintf(w, "%-*s  ", widths[i], c)
		}
		fmt.Fprintln(w)
	}
}

func loads(l []float64) string {
	lo, hi := slices.Min(l), slices.Max(l)
	return fmt.Sprintf("%.2f to %.2f", lo, hi)
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}
