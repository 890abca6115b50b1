package clusterview

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/members"
)

var t0 = time.Unix(1_800_000_000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

func testTracker() *Tracker {
	return NewTracker(TrackerConfig{Self: "n1", Stale: 5 * time.Second, Abrupt: 2 * time.Second, HandoffWindow: 5 * time.Second,
		ForgetRooms: time.Minute, ForgetNodes: time.Hour, MaxNodes: 8})
}

// brief renders events compactly for comparison.
func brief(evs []Event) string {
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case KindLease:
			out = append(out, fmt.Sprintf("lease %s %s %s@%d from %s@%d", e.Room, e.How, e.Node, e.Epoch, e.From, e.FromEpoch))
		case KindResumed:
			out = append(out, fmt.Sprintf("resumed %s %s@%d from %s@%d gap %.3f", e.Room, e.Node, e.Epoch, e.From, e.FromEpoch, e.GapMs))
		case KindNode:
			out = append(out, fmt.Sprintf("node %s %s>%s", e.Node, e.From, e.To))
		case KindLeader:
			out = append(out, fmt.Sprintf("leader %s %s>%s", e.Stream, e.From, e.To))
		}
	}
	return strings.Join(out, "; ")
}

func put(room string, rev uint64, node string, epoch uint64) LeaseObs {
	return LeaseObs{Room: room, Rev: rev, Op: LeasePut, Node: node, Epoch: epoch}
}

func TestLeaseEventsSayHowARoomChangedHands(t *testing.T) {
	tr := testTracker()
	step := func(d time.Duration, o LeaseObs, want string, wantChanged bool) {
		t.Helper()
		evs, changed := tr.Lease(at(d), o)
		if got := brief(evs); got != want || changed != wantChanged {
			t.Fatalf("at %v %+v: got %q changed=%v, want %q changed=%v", d, o, got, changed, want, wantChanged)
		}
	}
	// The first replay is the baseline: it shapes what follows but makes no events.
	step(0, put("lobby", 10, "n2", 4), "", true)
	step(0, put("arena", 11, "n3", 1), "", true)
	tr.LeasesCurrent()
	// Renewals, and a restarted watcher's replay, are no news.
	step(250*time.Millisecond, put("lobby", 12, "n2", 4), "", false)
	step(300*time.Millisecond, put("lobby", 12, "n2", 4), "", false)
	step(300*time.Millisecond, put("arena", 11, "n3", 1), "", false)
	// A takeover: another node writes over a lease nobody released.
	step(time.Second, put("lobby", 13, "n3", 5), "lease lobby stolen n3@5 from n2@4", true)
	// A release, then a new holder at once: a handoff.
	step(2*time.Second, LeaseObs{Room: "lobby", Rev: 14, Op: LeaseDelete}, "lease lobby released n3@5 from @0", true)
	step(2100*time.Millisecond, put("lobby", 15, "n1", 6), "lease lobby handoff n1@6 from n3@5", true)
	// The same node again, under a new epoch: it restarted and took its own lease back.
	step(3*time.Second, put("lobby", 16, "n1", 7), "lease lobby reclaimed n1@7 from n1@6", true)
	// Expiry, then an acquisition: taken, not a handoff.
	step(4*time.Second, LeaseObs{Room: "arena", Rev: 17, Op: LeasePurge}, "lease arena expired n3@1 from @0", true)
	step(4100*time.Millisecond, put("arena", 18, "n2", 2), "lease arena taken n2@2 from n3@1", true)
	// A release long before the next acquisition is not a handoff either.
	step(5*time.Second, LeaseObs{Room: "arena", Rev: 19, Op: LeaseDelete}, "lease arena released n2@2 from @0", true)
	step(11*time.Second, put("arena", 20, "n3", 3), "lease arena taken n3@3 from n2@2", true)
	// A new room.
	step(12*time.Second, put("r7", 21, "n2", 1), "lease r7 taken n2@1 from @0", true)
	// A delete of something never seen held is no event.
	step(13*time.Second, LeaseObs{Room: "ghost", Rev: 22, Op: LeaseDelete}, "", true)
	// A corrupt value, and the takeover from it.
	step(14*time.Second, LeaseObs{Room: "r7", Rev: 23, Op: LeasePut, Corrupt: true}, "lease r7 corrupt @0 from n2@1", true)
	step(15*time.Second, put("r7", 24, "n3", 2), "lease r7 stolen n3@2 from @0", true)
	if n, e := tr.Holder("r7"); n != "n3" || e != 2 {
		t.Fatalf("holder of r7 %s@%d, want n3@2", n, e)
	}
}

func TestReleasedRoomsAreForgottenAfterAWhile(t *testing.T) {
	tr := testTracker()
	tr.LeasesCurrent()
	tr.Lease(at(0), put("r1", 1, "n2", 1))
	tr.Lease(at(time.Second), LeaseObs{Room: "r1", Rev: 2, Op: LeaseDelete})
	tr.Lease(at(0), put("held", 3, "n2", 1))
	tr.Sweep(at(30 * time.Second))
	if len(tr.rooms) != 2 {
		t.Fatalf("%d rooms remembered after 30 s, want 2", len(tr.rooms))
	}
	tr.Sweep(at(2 * time.Minute))
	if _, ok := tr.rooms["r1"]; ok || len(tr.rooms) != 1 {
		t.Fatalf("rooms remembered after 2 min: %v; want only the held one", tr.rooms)
	}
}

func TestResumedCarriesTheExactGapAndWhoTookOver(t *testing.T) {
	tr := testTracker()
	tr.Lease(at(0), put("lobby", 1, "n2", 4))
	tr.LeasesCurrent()
	tr.Lease(at(time.Second), put("lobby", 2, "n3", 5))
	got := brief(tr.Resumed(at(1300*time.Millisecond), "lobby", 4, 5, "n3", 812345*time.Microsecond))
	if want := "resumed lobby n3@5 from n2@4 gap 812.345"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// A tick of an epoch this node has not seen the lease of yet (its owners watcher lags): the gap all the
	// same, the owner from the tick, the one before from the lease.
	got = brief(tr.Resumed(at(2*time.Second), "lobby", 5, 7, "n1", 50*time.Millisecond))
	if want := "resumed lobby n1@7 from n3@5 gap 50.000"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = brief(tr.Resumed(at(2*time.Second), "elsewhere", 1, 2, "n2", time.Second))
	if want := "resumed elsewhere n2@2 from @1 gap 1000.000"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// cluster drives Tracker.Nodes with a membership that writes heartbeats each second and routes that come and go.
type cluster struct {
	t       *testing.T
	tr      *Tracker
	now     time.Duration
	beating map[string]bool // writes heartbeats
	listed  map[string]bool // in the membership list
	routed  map[string]bool
	updated map[string]int64
	events  []Event
}

func newCluster(t *testing.T, names ...string) *cluster {
	c := &cluster{t: t, tr: testTracker(), beating: map[string]bool{}, listed: map[string]bool{}, routed: map[string]bool{}, updated: map[string]int64{}}
	for _, n := range names {
		c.beating[n], c.listed[n], c.routed[n] = true, true, n != "n1"
	}
	return c
}

// run advances time in 500 ms samples; a beating node's Updated changes each second.
func (c *cluster) run(d time.Duration, settled bool) {
	for end := c.now + d; c.now < end; {
		c.now += 500 * time.Millisecond
		var ms []members.Info
		for n, l := range c.listed {
			if !l {
				continue
			}
			if c.beating[n] && c.now%time.Second == 0 {
				c.updated[n] = at(c.now).UnixMilli()
			}
			ms = append(ms, members.Info{Name: n, Ready: true, Sockets: 2, Updated: c.updated[n], Admin: "http://" + n})
		}
		c.events = append(c.events, c.tr.Nodes(at(c.now), NodesObs{Members: ms, Routed: c.routed, Majority: true}, settled)...)
	}
}

func (c *cluster) state(name string) string {
	for _, v := range c.tr.NodeViews() {
		if v.Name == name {
			return v.State
		}
	}
	return "(absent)"
}

func (c *cluster) expect(want string) {
	c.t.Helper()
	if got := brief(c.events); got != want {
		c.t.Fatalf("at %v: events %q, want %q", c.now, got, want)
	}
	c.events = nil
}

func TestNodeStatesFromHeartbeatsAndRoutes(t *testing.T) {
	c := newCluster(t, "n1", "n2", "n3")
	c.run(2*time.Second, false)
	c.run(time.Second, true) // settled: still the baseline
	c.expect("")
	for _, n := range []string{"n1", "n2", "n3"} {
		if s := c.state(n); s != StateReady {
			t.Fatalf("%s %s, want ready", n, s)
		}
	}

	// SIGKILL of n2: its route closes at once, while its heartbeats were flowing.
	c.beating["n2"], c.routed["n2"] = false, false
	c.run(500*time.Millisecond, true)
	c.expect("node n2 ready>down")
	// Its heartbeat goes stale and leaves the list: still down, nothing new.
	c.run(4*time.Second, true)
	c.listed["n2"] = false
	c.run(time.Second, true)
	c.expect("")
	if s := c.state("n2"); s != StateDown {
		t.Fatalf("n2 %s after its heartbeat went stale, want down", s)
	}
	// Restarted.
	c.beating["n2"], c.listed["n2"], c.routed["n2"] = true, true, true
	c.run(time.Second, true)
	c.expect("node n2 down>ready")

	// A partition of n3: heartbeats stop first, its route times out 2.5 s later.
	c.beating["n3"] = false
	c.run(2500*time.Millisecond, true)
	c.expect("")
	c.routed["n3"] = false
	c.run(500*time.Millisecond, true)
	c.expect("node n3 ready>cut_off")
	c.run(3*time.Second, true)
	c.listed["n3"] = false
	c.run(time.Second, true)
	c.expect("")
	if s := c.state("n3"); s != StateCutOff {
		t.Fatalf("n3 %s after its heartbeat went stale, want still cut_off", s)
	}
	// Healed.
	c.beating["n3"], c.listed["n3"], c.routed["n3"] = true, true, true
	c.run(time.Second, true)
	c.expect("node n3 cut_off>ready")

	// A graceful stop of n2: it deletes its heartbeat at once and lame-ducks its routes for a few seconds.
	c.run(500*time.Millisecond, true)
	c.beating["n2"], c.listed["n2"] = false, false
	c.run(500*time.Millisecond, true)
	c.expect("node n2 ready>draining")
	c.run(2*time.Second, true)
	c.routed["n2"] = false
	c.run(500*time.Millisecond, true)
	c.expect("node n2 draining>left")
	c.beating["n2"], c.listed["n2"], c.routed["n2"] = true, true, true
	c.run(time.Second, true)
	c.expect("node n2 left>ready")

	// Heartbeats that keep arriving through the others while this node has no route to n3: cut off from here.
	c.routed["n3"] = false
	c.run(2*time.Second, true)
	if s := c.state("n3"); s != StateCutOff {
		t.Fatalf("n3 %s while its heartbeats arrive without a route, want cut_off", s)
	}
	c.events = nil
	c.routed["n3"] = true
	c.run(time.Second, true)
	c.expect("node n3 cut_off>ready")
}

func TestThisNodeIsCutOffWithoutAMajorityAndDrainingOnShutdown(t *testing.T) {
	tr := testTracker()
	self := []members.Info{{Name: "n1", Ready: true, Updated: 1}}
	tr.Nodes(at(0), NodesObs{Members: self, Majority: true}, true)
	got := brief(tr.Nodes(at(time.Second), NodesObs{Members: self, Majority: false}, true))
	if want := "node n1 ready>cut_off"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = brief(tr.Nodes(at(2*time.Second), NodesObs{Members: self, Majority: true, Draining: true}, true))
	if want := "node n1 cut_off>draining"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestGoneNodesAreForgottenAndBounded(t *testing.T) {
	tr := testTracker() // MaxNodes 8
	var ms []members.Info
	routed := map[string]bool{}
	for i := range 12 {
		name := fmt.Sprintf("x%02d", i)
		ms = append(ms, members.Info{Name: name, Ready: true, Updated: 1})
		routed[name] = true
	}
	self := members.Info{Name: "n1", Ready: true, Updated: 1}
	tr.Nodes(at(0), NodesObs{Members: append(ms, self), Routed: routed, Majority: true}, true)
	if n := len(tr.NodeViews()); n != 13 {
		t.Fatalf("%d nodes while all are listed, want 13 (listed nodes are never dropped)", n)
	}
	// They all die, one each second (oldest gone first when over the bound).
	for i := range 12 {
		ms = ms[1:]
		delete(routed, fmt.Sprintf("x%02d", i))
		tr.Nodes(at(time.Duration(10+i)*time.Second), NodesObs{Members: append(ms, self), Routed: routed, Majority: true}, true)
		if n, bound := len(tr.NodeViews()), max(8, len(ms)+1); n > bound {
			t.Fatalf("%d nodes remembered with %d listed, want at most %d", n, len(ms)+1, bound)
		}
	}
	views := tr.NodeViews()
	if views[0].Name != "n1" || views[1].Name != "x05" || views[len(views)-1].Name != "x11" {
		t.Fatalf("kept %v, want n1 and the seven most recently gone (x05..x11)", views)
	}
	tr.Nodes(at(2*time.Hour), NodesObs{Members: []members.Info{self}, Majority: true}, true)
	if views := tr.NodeViews(); len(views) != 1 {
		t.Fatalf("after an hour: %v, want only n1", views)
	}
}

func TestLeaderEvents(t *testing.T) {
	tr := testTracker()
	l := map[string]string{MetaStream: "n1", "KV_owners": "n2", "INPUTS": "n3"}
	if evs := tr.Leaders(at(0), l, false); len(evs) != 0 {
		t.Fatalf("baseline made events: %v", brief(evs))
	}
	tr.Leaders(at(time.Second), l, true)
	got := brief(tr.Leaders(at(2*time.Second), map[string]string{MetaStream: "n1", "KV_owners": "", "INPUTS": "n3"}, true))
	if want := "leader KV_owners n2>"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = brief(tr.Leaders(at(3*time.Second), map[string]string{MetaStream: "n3", "KV_owners": "n1"}, true))
	if want := "leader INPUTS n3>; leader KV_owners >n1; leader meta n1>n3"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if m := tr.LeaderMap(); m["KV_owners"] != "n1" || m[MetaStream] != "n3" || len(m) != 2 {
		t.Fatalf("leaders %v", m)
	}
}

// The node's own heartbeat lags the prober: until it says ready too, the baseline goes on.
func TestTheBaselineEndsWhenThisNodeIsDrawnReady(t *testing.T) {
	tr := testTracker()
	self := members.Info{Name: "n1", Ready: false, Updated: 1}
	n2 := members.Info{Name: "n2", Ready: true, Updated: 1}
	obs := func(self members.Info, ms ...members.Info) NodesObs {
		return NodesObs{Members: append([]members.Info{self}, ms...), Routed: map[string]bool{"n2": true}, Majority: true}
	}
	if evs := tr.Nodes(at(0), obs(self, n2), true); len(evs) != 0 {
		t.Fatalf("events while this node's heartbeat says not ready: %s", brief(evs))
	}
	self.Ready, self.Updated = true, 2
	if evs := tr.Nodes(at(time.Second), obs(self, n2), true); len(evs) != 0 {
		t.Fatalf("this node becoming ready made events: %s", brief(evs))
	}
	if got := brief(tr.Nodes(at(2*time.Second), obs(self), true)); got != "node n2 ready>draining" {
		t.Fatalf("after the baseline: %q", got)
	}
}
