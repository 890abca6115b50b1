package chaos

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tickmesh/tickmesh/internal/stats"
)

// Result is everything a run found.
type Result struct {
	Config   Config
	Command  string
	Plan     []Kind
	Start    time.Time
	Duration time.Duration
	Aborted  string // why the run ended early ("" when it ran every fault)

	Faults      []*Fault
	Violations  []Violation
	Kinds       []KindStats
	Bots        []BotStats
	Relays      []RelayStats
	Regressions []Regression // every backwards ack, violation or not

	// Superseded counts ticks bots accepted although a newer epoch had already been seen by some receiver
	// (a superseded owner's tick shown to a player cut off from the new owner); not a violation by itself.
	Superseded    int
	SupersededMax time.Duration

	Lin LinReport // the lease check (lincheck.go)

	InputsSent     int
	InputsApplied  int // inputs whose seq some later tick acknowledged (ack ≥ seq)
	ApplyLatency50 time.Duration
	ApplyLatency99 time.Duration
}

// Passed reports whether the run completed without violations.
func (r *Result) Passed() bool { return r.Aborted == "" && len(r.Violations) == 0 }

// KindStats summarises the faults of one kind.
type KindStats struct {
	Kind                                 Kind
	N, Violations                        int
	BotGapP50, BotGapP99, BotGapMax      time.Duration // over (fault, bot) longest gaps
	RelayGapP50, RelayGapP99, RelayGapMx time.Duration // over (fault, recorder on a node the fault did not act on)
	RecoverP50, RecoverP99               time.Duration // fault start → healthy window
	ConvergeP50, ConvergeP99             time.Duration // fault end → all bots agree
	Superseded                           int
	LostUndurable                        int // backwards acks that lost only inputs sent < 2 s before the fault (violations; must be 0)
}

// BotStats summarises one bot.
type BotStats struct {
	Name, Player         string
	Ticks, Accepted      int
	FencedAfterReconnect int
	Conns                int
	Inputs               int
	StaleJoins           int
	Errors               map[string]int
	CloseCodes           map[int]int
}

// RelayStats summarises one node's recorder and the node's own fence counter.
type RelayStats struct {
	Name                      string
	Raw, Accepted, Stale      int
	Disconnects               int
	NodeFenced                float64 // tickmesh_room_ticks_fenced_total, summed over the node's process lives
	NodeFencedLowerBoundNotes string
}

func (r *Result) fill(h *Harness) {
	r.Violations = h.Store.Violations()
	r.Regressions = h.regs
	s := h.Store
	s.mu.Lock()
	defer s.mu.Unlock()

	faultAt := func(t time.Duration) *Fault {
		var fr *Fault
		for _, f := range r.Faults {
			if f.Start != 0 && f.Start-time.Second <= t && (f.Checked == 0 || t <= f.Checked) {
				fr = f
			}
		}
		return fr
	}
	superseded := map[int]int{}
	// Epochs by first appearance, for superseded deliveries.
	type ef struct {
		e uint64
		t time.Duration
	}
	var firsts []ef
	for e, t := range s.epochFirst {
		firsts = append(firsts, ef{e, t})
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i].t < firsts[j].t })
	var lat []time.Duration
	for _, b := range s.bots {
		bs := BotStats{Name: b.Name, Player: b.Player, Ticks: len(b.Ticks), FencedAfterReconnect: b.FencedAfterReconnect,
			Conns: len(b.Conns), StaleJoins: b.StaleJoins, Errors: maps.Clone(b.Errors), CloseCodes: map[int]int{}}
		for _, c := range b.Conns {
			if c.Code != 0 {
				bs.CloseCodes[c.Code]++
			}
		}
		k := 0
		var maxEpoch uint64
		for _, t := range b.Ticks {
			if !t.Accepted {
				continue
			}
			bs.Accepted++
			// Newest epoch seen anywhere before t, and since when.
			for k < len(firsts) && firsts[k].t <= t.At {
				maxEpoch = max(maxEpoch, firsts[k].e)
				k++
			}
			if t.Pos.Epoch >= maxEpoch {
				continue
			}
			var newer time.Duration = -1
			for _, x := range firsts[:k] {
				if x.e > t.Pos.Epoch && (newer < 0 || x.t < newer) {
					newer = x.t
				}
			}
			if newer >= 0 {
				r.Superseded++
				r.SupersededMax = max(r.SupersededMax, t.At-newer)
				if f := faultAt(t.At); f != nil {
					superseded[f.N]++
				}
			}
		}
		j := 0
		for _, in := range b.Inputs {
			if in.Join {
				continue
			}
			bs.Inputs++
			r.InputsSent++
			for j < len(b.Ticks) && (b.Ticks[j].At <= in.At || !b.Ticks[j].Accepted || b.Ticks[j].Ack < in.Seq) {
				j++
			}
			if j < len(b.Ticks) {
				r.InputsApplied++
				lat = append(lat, b.Ticks[j].At-in.At)
			}
		}
		r.Bots = append(r.Bots, bs)
	}
	r.ApplyLatency50, r.ApplyLatency99 = stats.Percentile(lat, 50), stats.Percentile(lat, 99)
	for i, rl := range s.relays {
		r.Relays = append(r.Relays, RelayStats{Name: rl.Name, Raw: rl.Raw, Accepted: rl.Accepted, Stale: rl.Stale,
			Disconnects: rl.Disconnects, NodeFenced: h.fenced[i] + h.lastFen[i]})
	}

	for _, k := range Kinds {
		ks := KindStats{Kind: k}
		var bg, rg, rec, conv []time.Duration
		for _, f := range r.Faults {
			if f.Kind != k {
				continue
			}
			ks.N++
			ks.Violations += f.Violations
			for _, g := range f.BotGaps {
				bg = append(bg, g.Max)
			}
			for _, g := range f.RelayGaps {
				rg = append(rg, g.Max)
			}
			if f.Recovered != 0 {
				rec = append(rec, f.Recovered-f.Start)
			}
			if f.Converged != 0 {
				conv = append(conv, max(0, f.Converged-f.End))
			}
			ks.Superseded += superseded[f.N]
			for _, rg := range r.Regressions {
				if rg.Fault == f.N && !rg.Durable {
					ks.LostUndurable++
				}
			}
		}
		if ks.N == 0 {
			continue
		}
		ks.BotGapP50, ks.BotGapP99, ks.BotGapMax = stats.Percentile(bg, 50), stats.Percentile(bg, 99), stats.Percentile(bg, 100)
		ks.RelayGapP50, ks.RelayGapP99, ks.RelayGapMx = stats.Percentile(rg, 50), stats.Percentile(rg, 99), stats.Percentile(rg, 100)
		ks.RecoverP50, ks.RecoverP99 = stats.Percentile(rec, 50), stats.Percentile(rec, 99)
		ks.ConvergeP50, ks.ConvergeP99 = stats.Percentile(conv, 50), stats.Percentile(conv, 99)
		r.Kinds = append(r.Kinds, ks)
	}
}

// Summary is a few lines for logs.
func (r *Result) Summary() string {
	var b strings.Builder
	status := "PASS"
	if !r.Passed() {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "%s: seed %d, %d/%d faults in %s, %d violations", status, r.Config.Seed, len(r.Faults), len(r.Plan), fmtDur(r.Duration.Round(time.Second)), len(r.Violations))
	if r.Aborted != "" {
		fmt.Fprintf(&b, ", aborted: %s", r.Aborted)
	}
	b.WriteString("\n")
	for _, k := range r.Kinds {
		fmt.Fprintf(&b, "  %-20s n=%-3d violations=%d bot gap p50 %s p99 %s max %s; recovery p50 %s p99 %s; acked inputs lost (sent < 2 s before) %d\n",
			k.Kind, k.N, k.Violations, fmtDur(k.BotGapP50), fmtDur(k.BotGapP99), fmtDur(k.BotGapMax), fmtDur(k.RecoverP50), fmtDur(k.RecoverP99), k.LostUndurable)
	}
	return b.String()
}

// Markdown writes the report.
func (r *Result) Markdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	status := "PASS"
	if !r.Passed() {
		status = "FAIL"
	}
	c := r.Config
	p("# Tickmesh chaos report: %s\n\n", status)
	if r.Command != "" {
		p("Command: `%s`\n\n", r.Command)
	}
	p("| | |\n|---|---|\n")
	p("| seed | %d |\n| started | %s |\n| duration | %s |\n| bots | %d |\n| lease TTL | %s |\n", c.Seed, r.Start.Format(time.RFC3339), r.Duration.Round(time.Second), c.Bots, c.LeaseTTL)
	p("| faults run / planned | %d / %d |\n| violations | %d |\n", len(r.Faults), len(r.Plan), len(r.Violations))
	if r.Aborted != "" {
		p("| aborted | %s |\n", r.Aborted)
	}
	p("| run directory | `%s` |\n\n", c.Dir)

	p("## Faults by kind\n\nTick gap: per fault and receiver, the longest stretch of [fault start − 1 s, end of the healthy window after it] without an accepted tick; p50/p99/max over (fault, bot) pairs, and over (fault, recorder on a node the fault did not act on). Recovery: fault start → the cluster is healthy again (2 s window). Converge: fault undone → every bot on one epoch and player set.\n\n")
	p("| fault | n | violations | bot gap p50 | p99 | max | relay gap p50 | p99 | max | recovery p50 | p99 | converge p50 | p99 | superseded ticks shown | acknowledged inputs lost, sent < 2 s before the fault |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range r.Kinds {
		p("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n", k.Kind, k.N, k.Violations,
			fmtDur(k.BotGapP50), fmtDur(k.BotGapP99), fmtDur(k.BotGapMax), fmtDur(k.RelayGapP50), fmtDur(k.RelayGapP99), fmtDur(k.RelayGapMx),
			fmtDur(k.RecoverP50), fmtDur(k.RecoverP99), fmtDur(k.ConvergeP50), fmtDur(k.ConvergeP99), k.Superseded, k.LostUndurable)
	}
	p("\n## Violations (%d)\n\n", len(r.Violations))
	if len(r.Violations) == 0 {
		p("None.\n")
	}
	byCheck := map[string]int{}
	for _, v := range r.Violations {
		byCheck[v.Check]++
	}
	for _, k := range slices.Sorted(maps.Keys(byCheck)) {
		p("* %s: %d (%s)\n", k, byCheck[k], Checks[k])
	}
	for i, v := range r.Violations {
		if i == 100 {
			p("\n(%d more not shown)\n", len(r.Violations)-100)
			break
		}
		p("\n### %d. %s\n\n", i+1, v.String())
		if len(v.Evidence) > 0 {
			p("```\n%s\n```\n", strings.Join(v.Evidence, "\n"))
		}
	}

	p("\n## Acknowledged inputs lost\n\n")
	var undurable []Regression
	for _, rg := range r.Regressions {
		if !rg.Durable {
			undurable = append(undurable, rg)
		}
	}
	p("%d backwards acks in total, each a violation (an ack means applied and stored in INPUTS); %d of them lost only inputs sent less than 2 s before the fault, which the suite excused while acks meant applied only.\n\n", len(r.Regressions), len(undurable))
	for i, rg := range undurable {
		if i == 30 {
			p("* (%d more)\n", len(undurable)-30)
			break
		}
		p("* fault #%d: %s\n", rg.Fault, rg.String())
	}

	p("\n## Inputs\n\n%d inputs sent, %d acknowledged by a later tick (ack ≥ seq); send → first acknowledging tick p50 %s, p99 %s.\n",
		r.InputsSent, r.InputsApplied, fmtDur(r.ApplyLatency50), fmtDur(r.ApplyLatency99))
	p("Superseded ticks shown to bots (epoch below one already seen elsewhere): %d, at most %s after the newer epoch appeared.\n", r.Superseded, fmtDur(r.SupersededMax))

	p("\n## Lease check (porcupine)\n\nCAS writes on `%s` from one client per node: %d operations, %d acknowledged, %d refused (wrong last sequence) of which %d are in the stream all the same, %d unknown of which %d landed. Linearizability of the writes: %s.\n",
		linSubject, r.Lin.Ops, r.Lin.Written, r.Lin.Refused, r.Lin.RefusedLanded, r.Lin.Unknown, r.Lin.UnknownLanded, r.Lin.Result)

	p("\n## Faults\n\n| # | fault | what | owner/epoch before → after | stream leaders before | recovery | converge | max bot gap | violations | notes |\n|---|---|---|---|---|---|---|---|---|---|\n")
	name := func(i int) string {
		if i < 0 {
			return "?"
		}
		return fmt.Sprintf("n%d", i+1)
	}
	for _, f := range r.Faults {
		rec := "—"
		if f.Recovered != 0 {
			rec = fmtDur(f.Recovered - f.Start)
		}
		var leaders []string
		for _, k := range slices.Sorted(maps.Keys(f.Leaders)) {
			leaders = append(leaders, strings.TrimPrefix(k, "KV_")+"="+f.Leaders[k])
		}
		p("| %d | %s | %s | %s/%d → %s/%d | %s | %s | %s | %s | %d | %s |\n", f.N, f.Kind, f.Desc, name(f.OwnerBefore), f.EpochBefore,
			name(f.OwnerAfter), f.EpochAfter, strings.Join(leaders, " "), rec, optDur(f.Converged, f.End), fmtDur(maxGap(f.BotGaps)), f.Violations, strings.Join(f.Notes, "<br>"))
	}

	p("\n## Bots\n\n| bot | player | ticks | accepted | dropped after reconnect | connections | inputs | stale joins | errors | close codes |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, b := range r.Bots {
		p("| %s | %s | %d | %d | %d | %d | %d | %d | %v | %v |\n", b.Name, b.Player, b.Ticks, b.Accepted, b.FencedAfterReconnect, b.Conns, b.Inputs, b.StaleJoins, b.Errors, b.CloseCodes)
	}
	p("\n## Relay recorders\n\nA NATS subscriber on the room's tick subject at each node's client port, every raw message passed through a `pkg/fence` fence. `stale` is what that fence dropped; `node fenced` is the node's own `tickmesh_room_ticks_fenced_total` (summed over its process lives; scraped before each kill and at the end).\n\n")
	p("| recorder | raw | accepted | stale | disconnects | node fenced |\n|---|---|---|---|---|---|\n")
	for _, rl := range r.Relays {
		p("| %s | %d | %d | %d | %d | %.0f |\n", rl.Name, rl.Raw, rl.Accepted, rl.Stale, rl.Disconnects, rl.NodeFenced)
	}
}
