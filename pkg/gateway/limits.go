package gateway

import "time"

// bucket is a token bucket: rate tokens per second, up to burst. Time is an input.
type bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// allow takes one token if there is one. A now before the latest time seen adds nothing (and does not move the
// refill point back, which would count the same interval twice).
func (b *bucket) allow(now time.Time) bool {
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(b.burst, b.tokens+d*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// budget counts errors in a sliding window and says when a connection has used up its allowance.
type budget struct {
	max    int
	window time.Duration
	times  []time.Time
}

// add records an error at now and reports whether the budget is exceeded.
func (b *budget) add(now time.Time) bool {
	cut := 0
	for cut < len(b.times) && now.Sub(b.times[cut]) >= b.window {
		cut++
	}
	b.times = append(b.times[cut:], now)
	return len(b.times) > b.max
}
