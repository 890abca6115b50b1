package sim_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/sim"
)

func TestJoinAddsOnlinePlayerAndTellsTheGame(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p1", 17, "alice"))
	want := sim.Player{ID: "p1", Name: "alice", Ack: 17, Conn: 17, Online: true}
	if p := player(t, r, "p1"); p != want {
		t.Fatalf("player = %+v, want %+v", p, want)
	}
	if s := seen(t, r, "p1"); s != [pFields]int64{1, 0, 0, 0} {
		t.Fatalf("the game saw %v, want one join", s)
	}
}

func TestPlayersAreKeptSortedByID(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	for _, id := range []string{"m", "b", "z", "a", "q"} {
		mustApply(t, r, joinEv(id, 1, ""))
	}
	if got := ids(r); got != "a b m q z" {
		t.Fatalf("ids %q", got)
	}
}

func TestDuplicateJoinIsIgnored(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 5, "alice"))
	mustIgnore(t, r, joinEv("p", 5, "alice"))
	mustIgnore(t, r, joinEv("p", 5, "mallory"))
}

func TestJoinOfTheCurrentOrAnOlderConnectionIsIgnored(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 5, "alice"))
	mustApply(t, r, inputEv("p", 9, 1))
	for _, seq := range []uint64{1, 4, 5} {
		mustIgnore(t, r, joinEv("p", seq, "bob"))
	}
}

// Around an owner change a connection's inputs may overtake its join. The join still moves the player to the
// new connection (or the player would be removed after the grace period while connected); the game hears of
// it only when the player was offline: while it was online, those inputs already speak for the connection.
func TestJoinOvertakenByItsInputsMovesTheConnection(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 5, "alice"))
	mustApply(t, r, leaveEv("p", 5))
	mustApply(t, r, inputEv("p", 9, 7)) // offline: consumes its seq only
	mustApply(t, r, inputEv("p", 10, 8))
	mustApply(t, r, joinEv("p", 8, "alice"))
	p := player(t, r, "p")
	if !p.Online || p.Conn != 8 || p.Ack != 10 {
		t.Fatalf("player = %+v, want online on conn 8 with ack 10", p)
	}
	if s := seen(t, r, "p"); s != [pFields]int64{2, 1, 0, 0} {
		t.Fatalf("the game saw %v, want join, leave, join", s)
	}
	mustIgnore(t, r, joinEv("p", 8, "alice")) // replayed
	mustIgnore(t, r, leaveEv("p", 5))         // the old connection's leave, replayed
	mustApply(t, r, inputEv("p", 11, 9))      // and the connection's inputs now reach the game
	if s := seen(t, r, "p"); s[pInputs] != 1 || s[pLast] != 9 {
		t.Fatalf("the game saw %v, want the input", s)
	}

	// While online on the old connection, the new connection's inputs reach the game and its late join does not.
	mustApply(t, r, inputEv("p", 13, 3))
	mustApply(t, r, joinEv("p", 12, ""))
	if s := seen(t, r, "p"); s != [pFields]int64{2, 1, 2, 3} {
		t.Fatalf("the game saw %v, want no third join", s)
	}
	if p := player(t, r, "p"); p.Conn != 12 || p.Ack != 13 || !p.Online {
		t.Fatalf("player = %+v", p)
	}
}

func TestInputBelowAckIsIgnored(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 10, ""))
	mustApply(t, r, inputEv("p", 12, 4))
	for _, seq := range []uint64{1, 10, 11, 12} {
		mustIgnore(t, r, inputEv("p", seq, 5))
	}
	if s := seen(t, r, "p"); s[pLast] != 4 || player(t, r, "p").Ack != 12 {
		t.Fatalf("the game saw %v, ack %d", s, player(t, r, "p").Ack)
	}
}

func TestInputAboveAckIsAppliedEvenWithGaps(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, inputEv("p", 7, 2))
	if p := player(t, r, "p"); p.Ack != 7 || p.Conn != 1 {
		t.Fatalf("player = %+v, want ack 7 conn 1", p)
	}
}

func TestInputOfUnknownPlayerIsIgnored(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 1, ""))
	mustIgnore(t, r, inputEv("q", 2, 1))
}

func TestLeaveTakesPlayerOffline(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 3, ""))
	mustApply(t, r, inputEv("p", 4, 1))
	steps(r, 2)
	mustApply(t, r, leaveEv("p", 3))
	steps(r, 5)
	want := sim.Player{ID: "p", Ack: 4, Conn: 3, Online: false, AwaySince: 2}
	if p := player(t, r, "p"); p != want {
		t.Fatalf("player = %+v, want %+v", p, want)
	}
	if s := seen(t, r, "p"); s != [pFields]int64{1, 1, 1, 1} {
		t.Fatalf("the game saw %v", s)
	}
}

func TestDuplicateLeaveIsIgnored(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 3, ""))
	r.Step()
	mustApply(t, r, leaveEv("p", 3))
	r.Step()
	mustIgnore(t, r, leaveEv("p", 3)) // must not move AwaySince
}

func TestLeaveOfAnotherConnectionIsIgnored(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 3, ""))
	mustApply(t, r, joinEv("p", 8, "")) // reconnect before the old leave arrived
	mustIgnore(t, r, leaveEv("p", 3))
	mustIgnore(t, r, leaveEv("p", 9))
	if p := player(t, r, "p"); !p.Online || p.Conn != 8 {
		t.Fatalf("player = %+v, want online on conn 8", p)
	}
	mustApply(t, r, leaveEv("p", 8))
}

func TestLeaveOfUnknownPlayerIsIgnored(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustIgnore(t, r, leaveEv("ghost", 1))
}

func TestRejoinAfterLeaveReconnectsPlayer(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 1, "alice"))
	mustApply(t, r, inputEv("p", 2, 1))
	mustApply(t, r, leaveEv("p", 1))
	steps(r, 10)
	mustApply(t, r, joinEv("p", 3, "alice2"))
	want := sim.Player{ID: "p", Name: "alice2", Ack: 3, Conn: 3, Online: true}
	if p := player(t, r, "p"); p != want {
		t.Fatalf("player = %+v, want %+v", p, want)
	}
	if s := seen(t, r, "p"); s != [pFields]int64{2, 1, 1, 1} {
		t.Fatalf("the game saw %v", s)
	}
}

func TestRejoinWithoutNameKeepsName(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 1, "alice"))
	mustApply(t, r, leaveEv("p", 1))
	mustApply(t, r, joinEv("p", 2, ""))
	if p := player(t, r, "p"); p.Name != "alice" {
		t.Fatalf("name %q, want alice", p.Name)
	}
}

func TestRejoinWhileOnlineReplacesConnection(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, inputEv("p", 2, 5))
	mustApply(t, r, joinEv("p", 3, ""))
	if p := player(t, r, "p"); !p.Online || p.Conn != 3 || p.Ack != 3 {
		t.Fatalf("player = %+v, want online on conn 3", p)
	}
	if s := seen(t, r, "p"); s[pJoins] != 2 {
		t.Fatalf("the game saw %v, want a second join", s)
	}
}

func TestInputWhileOfflineConsumesSeqButDoesNotReachTheGame(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, leaveEv("p", 1))
	// An input of the old connection arriving after its leave.
	mustApply(t, r, inputEv("p", 2, 7))
	if p := player(t, r, "p"); p.Ack != 2 || p.Online {
		t.Fatalf("player = %+v, want offline with ack 2", p)
	}
	if s := seen(t, r, "p"); s[pInputs] != 0 {
		t.Fatalf("the game saw %v, want no input", s)
	}
	mustIgnore(t, r, joinEv("p", 1, "")) // the old connection's join, replayed
}

func TestOfflinePlayerIsRemovedAfterGrace(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 10
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, inputEv("p", 4, 0))
	steps(r, 5)
	mustApply(t, r, leaveEv("p", 1)) // away since tick 5
	steps(r, 9)                      // tick 14
	if _, ok := r.Player("p"); !ok {
		t.Fatal("player removed before its grace period ended")
	}
	r.Step() // tick 15
	if _, ok := r.Player("p"); ok {
		t.Fatal("player still present after its grace period")
	}
	want := sim.Tombstone{ID: "p", Ack: 4, Tick: 15}
	if got, ok := r.Tombstone("p"); !ok || got != want {
		t.Fatalf("tombstone = %+v, %v; want %+v", got, ok, want)
	}
	if got := encode(r); got != `{"game":"probe","seed":1,"tick":15,"steps":15,"removed":1,"players":[],"gone":[{"id":"p","ack":4,"tick":15}]}` {
		t.Fatalf("room = %s", got)
	}
}

func TestZeroGraceRemovesOnNextStep(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 0
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, leaveEv("p", 1))
	r.Step()
	if _, ok := r.Player("p"); ok {
		t.Fatal("player still present")
	}
}

func TestOnlinePlayerIsNeverRemoved(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 3
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 1, ""))
	steps(r, 100)
	if _, ok := r.Player("p"); !ok {
		t.Fatal("online player removed")
	}
}

func TestRejoinWithinGraceCancelsRemoval(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 10
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, leaveEv("p", 1))
	steps(r, 9)
	mustApply(t, r, joinEv("p", 2, ""))
	steps(r, 50)
	if p := player(t, r, "p"); !p.Online || p.AwaySince != 0 {
		t.Fatalf("player = %+v, want online", p)
	}
}

func TestStaleJoinOfRemovedPlayerIsIgnored(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 2
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, inputEv("p", 6, 0))
	mustApply(t, r, leaveEv("p", 1))
	steps(r, 2)
	if _, ok := r.Tombstone("p"); !ok {
		t.Fatal("no tombstone")
	}
	// A replay of the old session (e.g. from the stream after a takeover).
	mustIgnore(t, r, joinEv("p", 1, ""))
	mustIgnore(t, r, joinEv("p", 6, ""))
	mustIgnore(t, r, inputEv("p", 7, 1))
	mustIgnore(t, r, leaveEv("p", 1))
}

func TestNewJoinOfRemovedPlayerReaddsItAndDropsTombstone(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 2
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 1, "alice"))
	mustApply(t, r, leaveEv("p", 1))
	steps(r, 2)
	mustApply(t, r, joinEv("p", 2, "alice"))
	if _, ok := r.Tombstone("p"); ok {
		t.Fatal("tombstone kept after the player came back")
	}
	want := sim.Player{ID: "p", Name: "alice", Ack: 2, Conn: 2, Online: true}
	if p := player(t, r, "p"); p != want {
		t.Fatalf("player = %+v, want %+v", p, want)
	}
	if s := seen(t, r, "p"); s != [pFields]int64{1, 0, 0, 0} {
		t.Fatalf("the game saw %v: want a new player", s)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestTombstoneIsDroppedAfterTombstoneTicks(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks, cfg.TombstoneTicks = 1, 5
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, leaveEv("p", 1))
	r.Step() // removed at tick 1
	steps(r, 4)
	if _, ok := r.Tombstone("p"); !ok {
		t.Fatal("tombstone dropped early")
	}
	r.Step() // tick 6
	if _, ok := r.Tombstone("p"); ok {
		t.Fatal("tombstone kept after TombstoneTicks")
	}
}

// Tombstones are finite: once one has expired, a replay of the old join brings the player back.
// Config.TombstoneTicks must cover the replay window.
func TestReplayAfterTombstoneExpiryRecreatesPlayer(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks, cfg.TombstoneTicks = 1, 5
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, leaveEv("p", 1))
	steps(r, 6)
	mustApply(t, r, joinEv("p", 1, ""))
}

// Tombstones are capped per room: churn from one client cannot grow a room's state (and its snapshot) without
// bound. The oldest go first, the same ones on every owner: the earliest removal, then the smallest id.
func TestTombstonesBeyondTheCapAreDroppedOldestFirst(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks, cfg.TombstoneCap = 0, 3
	r := newRoom(cfg)
	// Removed at tick 1: d, b; at tick 2: a; at tick 3: e, c.
	for tick, batch := range [][]string{{"d", "b"}, {"a"}, {"e", "c"}} {
		for _, id := range batch {
			mustApply(t, r, joinEv(id, uint64(tick+1), ""))
			mustApply(t, r, leaveEv(id, uint64(tick+1)))
		}
		r.Step()
	}
	// Five tombstones, cap 3: b then d (tick 1, by id) are dropped.
	var got []string
	for _, g := range r.Gone() {
		got = append(got, g.ID)
	}
	if want := "a c e"; strings.Join(got, " ") != want {
		t.Fatalf("tombstones %q, want %q", strings.Join(got, " "), want)
	}
	// Within the window the cap leaves, old events are still recognised; beyond it they apply again.
	mustIgnore(t, r, joinEv("a", 2, ""))
	mustApply(t, r, joinEv("b", 1, ""))
	// Another room with the same history drops the same tombstones.
	r2 := newRoom(cfg)
	for tick, batch := range [][]string{{"b", "d"}, {"a"}, {"c", "e"}} {
		for _, id := range batch {
			mustApply(t, r2, joinEv(id, uint64(tick+1), ""))
			mustApply(t, r2, leaveEv(id, uint64(tick+1)))
		}
		r2.Step()
	}
	mustApply(t, r2, joinEv("b", 1, ""))
	if encode(r) != encode(r2) {
		t.Fatalf("the same history in another order of events gave another room:\n%s\n%s", encode(r), encode(r2))
	}
}

func TestChurnKeepsTheRoomWithinItsBounds(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks, cfg.TombstoneCap = 1, 50
	r := newRoom(cfg)
	for i := range 2000 {
		id := "c" + strconv.Itoa(i)
		mustApply(t, r, joinEv(id, 1, "churn"))
		mustApply(t, r, leaveEv(id, 1))
		r.Step()
		if len(r.Gone()) > cfg.TombstoneCap {
			t.Fatalf("%d tombstones after %d players, cap %d", len(r.Gone()), i+1, cfg.TombstoneCap)
		}
	}
	if n := len(encode(r)); n > 4000 {
		t.Fatalf("the room's encoding grew to %d bytes under churn", n)
	}
}

func TestJoinBeyondMaxPlayersIsRejected(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.MaxPlayers, cfg.GraceTicks = 2, 3
	r := newRoom(cfg)
	mustApply(t, r, joinEv("a", 1, ""))
	mustApply(t, r, joinEv("b", 1, ""))
	mustApply(t, r, leaveEv("b", 1)) // offline players still hold their place

	before := encode(r)
	ok, err := r.Apply(joinEv("c", 1, ""))
	if ok || !errors.Is(err, sim.ErrRoomFull) {
		t.Fatalf("Apply(join c) = %v, %v; want false, ErrRoomFull", ok, err)
	}
	if encode(r) != before {
		t.Fatal("rejected join changed the room")
	}
	// Players already in the room can still rejoin and play.
	mustApply(t, r, joinEv("b", 2, ""))
	mustApply(t, r, inputEv("a", 2, 1))
	// Once a place frees up, the same join is accepted.
	mustApply(t, r, leaveEv("b", 2))
	steps(r, 3)
	mustApply(t, r, joinEv("c", 1, ""))
}

func TestStaleJoinIsIgnoredRatherThanRejectedWhenRoomIsFull(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.MaxPlayers, cfg.GraceTicks = 1, 1
	r := newRoom(cfg)
	mustApply(t, r, joinEv("a", 4, ""))
	mustApply(t, r, leaveEv("a", 4))
	r.Step()
	mustApply(t, r, joinEv("b", 1, ""))
	mustIgnore(t, r, joinEv("a", 4, ""))
}

func TestInvalidEventsAreRejectedWithoutChangingTheRoom(t *testing.T) {
	r := sim.New(probeGame(false), sim.DefaultConfig(), 1)
	mustApply(t, r, joinEv("p", 1, ""))
	before := encode(r)
	for name, ev := range map[string]sim.Event{
		"payload the game refuses": inputEv("p", 2, 1001),
		"payload over its bound":   {Kind: sim.KindInput, Player: "p", Seq: 2, Data: []byte("1        ")},
		"keys for a game without":  keysEv("p", 2, 3),
		"no payload":               {Kind: sim.KindInput, Player: "p", Seq: 2},
		"seq above 2^53-1":         inputEv("p", sim.MaxCounter+1, 1),
		"join seq above 2^53-1":    joinEv("p", sim.MaxCounter+1, ""),
		"leave conn above 2^53-1":  leaveEv("p", sim.MaxCounter+1),
	} {
		ok, err := r.Apply(ev)
		if ok || !errors.Is(err, sim.ErrInvalidEvent) {
			t.Errorf("%s: Apply = %v, %v; want false, ErrInvalidEvent", name, ok, err)
		}
		if encode(r) != before {
			t.Fatalf("%s changed the room", name)
		}
	}
}

// No event can push a player's ack to where its own later events are ignored: a seq more than MaxSeqJump
// above the player's ack (or its tombstone's) is refused.
func TestASeqTooFarAboveTheAckIsRefused(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 0
	r := newRoom(cfg)
	mustApply(t, r, joinEv("p", 10, ""))
	before := encode(r)
	for _, ev := range []sim.Event{inputEv("p", 10+sim.MaxSeqJump+1, 1), joinEv("p", 10+sim.MaxSeqJump+1, ""),
		inputEv("p", 1<<52, 1), inputEv("p", sim.MaxCounter, 1)} {
		ok, err := r.Apply(ev)
		if ok || !errors.Is(err, sim.ErrSeqJump) || !errors.Is(err, sim.ErrInvalidEvent) {
			t.Fatalf("Apply(%+v) = %v, %v; want ErrSeqJump", ev, ok, err)
		}
	}
	if encode(r) != before {
		t.Fatal("a refused jump changed the room")
	}
	// Exactly MaxSeqJump above is fine, and the player's next inputs still apply.
	mustApply(t, r, inputEv("p", 10+sim.MaxSeqJump, 1))
	mustApply(t, r, inputEv("p", 11+sim.MaxSeqJump, 2))
	// The same bound holds against a removed player's tombstone.
	mustApply(t, r, leaveEv("p", 10))
	r.Step()
	ack := 11 + uint64(sim.MaxSeqJump)
	if tomb, ok := r.Tombstone("p"); !ok || tomb.Ack != ack {
		t.Fatalf("tombstone %+v, %v", tomb, ok)
	}
	if _, err := r.Apply(joinEv("p", ack+sim.MaxSeqJump+1, "")); !errors.Is(err, sim.ErrSeqJump) {
		t.Fatalf("a join far above the tombstone: %v", err)
	}
	mustApply(t, r, joinEv("p", ack+sim.MaxSeqJump, ""))
	// A player the room does not know has no ack to jump from: it may join at any seq that leaves room for
	// its next events, and not above.
	if _, err := r.Apply(joinEv("q", sim.MaxCounter, "")); !errors.Is(err, sim.ErrSeqJump) {
		t.Fatalf("an unknown player's join at the last seq: %v", err)
	}
	mustApply(t, r, joinEv("q", sim.MaxCounter-sim.MaxSeqJump, ""))
	mustApply(t, r, inputEv("q", sim.MaxCounter-sim.MaxSeqJump+1, 1))
}

func TestLegacyKeysReachAGameThatTakesThem(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("p", 1, ""))
	mustApply(t, r, keysEv("p", 2, 5))
	mustApply(t, r, sim.Event{Kind: sim.KindInput, Player: "p", Seq: 3}) // keys 0: absent, as nodes wrote it
	if s := seen(t, r, "p"); s[pInputs] != 2 || s[pLast] != 0 {
		t.Fatalf("the game saw %v", s)
	}
	if _, err := r.Apply(keysEv("p", 4, 16)); !errors.Is(err, sim.ErrInvalidEvent) {
		t.Fatalf("keys the game refuses: %v", err)
	}
}
