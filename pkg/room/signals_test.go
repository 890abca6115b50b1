package room_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/room"
)

// The tick signal of the takeover rule (a holder's renewals and ticks both silent) comes from the frames the
// owners always publish, not from the JSON ticks they publish only while something listens. On an idle,
// healthy cluster in which every node serves every room and nothing listens to the JSON ticks, the owners
// publish none, every node's relay hears every room, and no room changes hands for 20 s. Then a frozen owner's
// rooms are still taken over while it is frozen.
func TestAnIdleClusterKeepsItsOwnersOnFramesAloneAndAFrozenOwnerIsStillTakenOver(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	owner(t, c, 0)
	n1 := c.Member("n1").Node
	rooms := openRooms(t, c, n1, "calm", 6)
	for _, m := range c.Members() {
		for _, r := range rooms {
			t.Cleanup(m.Node.Rooms().Want(r))
		}
	}
	rooms = append(rooms, room.Lobby)

	// holders reads every room's owner and epoch as every node sees them ("" when the nodes disagree).
	holders := func() map[string]string {
		out := map[string]string{}
		for _, r := range rooms {
			for i, m := range c.Members() {
				n, e := m.Node.Rooms().Owner(r)
				h := fmt.Sprintf("%s/%d", n, e)
				if i > 0 && out[r] != h || n == "" {
					h = ""
				}
				out[r] = h
			}
		}
		return out
	}
	// Balance and placement settle: the same holders, agreed by every node, for 3 s.
	var settled map[string]string
	since := time.Now()
	testingutil.WaitFor(t, 90*time.Second, "owners settled", func() bool {
		time.Sleep(250 * time.Millisecond)
		h := holders()
		same := len(h) == len(settled)
		for r, v := range h {
			same = same && v != "" && settled[r] == v
		}
		if !same {
			settled, since = h, time.Now()
		}
		return time.Since(since) >= 3*time.Second
	})
	owners := map[string]string{} // room → owner
	for _, r := range rooms {
		owners[r], _ = n1.Rooms().Owner(r)
	}
	jsonTicks := func() map[string]int {
		out := map[string]int{}
		for _, r := range rooms {
			out[r] = c.Metric(owners[r], fmt.Sprintf(`tickmesh_room_json_ticks_total{room=%q}`, r))
		}
		return out
	}
	jsonBefore := jsonTicks()

	const window = 20 * time.Second
	loudest := time.Duration(0) // the longest silence of a room on a node's relay
	for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for _, m := range c.Members() {
			for _, r := range rooms {
				d, ok := m.Node.Rooms().Relay().Silence(r)
				if !ok {
					t.Fatalf("%s does not follow %s, which it serves", m.Name, r)
				}
				loudest = max(loudest, d)
			}
		}
	}
	if h := holders(); fmt.Sprint(h) != fmt.Sprint(settled) {
		t.Errorf("rooms changed hands on an idle, healthy cluster within %v: %v, then %v", window, settled, h)
	}
	if got := jsonTicks(); fmt.Sprint(got) != fmt.Sprint(jsonBefore) {
		t.Errorf("JSON ticks published while nothing listened to them: %v, then %v", jsonBefore, got)
	}
	// A relay that did not count frames would show the whole window (and more) here; a few stalls of the owners
	// on two busy cores are far below it.
	if loudest >= window/4 {
		t.Errorf("a relay heard nothing of a room for %v: the owners' frames do not reach the takeover signal", loudest)
	}
	t.Logf("in %v: longest silence of a room on a relay %v; owners %v", window, loudest, settled)

	// The owner of the first room freezes (every room it owns stalls, and with them its session's renewals; its
	// beacons go on, with a tick count that no longer moves): its rooms are taken over while it is frozen.
	frozen := owners[rooms[0]]
	hung := c.Member(frozen).Node.Rooms()
	const freeze = 10 * time.Second
	until := time.Now().Add(freeze)
	theirs := hung.Owned() // room → epoch
	for r := range theirs {
		hung.InjectFault(r, room.Fault{Until: until})
	}
	watcher := c.Member(other(c, frozen)).Node.Rooms()
	for r, e := range theirs {
		testingutil.WaitFor(t, time.Until(until), r+" taken over from the frozen "+frozen, func() bool {
			n, ne := watcher.Owner(r)
			return n != "" && n != frozen && ne > e
		})
	}
	if time.Now().After(until) {
		t.Fatalf("%s's rooms taken over only after its freeze ended (%v)", frozen, freeze)
	}
	testingutil.WaitFor(t, 30*time.Second, "the frozen owner stepped down", func() bool {
		for r := range theirs {
			if _, still := hung.Owned()[r]; still {
				return false
			}
		}
		return time.Now().After(until)
	})
	for r := range theirs {
		hung.InjectFault(r, room.Fault{})
	}
}
