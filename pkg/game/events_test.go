package game_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

func TestJoinAddsOnlinePlayerAtSpawn(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(42)
	mustApply(t, s, cfg, joinEv("p1", 17, "alice"))
	x, y := game.Spawn(42, "p1", cfg)
	want := game.Player{ID: "p1", Name: "alice", X: x, Y: y, Ack: 17, Conn: 17, Online: true}
	if p := player(t, s, "p1"); p != want {
		t.Fatalf("player = %+v, want %+v", p, want)
	}
}

func TestPlayersAreKeptSortedByID(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	for _, id := range []string{"m", "b", "z", "a", "q"} {
		mustApply(t, s, cfg, joinEv(id, 1, ""))
	}
	var got []string
	for _, p := range s.Players {
		got = append(got, p.ID)
	}
	if want := "a b m q z"; strings.Join(got, " ") != want {
		t.Fatalf("ids %q, want %q", strings.Join(got, " "), want)
	}
}

func TestDuplicateJoinIsIgnored(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 5, "alice"))
	mustIgnore(t, s, cfg, joinEv("p", 5, "alice"))
	mustIgnore(t, s, cfg, joinEv("p", 5, "mallory"))
}

func TestJoinOfTheCurrentOrAnOlderConnectionIsIgnored(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 5, "alice"))
	mustApply(t, s, cfg, inputEv("p", 9, game.KeyUp))
	for _, seq := range []uint64{1, 4, 5} {
		mustIgnore(t, s, cfg, joinEv("p", seq, "bob"))
	}
}

func TestJoinOvertakenByItsInputsMovesTheConnectionAndKeepsTheirKeys(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 5, "alice"))
	mustApply(t, s, cfg, leaveEv("p", 5))
	// The new connection's join (seq 8) arrives after its first inputs (9, 10) around an owner change.
	mustApply(t, s, cfg, inputEv("p", 9, game.KeyUp))
	mustApply(t, s, cfg, inputEv("p", 10, game.KeyRight))
	mustApply(t, s, cfg, joinEv("p", 8, "alice"))
	p := player(t, s, "p")
	if !p.Online || p.Conn != 8 || p.Ack != 10 {
		t.Fatalf("player = %+v, want online on conn 8 with ack 10", p)
	}
	mustIgnore(t, s, cfg, joinEv("p", 8, "alice"))        // replayed
	mustIgnore(t, s, cfg, leaveEv("p", 5))                // the old connection's leave, replayed
	mustApply(t, s, cfg, inputEv("p", 11, game.KeyRight)) // and the connection's inputs now move it
	if p := player(t, s, "p"); p.Keys != game.KeyRight || p.VX == 0 {
		t.Fatalf("player = %+v, want moving right", p)
	}
}

func TestInputBelowAckIsIgnored(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 10, ""))
	mustApply(t, s, cfg, inputEv("p", 12, game.KeyRight))
	for _, seq := range []uint64{1, 10, 11, 12} {
		mustIgnore(t, s, cfg, inputEv("p", seq, game.KeyLeft))
	}
	if p := player(t, s, "p"); p.Keys != game.KeyRight || p.Ack != 12 {
		t.Fatalf("keys %d ack %d, want keys %d ack 12", p.Keys, p.Ack, game.KeyRight)
	}
}

func TestInputAboveAckIsAppliedEvenWithGaps(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustApply(t, s, cfg, inputEv("p", 7, game.KeyDown))
	if p := player(t, s, "p"); p.Ack != 7 || p.Keys != game.KeyDown || p.Conn != 1 {
		t.Fatalf("player = %+v, want ack 7 keys down conn 1", p)
	}
}

func TestInputOfUnknownPlayerIsIgnored(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustIgnore(t, s, cfg, inputEv("q", 2, game.KeyUp))
}

func TestLeaveTakesPlayerOfflineAndStopsIt(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 3, ""))
	place(t, s, "p", 500, 500)
	mustApply(t, s, cfg, inputEv("p", 4, game.KeyUp|game.KeyLeft))
	steps(s, cfg, 2)
	mustApply(t, s, cfg, leaveEv("p", 3))
	steps(s, cfg, 5)
	p := player(t, s, "p")
	want := game.Player{ID: "p", X: 480, Y: 480, Ack: 4, Conn: 3, Online: false, AwaySince: 2}
	if p != want {
		t.Fatalf("player = %+v, want %+v", p, want)
	}
}

func TestDuplicateLeaveIsIgnored(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 3, ""))
	s.Step(cfg)
	mustApply(t, s, cfg, leaveEv("p", 3))
	s.Step(cfg)
	mustIgnore(t, s, cfg, leaveEv("p", 3)) // must not move AwaySince
}

func TestLeaveOfAnotherConnectionIsIgnored(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 3, ""))
	mustApply(t, s, cfg, joinEv("p", 8, "")) // reconnect before the old leave arrived
	mustIgnore(t, s, cfg, leaveEv("p", 3))
	mustIgnore(t, s, cfg, leaveEv("p", 9))
	if p := player(t, s, "p"); !p.Online || p.Conn != 8 {
		t.Fatalf("player = %+v, want online on conn 8", p)
	}
	mustApply(t, s, cfg, leaveEv("p", 8))
}

func TestLeaveOfUnknownPlayerIsIgnored(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustIgnore(t, s, cfg, leaveEv("ghost", 1))
}

func TestRejoinAfterLeaveReconnectsPlayer(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, "alice"))
	place(t, s, "p", 100, 200)
	mustApply(t, s, cfg, inputEv("p", 2, game.KeyDown))
	mustApply(t, s, cfg, leaveEv("p", 1))
	steps(s, cfg, 10)
	mustApply(t, s, cfg, joinEv("p", 3, "alice2"))
	want := game.Player{ID: "p", Name: "alice2", X: 100, Y: 200, Ack: 3, Conn: 3, Online: true}
	if p := player(t, s, "p"); p != want {
		t.Fatalf("player = %+v, want %+v (position kept)", p, want)
	}
}

func TestRejoinWithoutNameKeepsName(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, "alice"))
	mustApply(t, s, cfg, leaveEv("p", 1))
	mustApply(t, s, cfg, joinEv("p", 2, ""))
	if p := player(t, s, "p"); p.Name != "alice" {
		t.Fatalf("name %q, want alice", p.Name)
	}
}

func TestRejoinWhileOnlineReplacesConnectionAndClearsKeys(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustApply(t, s, cfg, inputEv("p", 2, game.KeyRight))
	mustApply(t, s, cfg, joinEv("p", 3, ""))
	if p := player(t, s, "p"); !p.Online || p.Conn != 3 || p.Ack != 3 || p.Keys != 0 || p.VX != 0 || p.VY != 0 {
		t.Fatalf("player = %+v, want online on conn 3 with no keys", p)
	}
}

func TestInputWhileOfflineConsumesSeqButDoesNotMove(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	place(t, s, "p", 500, 500)
	mustApply(t, s, cfg, leaveEv("p", 1))
	// An input of the old connection arriving after its leave.
	mustApply(t, s, cfg, inputEv("p", 2, game.KeyRight))
	steps(s, cfg, 3)
	if p := player(t, s, "p"); p.Ack != 2 || p.Keys != 0 || p.X != 500 || p.Online {
		t.Fatalf("player = %+v, want offline at rest with ack 2", p)
	}
	mustIgnore(t, s, cfg, joinEv("p", 1, "")) // the old connection's join, replayed
}

func TestOfflinePlayerIsRemovedAfterGrace(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks = 10
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustApply(t, s, cfg, inputEv("p", 4, 0))
	steps(s, cfg, 5)
	mustApply(t, s, cfg, leaveEv("p", 1)) // away since tick 5
	steps(s, cfg, 9)                      // tick 14
	if _, ok := s.Player("p"); !ok {
		t.Fatal("player removed before its grace period ended")
	}
	s.Step(cfg) // tick 15
	if _, ok := s.Player("p"); ok {
		t.Fatal("player still present after its grace period")
	}
	want := game.Tombstone{ID: "p", Ack: 4, Tick: 15}
	if got, ok := s.Tombstone("p"); !ok || got != want {
		t.Fatalf("tombstone = %+v, %v; want %+v", got, ok, want)
	}
	if len(s.Players) != 0 || len(s.Gone) != 1 {
		t.Fatalf("state = %s", marshal(t, s))
	}
}

func TestZeroGraceRemovesOnNextStep(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks = 0
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustApply(t, s, cfg, leaveEv("p", 1))
	s.Step(cfg)
	if _, ok := s.Player("p"); ok {
		t.Fatal("player still present")
	}
}

func TestOnlinePlayerIsNeverRemoved(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks = 3
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	steps(s, cfg, 100)
	if _, ok := s.Player("p"); !ok {
		t.Fatal("online player removed")
	}
}

func TestRejoinWithinGraceCancelsRemoval(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks = 10
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustApply(t, s, cfg, leaveEv("p", 1))
	steps(s, cfg, 9)
	mustApply(t, s, cfg, joinEv("p", 2, ""))
	steps(s, cfg, 50)
	if p := player(t, s, "p"); !p.Online || p.AwaySince != 0 {
		t.Fatalf("player = %+v, want online", p)
	}
}

func TestStaleJoinOfRemovedPlayerIsIgnored(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks = 2
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustApply(t, s, cfg, inputEv("p", 6, 0))
	mustApply(t, s, cfg, leaveEv("p", 1))
	steps(s, cfg, 2)
	if _, ok := s.Tombstone("p"); !ok {
		t.Fatal("no tombstone")
	}
	// A replay of the old session (e.g. from the stream after a takeover).
	mustIgnore(t, s, cfg, joinEv("p", 1, ""))
	mustIgnore(t, s, cfg, joinEv("p", 6, ""))
	mustIgnore(t, s, cfg, inputEv("p", 7, game.KeyUp))
	mustIgnore(t, s, cfg, leaveEv("p", 1))
}

func TestNewJoinOfRemovedPlayerReaddsItAndDropsTombstone(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks = 2
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, "alice"))
	mustApply(t, s, cfg, leaveEv("p", 1))
	steps(s, cfg, 2)
	mustApply(t, s, cfg, joinEv("p", 2, "alice"))
	if _, ok := s.Tombstone("p"); ok {
		t.Fatal("tombstone kept after the player came back")
	}
	x, y := game.Spawn(1, "p", cfg)
	want := game.Player{ID: "p", Name: "alice", X: x, Y: y, Ack: 2, Conn: 2, Online: true}
	if p := player(t, s, "p"); p != want {
		t.Fatalf("player = %+v, want %+v", p, want)
	}
	if err := s.Validate(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestTombstoneIsDroppedAfterTombstoneTicks(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks, cfg.TombstoneTicks = 1, 5
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustApply(t, s, cfg, leaveEv("p", 1))
	s.Step(cfg) // removed at tick 1
	steps(s, cfg, 4)
	if _, ok := s.Tombstone("p"); !ok {
		t.Fatal("tombstone dropped early")
	}
	s.Step(cfg) // tick 6
	if _, ok := s.Tombstone("p"); ok {
		t.Fatal("tombstone kept after TombstoneTicks")
	}
	if got := marshal(t, s); got != `{"seed":1,"tick":6,"players":[]}` {
		t.Fatalf("state = %s", got)
	}
}

// Tombstones are finite: once one has expired, a replay of the old join
// brings the player back. Config.TombstoneTicks must cover the replay window.
func TestReplayAfterTombstoneExpiryRecreatesPlayer(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks, cfg.TombstoneTicks = 1, 5
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	mustApply(t, s, cfg, leaveEv("p", 1))
	steps(s, cfg, 6)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
}

func TestJoinBeyondMaxPlayersIsRejected(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.MaxPlayers, cfg.GraceTicks = 2, 3
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("a", 1, ""))
	mustApply(t, s, cfg, joinEv("b", 1, ""))
	mustApply(t, s, cfg, leaveEv("b", 1)) // offline players still hold their place

	before := marshal(t, s)
	ok, err := s.Apply(cfg, joinEv("c", 1, ""))
	if ok || !errors.Is(err, game.ErrRoomFull) {
		t.Fatalf("Apply(join c) = %v, %v; want false, ErrRoomFull", ok, err)
	}
	if marshal(t, s) != before {
		t.Fatal("rejected join changed the state")
	}

	// Players already in the room can still rejoin and play.
	mustApply(t, s, cfg, joinEv("b", 2, ""))
	mustApply(t, s, cfg, inputEv("a", 2, game.KeyUp))

	// Once a place frees up, the same join is accepted.
	mustApply(t, s, cfg, leaveEv("b", 2))
	steps(s, cfg, 3)
	mustApply(t, s, cfg, joinEv("c", 1, ""))
}

func TestStaleJoinIsIgnoredRatherThanRejectedWhenRoomIsFull(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.MaxPlayers, cfg.GraceTicks = 1, 1
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("a", 4, ""))
	mustApply(t, s, cfg, leaveEv("a", 4))
	s.Step(cfg)
	mustApply(t, s, cfg, joinEv("b", 1, ""))
	mustIgnore(t, s, cfg, joinEv("a", 4, ""))
}

func TestInvalidEventIsRejectedWithoutChangingState(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	before := marshal(t, s)
	ok, err := s.Apply(cfg, inputEv("p", 2, 16))
	if ok || !errors.Is(err, game.ErrInvalidEvent) {
		t.Fatalf("Apply = %v, %v; want false, ErrInvalidEvent", ok, err)
	}
	if marshal(t, s) != before {
		t.Fatal("invalid event changed the state")
	}
}
