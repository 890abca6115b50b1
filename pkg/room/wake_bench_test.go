package room

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTickWakeups measures what waking a room for its tick costs in CPU, apart from the tick's own work, for
// the ways a node could wake its rooms: each owner loop on its own timer at the room's phase (what term.loop
// does), the same with the phases in 5 ms slots, one clock goroutine waking the loops through channels, and one
// goroutine stepping every room itself. One op is one tick period of every room; the CPU of the whole process
// (getrusage) per room tick is reported as cpu-µs/room-tick. Run it alone, for seconds:
//
//	go test -run '^$' -bench TickWakeups -benchtime 4s ./pkg/room/
func BenchmarkTickWakeups(b *testing.B) {
	const rooms = 500
	period := 50 * time.Millisecond
	phases := make([]time.Duration, rooms)
	for i := range phases {
		phases[i] = tickPhase(fmt.Sprintf("room-%d", i), period)
	}
	slotted := func(slot time.Duration) []time.Duration {
		out := make([]time.Duration, rooms)
		for i, p := range phases {
			out[i] = p / slot * slot
		}
		return out
	}
	var mu sync.Mutex
	var sink [rooms][64]uint64
	work := func(i int) { // a stand-in for the tick: touches the room's own memory
		mu.Lock()
		for k := range sink[i] {
			sink[i][k]++
		}
		mu.Unlock()
	}
	timers := func(phases []time.Duration) func(n int) {
		return func(n int) {
			var wg sync.WaitGroup
			for i := range rooms {
				wg.Add(1)
				go func() {
					defer wg.Done()
					timer := time.NewTimer(time.Until(nextTick(time.Now(), period, phases[i])))
					defer timer.Stop()
					for range n {
						<-timer.C
						timer.Reset(time.Until(nextTick(time.Now(), period, phases[i])))
						work(i)
					}
				}()
			}
			wg.Wait()
		}
	}
	// bySlot runs each room's tick n times, from one goroutine that wakes every millisecond and hands the rooms
	// whose phase falls in that millisecond to tick.
	bySlot := func(n int, tick func(i int)) {
		slots := make([][]int, period/time.Millisecond)
		for i, p := range phases {
			s := p / time.Millisecond
			slots[s] = append(slots[s], i)
		}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for done := 0; done < n*rooms; {
			now := <-t.C
			for _, i := range slots[now.UnixMilli()%int64(len(slots))] {
				tick(i)
				done++
			}
		}
	}
	modes := []struct {
		name string
		run  func(n int)
	}{
		{"timer-per-room", timers(phases)},
		{"timer-per-room-5ms-slots", timers(slotted(5 * time.Millisecond))},
		{"clock-wakes-loops", func(n int) {
			var wg sync.WaitGroup
			wake := make([]chan struct{}, rooms)
			for i := range wake {
				wake[i] = make(chan struct{}, 1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range wake[i] {
						work(i)
					}
				}()
			}
			bySlot(n, func(i int) { wake[i] <- struct{}{} })
			for _, c := range wake {
				close(c)
			}
			wg.Wait()
		}},
		{"one-goroutine-steps", func(n int) { bySlot(n, work) }},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			before := cpuTime(b)
			b.ResetTimer()
			m.run(b.N)
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N*rooms), "cpu-µs/room-tick")
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
