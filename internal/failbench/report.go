package failbench

import (
	"crypto/sha256"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tickmesh/tickmesh/internal/procfs"
)

// repResult is one repetition of a fault.
type repResult struct {
	Skipped        bool
	Recovered      bool
	Gap            time.Duration // longest tick gap over the surviving nodes
	GapNode        string
	StalePublished int
	Fenced         int
	StaleAccepted  int
	OwnerChanged   bool
	Takeovers      int           // load-owner: epochs newer than the owner's seen during the load
	Election       time.Duration // leader faults: fault → new stream leader reported
	AlsoLed        string        // leader faults: other placed streams the killed node led ("A+B")
	Latency        []time.Duration
	Unapplied      int
	AckFailed      int
	Note           string
}

// faultResult is every repetition of one fault.
type faultResult struct {
	Name     string
	Goal     goal
	Reps     []repResult // completed (not skipped)
	Skipped  int
	Unplaced int // repetitions that started while the owner still led a placed stream
	Errors   []string
}

func (f faultResult) gaps() []time.Duration {
	out := make([]time.Duration, len(f.Reps))
	for i, r := range f.Reps {
		out[i] = r.Gap
	}
	return out
}

func (f faultResult) sums() (failed, stalePub, fenced, staleAcc, ownerChanged int) {
	for _, r := range f.Reps {
		if !r.Recovered {
			failed++
		}
		stalePub += r.StalePublished
		fenced += r.Fenced
		staleAcc += r.StaleAccepted
		if r.OwnerChanged {
			ownerChanged++
		}
	}
	return
}

// met reports whether the fault met its goals: gap p99, stale accepted 0, every repetition recovered, and (for
// the inputs fault) the input latency.
func (f faultResult) met() bool {
	if len(f.Reps) == 0 || len(f.Errors) > 0 {
		return false
	}
	failed, _, _, staleAcc, _ := f.sums()
	if failed > 0 || staleAcc > 0 {
		return false
	}
	if f.Goal.GapP99 > 0 && summarize(f.gaps()).P99 > f.Goal.GapP99 {
		return false
	}
	if f.Goal.LatencyP99 > 0 && !f.latency().met() {
		return false
	}
	if f.Goal.NoTakeover && f.takeovers() > 0 {
		return false
	}
	return true
}

// takeovers is the number of takeovers over every repetition (load-owner).
func (f faultResult) takeovers() int {
	n := 0
	for _, r := range f.Reps {
		n += r.Takeovers
	}
	return n
}

func (f faultResult) goalText() string {
	var parts []string
	if f.Goal.GapP99 > 0 {
		parts = append(parts, "gap p99 ≤ "+ms(f.Goal.GapP99))
	}
	if f.Goal.LatencyP99 > 0 {
		parts = append(parts, "input p99 ≤ "+ms(f.Goal.LatencyP99))
	}
	if f.Goal.NoTakeover {
		parts = append(parts, fmt.Sprintf("takeovers 0 (%d)", f.takeovers()))
	}
	parts = append(parts, "stale accepted 0")
	return strings.Join(parts, ", ")
}

// latency aggregates the input latency of every repetition.
func (f faultResult) latency() latencyResult {
	l := latencyResult{Name: "during " + f.Name + " (10 s after the kill)", Goal: f.Goal.LatencyP99}
	for _, r := range f.Reps {
		l.Latency = append(l.Latency, r.Latency...)
		l.Unapplied += r.Unapplied
		l.AckFailed += r.AckFailed
		l.Runs++
	}
	return l
}

// latencyResult is input → applied latency over one or more windows.
type latencyResult struct {
	Name      string
	Goal      time.Duration
	Runs      int
	Latency   []time.Duration
	Unapplied int
	AckFailed int
}

func (l latencyResult) met() bool {
	return len(l.Latency) > 0 && l.Unapplied == 0 && summarize(l.Latency).P99 <= l.Goal
}

// Report is a whole run.
type Report struct {
	Command   string
	Started   time.Time
	Duration  time.Duration
	Machine   machine
	Binary    string
	LeaseTTL  time.Duration
	TickRate  int
	Faults    []faultResult
	Latencies []latencyResult
	Reordered int
	Load      loadRange // 1-minute load average seen during the run
	Notes     []string
}

// loadRange is the range of the 1-minute load average sampled during a run.
type loadRange struct {
	Min, Max float64
	Samples  int
}

func (l *loadRange) add(v float64) {
	if l.Samples == 0 || v < l.Min {
		l.Min = v
	}
	if l.Samples == 0 || v > l.Max {
		l.Max = v
	}
	l.Samples++
}

// machine describes where the run happened.
type machine struct {
	Uname string
	CPU   string
	NProc int
	Go    string
}

func describeMachine() machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version(), CPU: procfs.CPUModel()}
	if out, err := exec.Command("uname", "-a").Output(); err == nil {
		m.Uname = strings.TrimSpace(string(out))
	}
	return m
}

// describeBinary names a Go binary by its VCS stamp and a hash of its content.
func describeBinary(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	sum := sha256.Sum256(b)
	desc := fmt.Sprintf("sha256 %x", sum[:6])
	if bi, err := buildinfo.ReadFile(path); err == nil {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			desc += ", commit " + rev
			if modified == "true" {
				desc += " with uncommitted changes"
			}
		}
		desc += ", " + bi.GoVersion
	}
	return desc
}

// ms renders a duration in milliseconds, rounded to 0.1 ms below 10 ms.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f < 10 {
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// table is one of the report's tables, rendered for people (writeText) and for docs/BENCHMARKS.md (WriteMarkdown).
type table struct {
	title  string
	header []string
	right  []bool // right-aligned columns (numbers)
	rows   [][]string
}

// tables are the results: per fault, and the input latencies when there are some. no marks a goal not met.
func (r Report) tables(no string) []table {
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return no
	}
	faults := table{header: []string{"fault", "n", "skipped", "no recovery", "gap p50", "gap p99", "gap max", "stale published",
		"fenced by nodes", "stale accepted", "goal", "met?"},
		right: []bool{false, true, true, true, true, true, true, true, true, true, false, false}}
	for _, f := range r.Faults {
		failed, sp, fe, sa, _ := f.sums()
		s := summarize(f.gaps())
		faults.rows = append(faults.rows, []string{f.Name, fmt.Sprint(len(f.Reps)), fmt.Sprint(f.Skipped), fmt.Sprint(failed),
			ms(s.P50), ms(s.P99), ms(s.Max), fmt.Sprint(sp), fmt.Sprint(fe), fmt.Sprint(sa), f.goalText(), met(f.met())})
	}
	if len(r.Latencies) == 0 {
		return []table{faults}
	}
	lat := table{title: "Input → applied latency (a bot publishes an input every tick period through a non-owner node; latency to the first tick there whose ack covers it):",
		header: []string{"window", "inputs", "p50", "p99", "max", "not applied", "PubAcks failed", "goal", "met?"},
		right:  []bool{false, true, true, true, true, true, true, false, false}}
	for _, l := range r.Latencies {
		s := summarize(l.Latency)
		lat.rows = append(lat.rows, []string{l.Name, fmt.Sprint(s.N), ms(s.P50), ms(s.P99), ms(s.Max), fmt.Sprint(l.Unapplied),
			fmt.Sprint(l.AckFailed), "p99 ≤ " + ms(l.Goal), met(l.met())})
	}
	return []table{faults, lat}
}

// render writes t aligned with spaces, or as a markdown table.
func (t table) render(w io.Writer, markdown bool) {
	if t.title != "" {
		fmt.Fprintln(w, "\n"+t.title)
	}
	if !markdown {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, row := range append([][]string{t.header}, t.rows...) {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		tw.Flush()
		return
	}
	rule := make([]string, len(t.header))
	for i, right := range t.right {
		rule[i] = map[bool]string{false: "---", true: "---:"}[right]
	}
	fmt.Fprintln(w)
	for _, row := range append([][]string{t.header, rule}, t.rows...) {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
}

// writeText writes the human tables.
func (r Report) writeText(w io.Writer) {
	fmt.Fprintf(w, "\nFailover benchmark: 3 nodes, lease TTL %v, %d ticks/s, %s\n", r.LeaseTTL, r.TickRate, r.Duration.Round(time.Second))
	if r.Load.Samples > 0 {
		fmt.Fprintf(w, "1-minute load average %.2f to %.2f on %d CPUs\n", r.Load.Min, r.Load.Max, r.Machine.NProc)
	}
	for _, t := range r.tables("NO") {
		t.render(w, false)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// WriteMarkdown writes the run as a markdown block for docs/BENCHMARKS.md.
func (r Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "### Run of %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- Command: `%s`\n", r.Command)
	fmt.Fprintf(w, "- Machine: `%s`; CPU: %s; nproc: %d; %s\n", r.Machine.Uname, r.Machine.CPU, r.Machine.NProc, r.Machine.Go)
	fmt.Fprintf(w, "- Node binary: %s\n", r.Binary)
	fmt.Fprintf(w, "- Nodes: 3 processes on this machine, lease TTL %v, %d ticks/s; run took %s\n", r.LeaseTTL, r.TickRate, r.Duration.Round(time.Second))
	if r.Load.Samples > 0 {
		fmt.Fprintf(w, "- 1-minute load average during the run: %.2f to %.2f (%d CPUs)\n", r.Load.Min, r.Load.Max, r.Machine.NProc)
	}
	for _, t := range r.tables("**no**") {
		t.render(w, true)
	}
	fmt.Fprintln(w, "\nPer repetition:")
	fmt.Fprintln(w)
	for _, f := range r.Faults {
		var gs []string
		for _, rep := range f.Reps {
			g := strings.TrimSuffix(ms(rep.Gap), " ms")
			if !rep.Recovered {
				g += "(no recovery)"
			}
			if rep.OwnerChanged {
				g += "*"
			}
			gs = append(gs, g)
		}
		line := fmt.Sprintf("- %s gaps (ms): %s", f.Name, strings.Join(gs, ", "))
		var el []time.Duration
		for _, rep := range f.Reps {
			if rep.Election > 0 {
				el = append(el, rep.Election)
			}
		}
		if len(el) > 0 {
			s := summarize(el)
			line += fmt.Sprintf("; new stream leader after p50 %s, max %s", ms(s.P50), ms(s.Max))
		}
		if _, _, _, _, oc := f.sums(); oc > 0 {
			line += fmt.Sprintf("; * = the owner changed (%d)", oc)
		}
		if f.Unplaced > 0 {
			line += fmt.Sprintf("; %d started with the owner still leading a stream", f.Unplaced)
		}
		if f.Goal.NoTakeover {
			line += fmt.Sprintf("; takeovers %d", f.takeovers())
		}
		for _, e := range f.Errors {
			line += "; error: " + e
		}
		fmt.Fprintln(w, line)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "- Note:", n)
	}
}
