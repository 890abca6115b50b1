package room

import "testing"

// snapOf is term.snapshot without a lease (epoch 1): what the owner offers its node's snapshot writer.
func snapOf(tm *term) *Snapshot {
	return &Snapshot{Room: tm.room, Epoch: 1, Owner: tm.cfg.Node, InputSeq: tm.inputSeq, State: tm.state.AppendJSON(nil),
		Durable: tm.acks.notDurable(tm.state)}
}

// A snapshot's change key ignores what changes at every tick (the tick number, the writer's clock) and nothing
// else a new owner would restore: the state, the input position, the durable acks. An idle room offers nothing;
// a room whose applied inputs became durable offers the snapshot that says so.
func TestChangeKeyIgnoresOnlyTheTickNumberAndTheClock(t *testing.T) {
	tm := ownerOf(t)
	tm.apply(stored(1, join("pa", 1)))
	base := snapOf(tm)
	k := changeKey(base)

	tm.state.Step() // only the tick number moves (no input, the player stands still)
	stepped := snapOf(tm)
	stepped.Time += 5000
	if string(stepped.State) == string(base.State) {
		t.Fatal("a step did not change the state's encoding: the test proves nothing")
	}
	if changeKey(stepped) != k {
		t.Fatalf("the key changed with the tick number alone:\n%s\n%s", base.State, stepped.State)
	}

	moved := *base
	moved.InputSeq++
	if changeKey(&moved) == k {
		t.Fatal("the key ignores the input position")
	}

	// An input applied from core NATS only: the state moves, the ack it shows does not (durable lags).
	tm.apply(live(input("pa", 2, 8)))
	tm.state.Step()
	applied := snapOf(tm)
	if changeKey(applied) == k {
		t.Fatal("the key ignores a change of the game's state")
	}
	if applied.Durable["pa"] != 1 {
		t.Fatalf("durable member %v, want pa: 1", applied.Durable)
	}
	allDurable := *applied
	allDurable.Durable = nil
	if changeKey(&allDurable) == changeKey(applied) {
		t.Fatal("the key ignores the durable acks")
	}
	// The stream brings the input: nothing else changes, and the snapshot that records it durable differs.
	tm.apply(stored(2, input("pa", 2, 8)))
	if d := snapOf(tm); d.Durable != nil || changeKey(d) == changeKey(applied) {
		t.Fatalf("after the input was stored: durable %v, key unchanged %v", d.Durable, changeKey(d) == changeKey(applied))
	}
}
