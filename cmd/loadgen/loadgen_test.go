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
	cfg, js, err := parseFlags([]string{"-url", "http://127.0.0.1:8081, ws://h:1/ws", "-n", "7", "-rooms", "3", "-json", "-"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if js != "-" || cfg.Clients != 7 || len(cfg.URLs) != 2 || cfg.URLs[0] != "ws://127.0.0.1:8081/ws" || cfg.URLs[1] != "ws://h:1/ws" {
		t.Fatalf("config %+v", cfg)
	}
	if cfg.roomOf(4) != "lobby-1" || (Config{Room: "lobby", Rooms: 1}).roomOf(4) != "lobby" {
		t.Fatalf("rooms: %q", cfg.roomOf(4))
	}
	if _, _, err := parseFlags([]string{"-url", "ftp://x"}, &bytes.Buffer{}); err == nil {
		t.Fatal("ftp URL accepted")
	}
	bad := cfg
	bad.InputRate = 100
	if err := bad.validate(); err == nil {
		t.Fatal("input rate above the server's limit accepted")
	}
}

// TestSmokeAgainstAnInProcessNode runs 20 clients for 3 s against a real node.
func TestSmokeAgainstAnInProcessNode(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	url, _ := wsURL(c.Member("n1").Node.URL())
	var progress bytes.Buffer
	cfg := Config{URLs: []string{url}, Clients: 20, Room: "lobby", Rooms: 1, Ramp: 500 * time.Millisecond, Duration: 3 * time.Second,
		InputRate: 5, TickRate: 20, PID: os.Getpid(), Sample: 1, Name: "smoke", Progress: &progress}
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
}
