package stats

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
		if got := Percentile(c.xs, c.p); got != c.want {
			t.Errorf("%s: Percentile(%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
	before := slices.Clone(twenty)
	Percentile(twenty, 50)
	if !slices.Equal(before, twenty) {
		t.Error("Percentile sorted its input in place")
	}
	big := make([]float64, 10000)
	for i := range big {
		big[i] = float64(i + 1)
	}
	if p := PercentileSorted(big, 99.9); p != 9990 {
		t.Errorf("p99.9 of 1..10000 = %v, want 9990 (not rounded up)", p)
	}
}

func TestGaps(t *testing.T) {
	cases := []struct {
		name     string
		at       []int
		from, to int
		want     Gap
	}{
		{"regular", []int{0, 50, 100, 150, 200}, 0, 200, Gap{0, msD(50)}},
		{"hole in the middle", []int{0, 50, 100, 900, 950, 1000}, 0, 1000, Gap{msD(100), msD(900)}},
		{"leading edge is clipped to the window", []int{-500, 100, 150}, 0, 150, Gap{0, msD(100)}},
		{"trailing stretch counts: events stopped", []int{0, 50}, 0, 1000, Gap{msD(50), msD(1000)}},
		{"no event at all", nil, 0, 700, Gap{0, msD(700)}},
		{"events outside on both sides only bound", []int{-100, 1100}, 0, 1000, Gap{0, msD(1000)}},
		{"events exactly on the edges", []int{0, 1000}, 0, 1000, Gap{0, msD(1000)}},
		{"empty window", []int{0, 50}, 100, 100, Gap{msD(100), msD(100)}},
	}
	for _, c := range cases {
		var at []time.Duration
		for _, m := range c.at {
			at = append(at, msD(m))
		}
		if got := Longest(at, msD(c.from), msD(c.to)); got != c.want {
			t.Errorf("%s: Longest = %v, want %v", c.name, got, c.want)
		}
	}
	at := []time.Duration{0, msD(50), msD(600), msD(650)}
	if got := Longer(at, 0, msD(1000), msD(200)); !slices.Equal(got, []Gap{{msD(50), msD(600)}, {msD(650), msD(1000)}}) {
		t.Errorf("Longer = %v", got)
	}
	t0 := time.Unix(100, 0)
	if got := Offsets([]time.Time{t0.Add(-time.Second), t0.Add(msD(5))}, t0); !slices.Equal(got, []time.Duration{-time.Second, msD(5)}) {
		t.Errorf("Offsets = %v", got)
	}
}
