package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/procfs"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

func TestPercentilesUseTheNearestRank(t *testing.T) {
	var s []float64
	for i := 100; i >= 1; i-- {
		s = append(s, float64(i))
	}
	p := summarize(s)
	want := Percentiles{N: 100, P50: 50, P90: 90, P99: 99, P999: 100, Max: 100}
	if p != want {
		t.Fatalf("summarize(1..100) = %+v, want %+v", p, want)
	}
	if p := summarize([]float64{7}); p.P50 != 7 || p.P999 != 7 || p.N != 1 {
		t.Fatalf("one sample: %+v", p)
	}
	if p := summarize(nil); p != (Percentiles{}) {
		t.Fatalf("no samples: %+v", p)
	}
	big := make([]float64, 10000)
	for i := range big {
		big[i] = float64(i + 1)
	}
	if p := summarize(big); p.P999 != 9990 || p.P99 != 9900 || p.P50 != 5000 {
		t.Fatalf("1..10000: %+v", p)
	}
}

func TestReportComputesRatesAndPrints(t *testing.T) {
	start := time.Unix(100, 0)
	end := start.Add(10 * time.Second)
	clients := []*client{
		{ticks: 200, bytes: 2000, span: 200, lat: []float64{1, 2, 3}, seen: true, sent: 5, acked: 5, inLat: []float64{40, 60}},
		{ticks: 150, skipped: 50, spanOpen: true, spanStart: 1001, spanLast: 1200, lat: []float64{4}, closeCode: 4001, closedAt: start.Add(5 * time.Second),
			errs: map[string]int{"rate_limited": 1}},
		{failure: "closed 4004"},
	}
	clients[0].welcomed.Store(true)
	clients[1].welcomed.Store(true)
	r := build(Config{URLs: []string{"ws://x/ws"}, Clients: 3, Room: "lobby", Rooms: 1, TickRate: 20, Sample: 1,
		Ramp: time.Second, Duration: 10 * time.Second}, clients, 2, 1, start, end)
	if r.TicksDelivered != 350 || r.TicksPerSecond != 35 || r.TicksExpected != 400 || r.FractionDelivered != 0.875 {
		t.Fatalf("tick rates: %+v", r)
	}
	if r.TicksPublished != 400 || r.FractionOfPublished != 0.875 || r.RoomTickRate != 20 {
		t.Fatalf("published: %+v", r)
	}
	if r.TicksSkipped != 50 || r.SeenInTicks != 1 || r.Failed["closed 4004"] != 1 || r.ClosedInWindow["4001"] != 1 {
		t.Fatalf("counts: %+v", r)
	}
	if r.TickLatency.N != 4 || r.TickLatency.P50 != 2 || r.TickLatency.Max != 4 || r.InputLatency.P99 != 60 {
		t.Fatalf("latencies: %+v / %+v", r.TickLatency, r.InputLatency)
	}
	if r.ErrorFrames["rate_limited"] != 1 || r.BytesPerSecond != 200 {
		t.Fatalf("errors, bytes: %+v", r)
	}
	p := procReport(1, procfs.Sample{RSSKB: 1000}, procfs.Sample{CPUTicks: 100, RSSKB: 2000}, procfs.Sample{CPUTicks: 450, RSSKB: 3000}, 10, 350, 2)
	if p.CPUSeconds != 3.5 || p.CPUCores != 0.35 || p.CPUMicrosPerMsg != 10000 || p.RSSPerSocketKB != 1000 {
		t.Fatalf("proc report: %+v", p)
	}
	r.Server = p
	r.CoreBusy = []float64{0.25, 0.998}
	var out bytes.Buffer
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connected 2 of 3", "fraction 0.8750", "4001×1", "p50 2.0", "10000.00 µs per delivered message", "1000.0 KB per socket", "cpu0 25%, cpu1 100%"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil || back["fraction_delivered"] != 0.875 {
		t.Fatalf("JSON report: %s (%v)", data, err)
	}
}

func TestFailureReasonsHaveNoAddresses(t *testing.T) {
	err := &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242},
		Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 28080}, Err: os.ErrDeadlineExceeded}
	if got := reason("before welcome", err); got != "before welcome: timeout" {
		t.Errorf("timeout: %q", got)
	}
	if got := reason("dial", fmt.Errorf("dial tcp 127.0.0.1:9: %w", syscall.ECONNREFUSED)); got != "dial: connection refused" {
		t.Errorf("refused: %q", got)
	}
	if got := reason("dial", errors.New("odd thing at 10.0.0.1:80 and [::1]:8080")); got != "dial: odd thing at ADDR and ADDR" {
		t.Errorf("other: %q", got)
	}
}

func TestFlagsAndURLs(t *testing.T) {
	cfg, protocols, js, _, err := parseFlags([]string{"-url", "http://127.0.0.1:8081, ws://h:1/ws", "-n", "7", "-rooms", "3", "-json", "-",
		"-protocol", "1,2", "-moving", "0.1"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if js != "-" || cfg.Clients != 7 || len(cfg.URLs) != 2 || cfg.URLs[0] != "ws://127.0.0.1:8081/ws" || cfg.URLs[1] != "ws://h:1/ws" {
		t.Fatalf("config %+v", cfg)
	}
	if fmt.Sprint(protocols) != "[1 2]" || cfg.Moving != 0.1 || cfg.TurnEvery != 2*time.Second {
		t.Fatalf("protocols %v, moving %v every %v", protocols, cfg.Moving, cfg.TurnEvery)
	}
	if _, _, _, _, err := parseFlags([]string{"-protocol", "3"}, &bytes.Buffer{}); err == nil {
		t.Fatal("protocol 3 accepted")
	}
	// Movers: the first share of each room's clients (room i%3, index i/3 in it).
	moving := Config{Clients: 30, Rooms: 3, Moving: 0.1}
	var movers []int
	for i := range 30 {
		if moving.mover(i) {
			movers = append(movers, i)
		}
	}
	if fmt.Sprint(movers) != "[0 1 2]" {
		t.Fatalf("movers %v: want one per room", movers)
	}
	if cfg.roomOf(4) != "lobby-1" || (Config{Room: "lobby", Rooms: 1}).roomOf(4) != "lobby" {
		t.Fatalf("rooms: %q", cfg.roomOf(4))
	}
	if _, _, _, _, err := parseFlags([]string{"-url", "ftp://x"}, &bytes.Buffer{}); err == nil {
		t.Fatal("ftp URL accepted")
	}
	bad := cfg
	bad.InputRate = 100
	if err := bad.validate(); err == nil {
		t.Fatal("input rate above the server's limit accepted")
	}
}

// TestSmokeAgainstAnInProcessNode runs 20 clients for 3 s against a real node, in each protocol.
func TestSmokeAgainstAnInProcessNode(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	url, _ := wsURL(c.Member("n1").Node.URL())
	for _, p := range []int{1, 2} {
		t.Run(fmt.Sprintf("protocol %d", p), func(t *testing.T) { smoke(t, c, url, p) })
	}
}

func smoke(t *testing.T, c *nodetest.Cluster, url string, proto int) {
	var progress bytes.Buffer
	admin := strings.TrimPrefix(c.Member("n1").Node.AdminURL(), "http://")
	cfg := Config{URLs: []string{url}, Clients: 20, Room: "lobby", Rooms: 1, Ramp: 500 * time.Millisecond, Duration: 3 * time.Second,
		InputRate: 5, TickRate: 20, PID: os.Getpid(), Sample: 1, Name: "smoke", Progress: &progress, Protocol: proto,
		Nodes: []NodeSpec{{Name: "n1", PID: os.Getpid(), Admin: admin}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_ = r.WriteTable(&out)
	t.Logf("\n%s%s", progress.String(), out.String())
	if r.Connected != 20 || len(r.Failed) != 0 || len(r.ClosedInWindow) != 0 {
		t.Fatalf("clients: connected %d, failed %v, closed %v", r.Connected, r.Failed, r.ClosedInWindow)
	}
	if r.FractionDelivered < 0.8 || r.FractionOfPublished < 0.8 || r.RoomTickRate < 15 || r.TicksOutOfOrder != 0 {
		t.Errorf("fraction delivered %.3f (of published %.3f, room tick rate %.1f), out of order %d", r.FractionDelivered,
			r.FractionOfPublished, r.RoomTickRate, r.TicksOutOfOrder)
	}
	if r.TickLatency.N == 0 || r.TickLatency.P50 < 0 || r.TickLatency.P50 > 1000 {
		t.Errorf("tick latency %+v", r.TickLatency)
	}
	if r.SeenInTicks != 20 || r.InputsSent == 0 || r.InputLatency.N == 0 {
		t.Errorf("inputs: seen %d, sent %d, latency %+v", r.SeenInTicks, r.InputsSent, r.InputLatency)
	}
	if r.Server == nil || r.Server.RSSEndKB == 0 || r.Server.SampleErrorsText != "" {
		t.Errorf("server sample %+v", r.Server)
	}
	if r.BytesPerTick <= 0 || r.BytesPerSocketSecond <= 0 {
		t.Errorf("bytes per tick %.1f, per socket per second %.1f", r.BytesPerTick, r.BytesPerSocketSecond)
	}
	// The input-heavy part: the node's events stored, in fewer messages than events, and its CPU per event.
	in := r.Inputs
	if in == nil || len(in.Nodes) != 1 || in.Nodes[0].Error != "" {
		t.Fatalf("inputs report %+v", in)
	}
	if in.Leader != "n1" || in.EventsStoredPerSec <= 0 || in.EventsPerMessage < 1 || in.LeaderCPUPerInput <= 0 || in.Nodes[0].RSSEndKB == 0 {
		t.Errorf("inputs report %+v", in)
	}
}

func TestInputModeFlagsAndReport(t *testing.T) {
	cfg, _, _, steps, err := parseFlags([]string{"-node", "n1=12@127.0.0.1:9091", "-node", "n2=13@127.0.0.1:9092", "-input-steps", "2, 5,10"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Nodes) != 2 || cfg.Nodes[1] != (NodeSpec{Name: "n2", PID: 13, Admin: "127.0.0.1:9092"}) || len(steps) != 3 || steps[2] != 10 {
		t.Fatalf("nodes %+v, steps %v", cfg.Nodes, steps)
	}
	for _, bad := range [][]string{{"-node", "n1@1"}, {"-node", "n1=x@h:1"}, {"-node", "=1@h:1"}, {"-node", "n1=1@"},
		{"-input-steps", "5,2"}, {"-input-steps", "2,0"}, {"-input-steps", "-1"}, {"-input-steps", "31"}, {"-input-steps", "x"}} {
		if _, _, _, _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}

	leaderIs := func(name string) cluster.Metrics {
		return cluster.Metrics{`tickmesh_stream_leader{leader="` + name + `",stream="INPUTS"}`: 1,
			`tickmesh_stream_leader{leader="n1",stream="KV_owners"}`: 1}
	}
	nodes := []NodeSpec{{Name: "n1"}, {Name: "n2"}}
	at := func(cpu uint64, events, batches float64, leader string) nodeSample {
		m := leaderIs(leader)
		m[seriesEvents], m[seriesBatches] = events, batches
		return nodeSample{proc: procfs.Sample{CPUTicks: cpu, RSSKB: 1000}, metrics: m}
	}
	start := []nodeSample{at(0, 0, 0, "n2"), at(0, 100, 100, "n2")}
	end := []nodeSample{at(100, 6400, 100, "n2"), at(200, 12900, 200, "n2")} // n2: 200 clock ticks, 2 s of CPU
	r := inputsReport(nodes, start, end, 10, 18000)
	if r.Leader != "n2" || r.LeaderAtEnd != "n2" || r.EventsStoredPerSec != 1920 || r.MessagesPerSec != 20 || r.EventsPerMessage != 96 {
		t.Fatalf("report %+v", r)
	}
	if want := 2e6 / 19200; r.LeaderCPUPerInput != want || r.InputsAckedPerSec != 1800 {
		t.Fatalf("leader %.3f µs per event (want %.3f), acked %.0f/s", r.LeaderCPUPerInput, want, r.InputsAckedPerSec)
	}

	ok := &Report{WindowSeconds: 10, InputsSent: 1000, InputsAcked: 995, InputLatency: Percentiles{P50: 30, P99: 70}, Inputs: r}
	refused := &Report{WindowSeconds: 10, InputsSent: 2000, InputsAcked: 1990, ErrorFrames: map[string]int{"not_ready": 3}}
	slow := &Report{WindowSeconds: 10, InputsSent: 3000, InputsAcked: 3000, InputLatency: Percentiles{P99: 1500}}
	if !Sustained(ok) || Sustained(refused) || Sustained(slow) || Sustained(&Report{}) {
		t.Fatal("Sustained judges wrong")
	}
	var out bytes.Buffer
	if err := WriteSteps(&out, []float64{1, 2, 3}, []*Report{ok, refused, slow}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "highest sustained cluster-wide input rate: 100 inputs/s") || !strings.Contains(out.String(), "104.2") {
		t.Fatalf("steps table:\n%s", out.String())
	}
	// A first step without inputs: the leader's CPU above it, per event. n2 used 0.1 of a core idle and 0.2 with
	// 1920 events/s: 52.1 µs per event.
	idle := &Report{WindowSeconds: 10, Inputs: &InputsReport{Leader: "n2", Nodes: []NodeInputs{{Name: "n2", CPUCores: 0.1}}}}
	out.Reset()
	if err := WriteSteps(&out, []float64{0, 1}, []*Report{idle, ok}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "52.1") {
		t.Fatalf("steps table:\n%s", out.String())
	}
}

// Moving players, protocols 1 and 2 in turn with the same players: the side-by-side report, and protocol 2's
// ticks a fraction of protocol 1's.
func TestProtocolsSideBySideWithMovingPlayers(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	url, _ := wsURL(c.Member("n1").Node.URL())
	var out, errs bytes.Buffer
	code := run([]string{"-url", url, "-n", "12", "-room", "cmp", "-ramp", "300ms", "-duration", "2s", "-protocol", "1,2",
		"-moving", "0.5", "-turn-every", "500ms", "-between", "1s", "-json", "-"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	text := out.String()
	if !strings.Contains(text, "bytes per tick (wire)") || !strings.Contains(text, "relay CPU") {
		t.Fatalf("no side-by-side table:\n%s", text)
	}
	var reports []Report
	if err := json.Unmarshal([]byte(text[strings.Index(text, "\n[")+1:]), &reports); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, text)
	}
	if len(reports) != 2 || reports[0].Config.Protocol != 1 || reports[1].Config.Protocol != 2 {
		t.Fatalf("reports %+v", reports)
	}
	for _, r := range reports {
		if r.Connected != 12 || r.InputsSent == 0 || r.InputsAcked == 0 || r.FractionDelivered < 0.8 {
			t.Errorf("protocol %d: connected %d, inputs %d acked %d, delivered %.3f", r.Config.Protocol, r.Connected, r.InputsSent,
				r.InputsAcked, r.FractionDelivered)
		}
	}
	t.Logf("\n%s", text[:strings.Index(text, "\n[")])
	if p1, p2 := reports[0].BytesPerTick, reports[1].BytesPerTick; p2*5 > p1 {
		t.Errorf("bytes per tick: protocol 1 %.1f, protocol 2 %.1f", p1, p2)
	}
}
