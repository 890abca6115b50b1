package fence

import "testing"

func TestFenceDropsLowerEpochsAndNonIncreasingSeqs(t *testing.T) {
	f := New()
	steps := []struct {
		epoch, seq uint64
		want       bool
	}{
		{1, 10, true},
		{1, 11, true},
		{1, 11, false}, // duplicate
		{1, 9, false},  // older seq in the same epoch
		{2, 5, true},   // new owner may restart lower seqs
		{1, 12, false}, // stale owner after a higher epoch
		{2, 6, true},
	}
	for i, s := range steps {
		if got := f.Accept("lobby", s.epoch, s.seq); got != s.want {
			t.Fatalf("step %d: Accept(%d,%d) = %v, want %v", i, s.epoch, s.seq, got, s.want)
		}
	}
	if got := f.Get("lobby"); got != (Position{2, 6}) {
		t.Fatalf("position = %+v", got)
	}
}

func TestObservedLeaseFencesOutTheOldOwnerBeforeTheNewOwnerTicks(t *testing.T) {
	f := New()
	f.Accept("r", 3, 100)
	if !f.Observe("r", 4) {
		t.Fatal("observe did not raise the floor")
	}
	if f.Accept("r", 3, 101) {
		t.Fatal("tick of the superseded epoch accepted")
	}
	if !f.Accept("r", 4, 101) {
		t.Fatal("first tick of the new epoch dropped")
	}
	if f.Observe("r", 2) || f.Get("r") != (Position{4, 101}) {
		t.Fatal("observing a lower epoch changed the position")
	}
}

func TestRoomsAreFencedIndependently(t *testing.T) {
	f := New()
	f.Accept("a", 5, 1)
	if !f.Accept("b", 1, 1) {
		t.Fatal("room b fenced by room a")
	}
}
