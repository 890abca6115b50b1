package main

import (
	"slices"
	"testing"
	"time"
)

func msD(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentileNearestRank(t *testing.T) {
	var twenty []time.Duration
	for i := 20; i >= 1; i-- { // unsorted on purpose
		twenty = append(twenty, msD(i*10))
	}
	cases := []struct {
		name string
		xs   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", []time.Duration{msD(7)}, 99, msD(7)},
		{"p50 of 20", twenty, 50, msD(100)},
		{"p99 of 20 is the max", twenty, 99, msD(200)},
		{"p95 of 20", twenty, 95, msD(190)},
		{"p100", twenty, 100, msD(200)},
		{"tiny p is the min", twenty, 0.1, msD(10)},
		{"p50 of 3", []time.Duration{msD(3), msD(1), msD(2)}, 50, msD(2)},
	}
	for _, c := range cases {
		if got := percentile(c.xs, c.p); got != c.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
	before := slices.Clone(twenty)
	percentile(twenty, 50)
	if !slices.Equal(before, twenty) {
		t.Error("percentile sorted its input in place")
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]time.Duration{msD(300), msD(100), msD(200)})
	if s != (summary{N: 3, P50: msD(200), P99: msD(300), Max: msD(300)}) {
		t.Errorf("summarize = %+v", s)
	}
}

func TestLongestGap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(msD(m)))
		}
		return out
	}
	cases := []struct {
		name       string
		ticks      []time.Time
		start, end int
		want       int
	}{
		{"regular", at(0, 50, 100, 150, 200), 0, 200, 50},
		{"hole in the middle", at(0, 50, 100, 900, 950, 1000), 0, 1000, 800},
		{"leading edge is clipped to the window", at(-500, 100, 150), 0, 150, 100},
		{"trailing stretch counts: ticks stopped", at(0, 50), 0, 1000, 950},
		{"no tick at all", nil, 0, 700, 700},
		{"ticks outside on both sides only bound", at(-100, 1100), 0, 1000, 1000},
		{"tick exactly on the edges", at(0, 1000), 0, 1000, 1000},
		{"empty window", at(0, 50), 100, 100, 0},
	}
	for _, c := range cases {
		got := longestGap(c.ticks, t0.Add(msD(c.start)), t0.Add(msD(c.end)))
		if got != msD(c.want) {
			t.Errorf("%s: longestGap = %v, want %v", c.name, got, msD(c.want))
		}
	}
}

func TestStretches(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ticks := []time.Time{t0, t0.Add(msD(50)), t0.Add(msD(600)), t0.Add(msD(650))}
	got := stretches(ticks, t0, t0.Add(msD(1000)), msD(200))
	want := [][2]time.Time{{t0.Add(msD(50)), t0.Add(msD(600))}, {t0.Add(msD(650)), t0.Add(msD(1000))}}
	if !slices.Equal(got, want) {
		t.Errorf("stretches = %v, want %v", got, want)
	}
}

func TestInputLatencies(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ticks := []ackTick{
		{At: t0.Add(msD(50)), Ack: 2},
		{At: t0.Add(msD(100)), Ack: 3},
		{At: t0.Add(msD(150)), Ack: 3},
		{At: t0.Add(msD(200)), Ack: 5}, // 4 and 5 applied in the same tick
	}
	pubs := []publish{
		{Seq: 2, At: t0.Add(msD(40))},  // first tick covers it: 10 ms
		{Seq: 3, At: t0.Add(msD(60))},  // 40 ms
		{Seq: 4, At: t0.Add(msD(110))}, // covered only at 200: 90 ms
		{Seq: 5, At: t0.Add(msD(190))}, // 10 ms
		{Seq: 6, At: t0.Add(msD(195))}, // never covered
		{Seq: 1, At: t0.Add(msD(300))}, // published after the last tick: unapplied (ack must be seen after publish)
	}
	lat, unapplied := inputLatencies(pubs, ticks)
	want := []time.Duration{msD(10), msD(40), msD(90), msD(10)}
	if !slices.Equal(lat, want) || unapplied != 2 {
		t.Errorf("inputLatencies = %v, %d unapplied; want %v, 2", lat, unapplied, want)
	}
	d := applyDelays(pubs, ticks)
	if d[4] != -1 || d[2] != msD(90) {
		t.Errorf("applyDelays = %v", d)
	}
}

func TestPubsIn(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pubs := []publish{{1, t0.Add(-1)}, {2, t0}, {3, t0.Add(msD(10))}, {4, t0.Add(msD(20))}}
	got := pubsIn(pubs, t0, t0.Add(msD(20)))
	if len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 {
		t.Errorf("pubsIn = %v (want seqs 2, 3: the window is [from, to))", got)
	}
}
