package gateway

import (
	"encoding/binary"
	"testing"
	"time"
)

// maxSteps bounds the calls per fuzz input (the bucket check is quadratic).
const maxSteps = 300

// steps turns fuzz bytes into signed time steps: each two bytes are a step in milliseconds in [-2048, 63487].
// Negative steps stand for a clock that went back (a wall clock; the gateway passes time.Now, whose monotonic
// reading never does).
func steps(data []byte) []time.Duration {
	out := make([]time.Duration, 0, len(data)/2)
	for i := 0; i+1 < len(data) && len(out) < maxSteps; i += 2 {
		v := int(binary.LittleEndian.Uint16(data[i:]))
		out = append(out, time.Duration(v-2048)*time.Millisecond)
	}
	return out
}

// FuzzBucket checks the token bucket against its contract, with time as the input:
//   - over any run of calls it allows at most burst plus rate times the time the clock advanced (the clock as
//     the highest time seen: going back and forth must not mint tokens);
//   - a call a full token period after the clock's last reading is always allowed;
//   - a fresh bucket allows a burst of calls at one instant, and not one more.
func FuzzBucket(f *testing.F) {
	f.Add(uint8(30), uint8(60), []byte{})
	f.Add(uint8(30), uint8(60), []byte{0, 8, 0, 8, 0, 8, 0, 8})
	f.Add(uint8(1), uint8(1), []byte{0xff, 0xff, 0x00, 0x00, 0xff, 0xff})
	f.Add(uint8(5), uint8(3), []byte{0x10, 0x27, 0x00, 0x00, 0x10, 0x27, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, rate8, burst8 uint8, data []byte) {
		rate := float64(rate8%100) + 1
		burst := int(burst8%100) + 1
		t0 := time.Unix(1_700_000_000, 0)
		b := newBucket(rate, burst, t0)
		for i := range burst {
			if !b.allow(t0) {
				t.Fatalf("fresh bucket (rate %v, burst %d) refused call %d at one instant", rate, burst, i+1)
			}
		}
		if b.allow(t0) {
			t.Fatalf("fresh bucket (rate %v, burst %d) allowed %d calls at one instant", rate, burst, burst+1)
		}

		ds := steps(data)
		now := t0
		high := t0 // the clock: the highest time seen
		highs := []time.Time{high}
		allowed := []int{0} // allowed[i]: calls allowed among the first i
		for i, d := range ds {
			now = now.Add(d)
			ok := b.allow(now)
			if b.tokens < 0 || b.tokens > float64(burst) {
				t.Fatalf("step %d: tokens %v outside [0, %d]", i, b.tokens, burst)
			}
			period := time.Duration(float64(time.Second)/rate) + time.Microsecond
			if !ok && now.Sub(high) >= period {
				t.Fatalf("step %d: refused %v after the clock's last reading (period %v)", i, now.Sub(high), period)
			}
			if now.After(high) {
				high = now
			}
			highs = append(highs, high)
			n := allowed[len(allowed)-1]
			if ok {
				n++
			}
			allowed = append(allowed, n)
		}
		// Every run of calls i+1..j: allowed <= burst + rate * (clock at j - clock before i+1).
		for i := 0; i < len(allowed); i++ {
			for j := i + 1; j < len(allowed); j++ {
				got := allowed[j] - allowed[i]
				limit := float64(burst) + rate*highs[j].Sub(highs[i]).Seconds() + 1e-6
				if float64(got) > limit {
					t.Fatalf("calls %d..%d: %d allowed over %v of clock, limit %.3f (rate %v, burst %d)",
						i+1, j, got, highs[j].Sub(highs[i]), limit, rate, burst)
				}
			}
		}
	})
}

// FuzzBudget checks the error budget against a model: add reports true exactly when more than max errors fell
// within the last window (the current one included), and it keeps no more than those.
func FuzzBudget(f *testing.F) {
	f.Add(uint8(20), uint16(10000), []byte{})
	f.Add(uint8(20), uint16(10000), make([]byte, 60))
	f.Add(uint8(2), uint16(100), []byte{0x32, 0, 0x32, 0, 0x32, 0, 0x64, 0})
	f.Add(uint8(1), uint16(1), []byte{0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, max8 uint8, windowMS uint16, data []byte) {
		max := int(max8%50) + 1
		window := time.Duration(int(windowMS)+1) * time.Millisecond
		b := &budget{max: max, window: window}
		now := time.Unix(1_700_000_000, 0)
		var all []time.Time
		for i, d := range steps(data) {
			if d < 0 {
				d = -d // the gateway's clock (time.Now, monotonic) never goes back
			}
			now = now.Add(d)
			all = append(all, now)
			in := 0
			for _, at := range all {
				if now.Sub(at) < window {
					in++
				}
			}
			if got, want := b.add(now), in > max; got != want {
				t.Fatalf("error %d at +%v: add = %v, want %v (%d errors within %v, budget %d)", i, now.Sub(all[0]), got, want, in, window, max)
			}
			if len(b.times) != in {
				t.Fatalf("error %d: budget keeps %d times, want the %d within the window", i, len(b.times), in)
			}
		}
	})
}

// TestBucketRefillsAtItsRate is the plain case: a drained bucket gives one token per 1/rate.
func TestBucketRefillsAtItsRate(t *testing.T) {
	t0 := time.Unix(0, 0)
	b := newBucket(30, 60, t0)
	n := 0
	for b.allow(t0) {
		n++
	}
	if n != 60 {
		t.Fatalf("burst %d, want 60", n)
	}
	got := 0
	for i := 1; i <= 300; i++ { // 10 s at one call every 1/30 s, plus a bit of margin per call
		if b.allow(t0.Add(time.Duration(i)*(time.Second/30) + time.Microsecond)) {
			got++
		}
	}
	if got != 300 {
		t.Fatalf("%d of 300 calls at the sustained rate allowed", got)
	}
	if b.allow(t0.Add(10*time.Second + time.Millisecond)) {
		t.Fatal("a call right after the last one was allowed with an empty bucket")
	}
}

// TestBudgetClosesOnTheTwentyFirstErrorInTenSeconds is the documented default.
func TestBudgetClosesOnTheTwentyFirstErrorInTenSeconds(t *testing.T) {
	t0 := time.Unix(0, 0)
	b := &budget{max: 20, window: 10 * time.Second}
	for i := range 20 {
		if b.add(t0.Add(time.Duration(i) * 400 * time.Millisecond)) {
			t.Fatalf("error %d exceeded the budget", i+1)
		}
	}
	// 20 errors in [0, 7.6 s]: the first has left the window at 10 s, so the 21st at 10 s is fine ...
	if b.add(t0.Add(10 * time.Second)) {
		t.Fatal("an error after the first left the window exceeded the budget")
	}
	// ... but another right after is the 21st within 10 s.
	if !b.add(t0.Add(10*time.Second + time.Millisecond)) {
		t.Fatal("21 errors within 10 s did not exceed the budget")
	}
}
