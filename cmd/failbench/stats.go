package main

import (
	"math"
	"slices"
	"sort"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of xs: the smallest value with at least p %
// of the samples at or below it. With 20 samples p99 is the largest; with none it is 0.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// summary is the distribution of a set of durations.
type summary struct {
	N             int
	P50, P99, Max time.Duration
}

func summarize(xs []time.Duration) summary {
	return summary{N: len(xs), P50: percentile(xs, 50), P99: percentile(xs, 99), Max: percentile(xs, 100)}
}

// longestGap returns the longest stretch of [start, end] that contains no tick. ticks must be sorted; ticks
// outside the window only bound the stretches at its edges (the window is clipped, never extended).
func longestGap(ticks []time.Time, start, end time.Time) time.Duration {
	if !end.After(start) {
		return 0
	}
	i := sort.Search(len(ticks), func(i int) bool { return !ticks[i].Before(start) })
	prev := start
	var gap time.Duration
	for ; i < len(ticks) && !ticks[i].After(end); i++ {
		gap = max(gap, ticks[i].Sub(prev))
		prev = ticks[i]
	}
	return max(gap, end.Sub(prev))
}

// stretches returns the tick-free stretches of [start, end] longer than min, as [from, to] pairs.
func stretches(ticks []time.Time, start, end time.Time, minLen time.Duration) [][2]time.Time {
	var out [][2]time.Time
	i := sort.Search(len(ticks), func(i int) bool { return !ticks[i].Before(start) })
	prev := start
	for ; i < len(ticks) && !ticks[i].After(end); i++ {
		if ticks[i].Sub(prev) > minLen {
			out = append(out, [2]time.Time{prev, ticks[i]})
		}
		prev = ticks[i]
	}
	if end.Sub(prev) > minLen {
		out = append(out, [2]time.Time{prev, end})
	}
	return out
}

// publish is one input a bot sent: its seq and when the publish was issued.
type publish struct {
	Seq uint64
	At  time.Time
}

// ackTick is an accepted tick as the bot's node saw it: when, and the bot player's ack in it.
type ackTick struct {
	At  time.Time
	Ack uint64
}

// inputLatencies returns, for every publish, the time until the first tick received at or after it whose ack
// covers its seq; publishes no tick covers are counted as unapplied. ticks must be sorted by At.
func inputLatencies(pubs []publish, ticks []ackTick) (lat []time.Duration, unapplied int) {
	for _, d := range applyDelays(pubs, ticks) {
		if d < 0 {
			unapplied++
			continue
		}
		lat = append(lat, d)
	}
	return lat, unapplied
}

// applyDelays returns, for each publish in order, its latency as inputLatencies defines it, or -1 when no tick
// covers it.
func applyDelays(pubs []publish, ticks []ackTick) []time.Duration {
	out := make([]time.Duration, len(pubs))
	for k, p := range pubs {
		out[k] = -1
		i := sort.Search(len(ticks), func(i int) bool { return !ticks[i].At.Before(p.At) })
		for ; i < len(ticks); i++ {
			if ticks[i].Ack >= p.Seq {
				out[k] = ticks[i].At.Sub(p.At)
				break
			}
		}
	}
	return out
}
