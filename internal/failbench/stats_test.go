package failbench

import (
	"slices"
	"testing"
	"time"
)

func msD(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestSummarize(t *testing.T) {
	s := summarize([]time.Duration{msD(300), msD(100), msD(200)})
	if s != (summary{N: 3, P50: msD(200), P99: msD(300), Max: msD(300)}) {
		t.Errorf("summarize = %+v", s)
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
