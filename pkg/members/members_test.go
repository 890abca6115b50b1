package members

import (
	"log/slog"
	"slices"
	"testing"
	"time"
)

func TestFreshnessIsJudgedAgainstTheLastEchoOfThisNodesOwnHeartbeat(t *testing.T) {
	t0 := time.Unix(1_000, 0)
	stale := 5 * time.Second
	for _, tc := range []struct {
		name      string
		seen      time.Duration // after t0
		echo      time.Duration // after t0; -1 for none yet
		now       time.Duration // after t0
		wantFresh bool
	}{
		{"recent heartbeat", 0, 0, 4 * time.Second, true},
		{"no echo yet: the watcher has not proved current, keep everything", 0, -1, time.Hour, true},
		{"watcher current, heartbeat old: the node stopped writing", 0, 6 * time.Second, 6 * time.Second, false},
		{"watcher cut off since just after the heartbeat: keep it", 0, time.Second, time.Minute, true},
		{"watcher cut off later than stale after the heartbeat: gone", 0, 5*time.Second + time.Millisecond, time.Minute, false},
		{"heartbeat exactly stale before the echo still counts", 0, 5 * time.Second, time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var echo time.Time
			if tc.echo >= 0 {
				echo = t0.Add(tc.echo)
			}
			if got := fresh(t0.Add(tc.seen), echo, t0.Add(tc.now), stale); got != tc.wantFresh {
				t.Fatalf("fresh = %v, want %v", got, tc.wantFresh)
			}
		})
	}
}

// names lists the registry's nodes by name.
func names(r *Registry) []string {
	var out []string
	for _, n := range r.Nodes() {
		out = append(out, n.Name)
	}
	return out
}

func TestAReplayedHeartbeatIsNoSignOfLifeButANewOneIs(t *testing.T) {
	now := time.Unix(1_000, 0)
	r := New(nil, Config{
		Self: func() Info { return Info{Name: "n1"} },
		Now:  func() time.Time { return now },
	}, slog.New(slog.DiscardHandler))
	r.store(Info{Name: "n1"}) // as its own heartbeat does
	r.store(Info{Name: "n2", Updated: 1})
	r.store(Info{Name: "n3", Updated: 1})
	r.echo = now

	// 4 s on, a restarted watcher replays both keys; only n3 writes a new heartbeat. The watcher is current.
	now = now.Add(4 * time.Second)
	r.store(Info{Name: "n2", Updated: 1})
	r.store(Info{Name: "n3", Updated: 2})
	now = now.Add(2 * time.Second)
	r.echo = now
	if got, want := names(r), []string{"n1", "n3"}; !slices.Equal(got, want) {
		t.Fatalf("nodes = %v, want %v: n2 wrote nothing for 6 s", got, want)
	}
}
