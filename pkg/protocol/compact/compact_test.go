package compact_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// follow decodes every frame the encoder makes (a keyframe first and every keyframeEvery ticks, deltas between)
// and checks that the decoder's state is the owner's, and its JSON the owner's JSON, byte for byte.
type follower struct {
	dec   compact.Decoder
	ticks int
	bytes int
}

func (f *follower) follow(t testing.TB, o *owner, want []byte, keyframe bool) []byte {
	t.Helper()
	var frame []byte
	if keyframe || !o.enc.CanDelta() {
		frame = o.enc.AppendKeyframe(nil)
	} else {
		frame = o.enc.AppendDelta(nil)
	}
	o.enc.Commit()
	if err := f.dec.Apply(frame); err != nil {
		t.Fatalf("tick %d: %v", o.r.Tick(), err)
	}
	if !f.dec.State().Equal(o.enc.Current()) {
		t.Fatalf("tick %d: decoded state differs from the owner's", o.r.Tick())
	}
	if got := jsonOf(t, f.dec.State()); !bytes.Equal(got, want) {
		t.Fatalf("tick %d: JSON from the decoded state\n%s\nwant\n%s", o.r.Tick(), got, want)
	}
	f.ticks++
	f.bytes += len(frame)
	return frame
}

func TestArenaRoundTripsThroughKeyframesAndDeltas(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 10
	o := newOwner(t, arenaGame(t), "lobby", cfg)
	m := newMover(1)
	var f follower
	for tick := 0; tick < 400; tick++ {
		switch {
		case tick < 60 && tick%3 == 0:
			m.join(o, t, pid(tick/3), "bot "+string(rune('a'+tick/3)))
		case tick%7 == 0:
			id := pid(m.rng.IntN(20))
			if _, ok := m.seqs[id]; ok {
				switch m.rng.IntN(10) {
				case 0:
					o.apply(t, sim.Event{Kind: sim.KindLeave, Player: id, Conn: m.seqs[id]})
				case 1:
					m.join(o, t, id, "back")
				default:
					m.keys(o, t, id, directions[m.rng.IntN(len(directions))])
				}
			}
		}
		want := o.step(t)
		f.follow(t, o, want, tick%20 == 0)
	}
}

func TestCollectRoundTripsThroughKeyframesAndDeltas(t *testing.T) {
	o := newOwner(t, collectGame(t), "collect-1", sim.DefaultConfig())
	m := newMover(2)
	var f follower
	for tick := 0; tick < 600; tick++ {
		if tick < 10 {
			m.join(o, t, pid(tick), "c")
		}
		if tick%5 == 0 {
			m.target(o, t, pid(m.rng.IntN(10)), m.rng.IntN(1001), m.rng.IntN(1001))
		}
		want := o.step(t)
		f.follow(t, o, want, tick%20 == 0)
	}
}

// A delta applies to its base only: without a state, or after a missed tick, the decoder refuses it (ErrBase)
// and keeps its state; the missed tick, or the next keyframe, brings it back.
func TestADeltaAppliesOnlyToItsBase(t *testing.T) {
	o := newOwner(t, arenaGame(t), "lobby", sim.DefaultConfig())
	m := newMover(3)
	m.join(o, t, pid(1), "a")
	o.step(t)
	first := o.enc.AppendKeyframe(nil)
	o.enc.Commit()
	m.keys(o, t, pid(1), 8)
	o.step(t)
	skipped := o.enc.AppendDelta(nil)
	o.enc.Commit()
	o.step(t)
	next := o.enc.AppendDelta(nil)
	o.enc.Commit()

	var dec compact.Decoder
	if err := dec.Apply(skipped); !errors.Is(err, compact.ErrBase) || dec.Valid() {
		t.Fatalf("a delta without a state: %v", err)
	}
	if err := dec.Apply(first); err != nil {
		t.Fatal(err)
	}
	before := jsonOf(t, dec.State())
	if err := dec.Apply(next); !errors.Is(err, compact.ErrBase) {
		t.Fatalf("a delta past a missed tick: %v, want ErrBase", err)
	}
	if !bytes.Equal(jsonOf(t, dec.State()), before) {
		t.Fatal("a refused delta changed the state")
	}
	if err := dec.Apply(skipped); err != nil {
		t.Fatal(err)
	}
	if err := dec.Apply(next); err != nil {
		t.Fatal(err)
	}
	if !dec.State().Equal(o.enc.Current()) {
		t.Fatal("state differs after catching up")
	}
	if err := dec.Apply([]byte{compact.Delta}); !errors.Is(err, compact.ErrMalformed) {
		t.Fatalf("a bare delta byte: %v", err)
	}
}

// A Follower of a player reads, from the same frames, the position, time and that player's ack a Decoder
// reads, without keeping the state.
func TestAFollowerReadsThePositionTimeAndAckADecoderReads(t *testing.T) {
	for _, name := range []string{"arena", "collect", "wide"} {
		data, err := readFixture(name + ".frames")
		if err != nil {
			t.Fatal(err)
		}
		var dec compact.Decoder
		fols := map[string]*compact.Follower{}
		r := bytes.NewReader(data)
		for i := 0; ; i++ {
			frame, err := compact.ReadFrame(r, nil)
			if err != nil {
				break
			}
			if err := dec.Apply(frame); err != nil {
				t.Fatal(err)
			}
			s := dec.State()
			for p := range s.Players() {
				ro, _, _ := s.Player(p)
				if fols[ro.ID] == nil {
					fols[ro.ID] = compact.NewFollower(ro.ID)
				}
			}
			for id, f := range fols {
				if err := f.Apply(frame); err != nil {
					if errors.Is(err, compact.ErrBase) && !f.Valid() {
						continue // joined the followers after the stream began: waits for a keyframe
					}
					t.Fatalf("%s frame %d, %s: %v", name, i, id, err)
				}
				room, epoch, seq, tm := f.Tick()
				if room != s.Room || epoch != s.Epoch || seq != s.Seq || tm != s.Time {
					t.Fatalf("%s frame %d: the follower is at %s %d/%d %d", name, i, room, epoch, seq, tm)
				}
				want, in := s.Lookup(id)
				ack, ok := f.Ack()
				if ok != in || ack != want.Ack {
					t.Fatalf("%s frame %d, %s: ack %d %v, want %d %v", name, i, id, ack, ok, want.Ack, in)
				}
			}
		}
	}
}
