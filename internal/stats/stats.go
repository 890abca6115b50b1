// Package stats computes what the benchmarks and the chaos suite report about their samples: nearest-rank
// percentiles, and the stretches of a timeline without an event (a tick gap). It is pure: no I/O, no clock, no
// goroutines.
package stats

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"
)

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of xs: the smallest value with at least p % of
// the samples at or below it; with 20 samples p99 is the largest; with none it is the zero value. xs is not
// changed.
func Percentile[T cmp.Ordered](xs []T, p float64) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return PercentileSorted(s, p)
}

// PercentileSorted is Percentile of samples already sorted ascending.
func PercentileSorted[T cmp.Ordered](sorted []T, p float64) T {
	var zero T
	if len(sorted) == 0 {
		return zero
	}
	// The epsilon keeps a rank that is a whole number in exact arithmetic (99.9 % of 1000) from rounding up.
	rank := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Gap is a stretch [From, To] of a timeline without an event.
type Gap struct {
	From, To time.Duration
}

// Len is the gap's length.
func (g Gap) Len() time.Duration { return g.To - g.From }

// Longest is the longest stretch of the window [from, to] without an event of at (sorted); events outside the
// window only bound the stretches at its edges (the window is clipped, never extended). Of equal stretches the
// first counts.
func Longest(at []time.Duration, from, to time.Duration) Gap {
	longest := Gap{From: from, To: from}
	walk(at, from, to, func(g Gap) {
		if g.Len() > longest.Len() {
			longest = g
		}
	})
	return longest
}

// Longer lists, in order, the stretches of the window [from, to] without an event of at (sorted) that are longer
// than minLen.
func Longer(at []time.Duration, from, to, minLen time.Duration) []Gap {
	var out []Gap
	walk(at, from, to, func(g Gap) {
		if g.Len() > minLen {
			out = append(out, g)
		}
	})
	return out
}

// walk calls f with every stretch between the events of at inside [from, to] and the window's edges.
func walk(at []time.Duration, from, to time.Duration, f func(Gap)) {
	if to <= from {
		return
	}
	i := sort.Search(len(at), func(i int) bool { return at[i] >= from })
	prev := from
	for ; i < len(at) && at[i] <= to; i++ {
		f(Gap{From: prev, To: at[i]})
		prev = at[i]
	}
	f(Gap{From: prev, To: to})
}

// Offsets are the times ts as durations since t0, for the functions above.
func Offsets(ts []time.Time, t0 time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(t0)
	}
	return out
}
