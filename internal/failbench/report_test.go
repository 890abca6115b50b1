package failbench

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/cli"
)

func sampleReport() Report {
	period := 50 * time.Millisecond
	kill := faultResult{Name: faultKillOwner, Goal: goalFor(faultKillOwner, period)}
	for _, g := range []int{300, 350, 420} {
		kill.Reps = append(kill.Reps, repResult{Recovered: true, Gap: msD(g)})
	}
	term := faultResult{Name: faultTermOwner, Goal: goalFor(faultTermOwner, period), Skipped: 1}
	term.Reps = []repResult{{Recovered: true, Gap: msD(90)}, {Recovered: true, Gap: msD(180), StaleAccepted: 1, StalePublished: 2, Fenced: 3}}
	inputs := faultResult{Name: faultKillInputsLeader, Goal: goalFor(faultKillInputsLeader, period)}
	inputs.Reps = []repResult{{Recovered: true, Gap: msD(60), Election: 5 * time.Second, OwnerChanged: true,
		Latency: []time.Duration{msD(20), msD(40), msD(60)}, AckFailed: 4}}
	stop := faultResult{Name: faultStopOwner, Goal: goalFor(faultStopOwner, period)}
	stop.Reps = []repResult{{Recovered: false, Gap: 20 * time.Second}}
	return Report{
		Command:  "go run ./cmd/failbench -bin /tmp/tm-node -n 3",
		Started:  time.Date(2026, 11, 28, 15, 4, 0, 0, time.UTC),
		Duration: 5 * time.Minute,
		Machine:  machine{Uname: "Linux vm 6.1 x86_64", CPU: "AMD EPYC", NProc: 2, Go: "go1.26.8"},
		Binary:   "sha256 0123456789ab",
		LeaseTTL: 10 * time.Second, TickRate: 20,
		Faults: []faultResult{kill, term, inputs, stop},
		Latencies: []latencyResult{
			{Name: "baseline (no fault, 30 s)", Goal: msD(65), Runs: 1, Latency: []time.Duration{msD(10), msD(30)}},
			inputs.latency(),
		},
		Notes: []string{"n3 exited while the fresh cluster formed"},
	}
}

func TestGoalsAndMet(t *testing.T) {
	r := sampleReport()
	want := map[string]bool{
		faultKillOwner:        true,  // p99 420 ms ≤ 1 s
		faultTermOwner:        false, // p99 180 ms > 100 ms, and a stale tick accepted
		faultKillInputsLeader: true,  // gap and latency within goals
		faultStopOwner:        false, // did not recover
	}
	for _, f := range r.Faults {
		if got := f.met(); got != want[f.Name] {
			t.Errorf("%s: met = %v, want %v", f.Name, got, want[f.Name])
		}
	}
	if g := goalFor(faultKillInputsLeader, 50*time.Millisecond); g.LatencyP99 != msD(65) || g.GapP99 != msD(1500) {
		t.Errorf("inputs goal = %+v", g)
	}
	for _, f := range []string{faultStopOwner, faultCutOwner} {
		if g := goalFor(f, 50*time.Millisecond); g != (goal{GapP99: time.Second}) {
			t.Errorf("%s goal = %+v, want a gap p99 of 1 s (issue #21)", f, g)
		}
	}
	if g := goalFor(faultLoadOwner, 50*time.Millisecond); g != (goal{NoTakeover: true}) {
		t.Errorf("load-owner goal = %+v, want no takeover", g)
	}
	loaded := faultResult{Name: faultLoadOwner, Goal: goal{NoTakeover: true}, Reps: []repResult{{Recovered: true}, {Recovered: true}}}
	if !loaded.met() {
		t.Error("load-owner without a takeover did not meet its goal")
	}
	loaded.Reps[1].Takeovers = 1
	if loaded.met() {
		t.Error("load-owner with a takeover met its goal")
	}
	empty := faultResult{Name: faultKillOwner, Goal: goal{GapP99: time.Second}}
	if empty.met() {
		t.Error("a fault without repetitions met its goal")
	}
	errored := r.Faults[0]
	errored.Errors = []string{"cluster not stable"}
	if errored.met() {
		t.Error("a fault that ended with an error met its goal")
	}
	slow := latencyResult{Goal: msD(65), Latency: []time.Duration{msD(10), msD(70)}}
	if slow.met() {
		t.Error("latency p99 70 ms met a 65 ms goal")
	}
	lost := latencyResult{Goal: msD(65), Latency: []time.Duration{msD(10)}, Unapplied: 1}
	if lost.met() {
		t.Error("latency with an unapplied input met its goal")
	}
}

func TestMarkdownReport(t *testing.T) {
	var buf bytes.Buffer
	sampleReport().WriteMarkdown(&buf)
	out := buf.String()
	for _, want := range []string{
		"### Run of 2026-11-28 15:04 UTC",
		"- Command: `go run ./cmd/failbench -bin /tmp/tm-node -n 3`",
		"- Machine: `Linux vm 6.1 x86_64`; CPU: AMD EPYC; nproc: 2; go1.26.8",
		"- Node binary: sha256 0123456789ab",
		"| fault | n | skipped | no recovery | gap p50 | gap p99 | gap max | stale published | fenced by nodes | stale accepted | goal | met? |",
		"| kill-owner | 3 | 0 | 0 | 350 ms | 420 ms | 420 ms | 0 | 0 | 0 | gap p99 ≤ 1000 ms, stale accepted 0 | yes |",
		"| term-owner | 2 | 1 | 0 | 90 ms | 180 ms | 180 ms | 2 | 3 | 1 | gap p99 ≤ 100 ms, stale accepted 0 | **no** |",
		"| stop-owner | 1 | 0 | 1 | 20000 ms | 20000 ms | 20000 ms | 0 | 0 | 0 | gap p99 ≤ 1000 ms, stale accepted 0 | **no** |",
		"| baseline (no fault, 30 s) | 2 | 10 ms | 30 ms | 30 ms | 0 | 0 | p99 ≤ 65 ms | yes |",
		"| during kill-inputs-leader (10 s after the kill) | 3 | 40 ms | 60 ms | 60 ms | 0 | 4 | p99 ≤ 65 ms | yes |",
		"- kill-owner gaps (ms): 300, 350, 420",
		"- kill-inputs-leader gaps (ms): 60*; new stream leader after p50 5000 ms, max 5000 ms; * = the owner changed (1)",
		"- stop-owner gaps (ms): 20000(no recovery)",
		"- Note: n3 exited while the fresh cluster formed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q\n%s", want, out)
		}
	}
}

func TestTextReport(t *testing.T) {
	var buf bytes.Buffer
	sampleReport().writeText(&buf)
	out := buf.String()
	for _, want := range []string{"Failover benchmark: 3 nodes, lease TTL 10s, 20 ticks/s, 5m0s", "kill-owner", "NO", "baseline (no fault, 30 s)", "note: n3 exited"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q\n%s", want, out)
		}
	}
}

func TestMs(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond:    "1.5 ms",
		msD(65):                    "65 ms",
		1234567 * time.Microsecond: "1235 ms",
	} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestConfig(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := DefaultConfig()
	o.Bin, o.N, o.Faults, o.Reps = bin, 4, []string{"stop-owner", "kill-owner"}, map[string]int{"stop-owner": 2}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.faults(), ",") != "kill-owner,stop-owner" {
		t.Errorf("faults = %v, want them in run order", o.faults())
	}
	if o.reps(faultKillOwner) != 4 || o.reps(faultStopOwner) != 2 {
		t.Errorf("reps = %d, %d", o.reps(faultKillOwner), o.reps(faultStopOwner))
	}
	if o.effectiveLeaseTTL() != 10*time.Second || o.tickPeriod() != 50*time.Millisecond {
		t.Errorf("defaults: lease %v, period %v", o.effectiveLeaseTTL(), o.tickPeriod())
	}

	for name, change := range map[string]func(*Config){
		"no binary":            func(o *Config) { o.Bin = "" },
		"missing binary":       func(o *Config) { o.Bin = filepath.Join(t.TempDir(), "missing") },
		"unknown fault":        func(o *Config) { o.Faults = []string{"kill-everything"} },
		"no fault":             func(o *Config) { o.Faults = nil },
		"reps of no fault":     func(o *Config) { o.Faults, o.Reps = []string{"kill-owner"}, map[string]int{"term-owner": 3} },
		"zero reps":            func(o *Config) { o.Reps = map[string]int{"term-owner": 0} },
		"lease not whole":      func(o *Config) { o.LeaseTTL = 1500 * time.Millisecond },
		"n 0":                  func(o *Config) { o.N = 0 },
		"cut-owner, no links":  func(o *Config) { o.Ports.Link = 0 },
		"short load":           func(o *Config) { o.LoadFor = time.Second },
		"port out of range":    func(o *Config) { o.Ports.NATS = 70000 },
		"short recovery limit": func(o *Config) { o.RecoveryTimeout = 0 },
	} {
		c := DefaultConfig()
		c.Bin = bin
		change(&c)
		var ue *cli.UsageError
		if err := c.Validate(); !errors.As(err, &ue) {
			t.Errorf("%s: Validate() = %v, want a usage error", name, err)
		}
	}
}
