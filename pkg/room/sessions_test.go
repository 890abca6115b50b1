package room

import (
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/lease"
)

// A peer's session counts as settled for balance once it has been known for balanceSettle: renewals keep the
// time it was first seen, a new session of the node (after a restart, a thaw, a healed partition) starts it
// again, and so does a session forgotten and seen again.
func TestAPeerSessionSettlesForBalanceOnlyAfterItHasBeenKnownForAWhile(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := &Manager{sessions: map[string]peerSession{}}
	s1 := lease.SessionValue{Node: "n2", Session: "s1"}
	m.sessions["n2"] = m.sessions["n2"].renewed(s1, 1, t0)
	for i := range 20 { // renewed four times a second
		now := t0.Add(time.Duration(i+1) * 250 * time.Millisecond)
		m.sessions["n2"] = m.sessions["n2"].renewed(s1, uint64(i+2), now)
		if got, want := m.settledLocked("n2", now), now.Sub(t0) >= balanceSettle; got != want {
			t.Fatalf("after %v: settled %v, want %v", now.Sub(t0), got, want)
		}
	}
	t1 := t0.Add(6 * time.Second)
	m.sessions["n2"] = m.sessions["n2"].renewed(lease.SessionValue{Node: "n2", Session: "s2"}, 30, t1)
	if m.settledLocked("n2", t1.Add(balanceSettle-time.Millisecond)) || !m.settledLocked("n2", t1.Add(balanceSettle)) {
		t.Fatal("a new session of the node must settle afresh")
	}
	delete(m.sessions, "n2") // fenced
	t2 := t1.Add(10 * time.Second)
	m.sessions["n2"] = m.sessions["n2"].renewed(lease.SessionValue{Node: "n2", Session: "s2"}, 40, t2)
	if m.settledLocked("n2", t2.Add(time.Second)) {
		t.Fatal("a session seen again after it was forgotten must settle afresh")
	}
	if m.settledLocked("n3", t2) {
		t.Fatal("a node without a session is not settled")
	}
}

func TestAnOrphanWaitsForAFollowerOnlyWhenAnotherCandidateCouldBeOne(t *testing.T) {
	defer0 := 250 * time.Millisecond
	for _, c := range []struct {
		name              string
		following, leader bool
		rank, n           int
		want              time.Duration
	}{
		{"a follower goes first", true, false, 1, 2, 0},
		{"the only candidate goes at once", false, false, 0, 1, 0},
		{"first of two non-followers: one step for a follower", false, false, 0, 2, rankStep},
		{"second of two", false, false, 1, 2, 2 * rankStep},
		{"a stream leader comes after every candidate", true, true, 2, 2, 3*rankStep + defer0},
		{"not a candidate (rank n)", false, false, 1, 1, 2 * rankStep},
	} {
		if got := adoptDelay(c.following, c.leader, c.rank, c.n, defer0); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
