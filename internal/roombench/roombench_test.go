package roombench

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/cli"
)

func TestPercentileIsTheNearestRank(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 3}, {0.99, 5}, {1, 5}, {0.2, 1}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 0.99) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestConfigNeedsABinaryAndRoomCounts(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := DefaultConfig()
	o.Bin = bin
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Config){
		"no binary":    func(o *Config) { o.Bin = "" },
		"no rooms":     func(o *Config) { o.Rooms = nil },
		"zero rooms":   func(o *Config) { o.Rooms = []int{10, 0} },
		"no clients":   func(o *Config) { o.Clients = 0 },
		"short":        func(o *Config) { o.Duration = time.Millisecond },
		"no tick rate": func(o *Config) { o.TickRate = 0 },
	} {
		c := o
		change(&c)
		var ue *cli.UsageError
		if err := c.Validate(); !errors.As(err, &ue) {
			t.Errorf("%s: Validate() = %v, want a usage error", name, err)
		}
	}
}

// A room's gap is measured from the last tick of the old epoch any of its clients got to the first tick of a
// newer epoch any of them got; a late tick of the old epoch after the kill counts as before.
func TestARoomsGapSpansItsClientsAndIgnoresLateOldTicks(t *testing.T) {
	t0 := time.Unix(100, 0)
	mk := func(last, first time.Duration, epoch uint64) *client {
		c := &client{lastPre: t0.Add(last), epoch: epoch}
		if first > 0 {
			c.firstNew, c.newEpoch, c.newOwner = t0.Add(first), epoch, "n2"
		}
		return c
	}
	a, b := mk(10*time.Millisecond, 600*time.Millisecond, 4), mk(30*time.Millisecond, 550*time.Millisecond, 4)
	last, first, owner, ok := roomGap([]*client{a, b}, 3)
	if !ok || owner != "n2" || first.Sub(last) != 520*time.Millisecond {
		t.Fatalf("gap %v by %s (%v), want 520ms by n2", first.Sub(last), owner, ok)
	}
	if _, _, _, ok := roomGap([]*client{mk(10*time.Millisecond, 0, 3)}, 3); ok {
		t.Fatal("a room without a newer epoch recovered")
	}
}

// A client's gap ends at the first tick of the new epoch: the new owner's later ticks do not move the last tick
// before the gap (they did, and made gaps negative when the benchmark looked at a room after its second new tick).
func TestAClientsGapEndsAtTheNewEpochsFirstTick(t *testing.T) {
	t0 := time.Unix(100, 0)
	c := &client{}
	owner := func() string { return "n2" }
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c.noteFailoverLocked(at(0), 1, owner)
	c.noteFailoverLocked(at(50), 1, owner)
	c.markKill(at(60))
	c.noteFailoverLocked(at(100), 1, owner) // the old owner's tick in flight at the kill
	c.noteFailoverLocked(at(700), 2, owner)
	c.noteFailoverLocked(at(750), 2, owner)
	c.noteFailoverLocked(at(800), 2, owner)
	last, first, by, ok := c.failoverTimes(1)
	if !ok || by != "n2" || !last.Equal(at(100)) || !first.Equal(at(700)) {
		t.Fatalf("gap from %v to %v by %s (%v), want from 100ms to 700ms by n2", last.Sub(t0), first.Sub(t0), by, ok)
	}
}

func TestReportShowsTheDifferencesAgainstTheFirstRoomCount(t *testing.T) {
	r := Report{o: Config{Clients: 100, TickRate: 20, Failover: true, CommandLine: "go run ./cmd/roombench"}, load: []float64{1, 2},
		results: []result{
			{Rooms: 10, Clients: 100, Welcomed: 100, Delivered: 1, CPU: 400, RSSMB: 300, Writes: map[string]float64{}},
			{Rooms: 110, Clients: 100, Welcomed: 100, Delivered: 0.999, CPU: 430, RSSMB: 310, Writes: map[string]float64{},
				KilledName: "n2", KilledRooms: 55, Measured: 50, GapP99: 700 * time.Millisecond, TakenBy: map[string]int{"n1": 30, "n3": 20}},
		}}
	var buf bytes.Buffer
	r.Write(&buf, true)
	out := buf.String()
	for _, want := range []string{"| 110 | 100/100 | 99.90% |", "| 0.300 ms |", "| 102.4 KB |", "| 110 | n2 | 55 | 50 |", "n1 30, n3 20"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
