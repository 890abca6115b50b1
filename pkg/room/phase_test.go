package room

import (
	"fmt"
	"testing"
	"time"
)

func TestTickSlotsFallOnTheRoomsPhaseAtLeastHalfAPeriodAhead(t *testing.T) {
	period := 50 * time.Millisecond
	base := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	for _, phase := range []time.Duration{0, time.Millisecond, 25 * time.Millisecond, period - 1} {
		for d := time.Duration(0); d < 3*period; d += 333 * time.Microsecond {
			now := base.Add(d)
			next := nextTick(now, period, phase)
			if got := time.Duration(next.UnixNano() % int64(period)); got != phase {
				t.Fatalf("phase %v, now +%v: next slot at offset %v", phase, d, got)
			}
			if ahead := next.Sub(now); ahead <= period/2 || ahead > period+period/2 {
				t.Fatalf("phase %v, now +%v: next slot %v ahead, want (period/2, 1.5 period]", phase, d, ahead)
			}
		}
	}
}

func TestATimerFiringOnItsSlotOrSlightlyOffItGetsTheFollowingSlot(t *testing.T) {
	period := 50 * time.Millisecond
	phase := 7 * time.Millisecond
	slot := time.Unix(1_800_000_000, int64(phase))
	for _, skew := range []time.Duration{-2 * time.Millisecond, 0, 2 * time.Millisecond, 20 * time.Millisecond} {
		if got := nextTick(slot.Add(skew), period, phase); !got.Equal(slot.Add(period)) {
			t.Errorf("fired at slot%+v: next %v, want %v", skew, got.Sub(slot), period)
		}
	}
}

func TestRoomsTickAtDifferentMomentsOfThePeriod(t *testing.T) {
	period := 50 * time.Millisecond
	// 20 rooms named like the benchmark's: their phases should cover the period, not sit together.
	buckets := make(map[time.Duration]int)
	for i := 0; i < 20; i++ {
		p := tickPhase(fmt.Sprintf("room-%d", i), period)
		if p < 0 || p >= period {
			t.Fatalf("phase %v outside [0, %v)", p, period)
		}
		if p != tickPhase(fmt.Sprintf("room-%d", i), period) {
			t.Fatal("phase not deterministic")
		}
		buckets[p/(10*time.Millisecond)]++
	}
	if len(buckets) < 4 {
		t.Fatalf("20 rooms fall in %d of 5 tenths-of-period buckets: %v", len(buckets), buckets)
	}
	if tickPhase("lobby", 0) != 0 {
		t.Fatal("zero period: want phase 0")
	}
}
