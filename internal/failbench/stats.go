package failbench

import (
	"sort"
	"time"

	"github.com/tickmesh/tickmesh/internal/stats"
)

// summary is the distribution of a set of durations.
type summary struct {
	N             int
	P50, P99, Max time.Duration
}

func summarize(xs []time.Duration) summary {
	return summary{N: len(xs), P50: stats.Percentile(xs, 50), P99: stats.Percentile(xs, 99), Max: stats.Percentile(xs, 100)}
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
