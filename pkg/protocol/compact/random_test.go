package compact_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
)

// A schema wider than either game: masks of more than one byte, an object kind without fields, names no game
// has.
var wideSchema = &compact.Schema{
	Game:    "wide",
	Globals: []string{"g0", "g1", "g2"},
	Player:  []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"},
	Objects: []compact.Kind{{Name: "rocks", Fields: []string{"x", "y", "hp"}}, {Name: "flags"}, {Name: "many", Fields: []string{"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"}}},
}

// world is a random state that changes a little every tick: players come, go, rename, reconnect, go offline;
// fields move by small and huge steps; objects appear, change and vanish.
type world struct {
	rng     *rand.Rand
	h       compact.Header
	globals []int64
	players map[string]*wplayer
	objects []map[int64][]int64
}

type wplayer struct {
	r      compact.Roster
	fields []int64
}

func newWorld(seed uint64) *world {
	w := &world{rng: rand.New(rand.NewPCG(seed, 7)), players: map[string]*wplayer{},
		h:       compact.Header{Room: "r-1", Owner: "n1", Epoch: 5, Seq: 100, Time: 1_700_000_000_000},
		globals: make([]int64, len(wideSchema.Globals))}
	for range wideSchema.Objects {
		w.objects = append(w.objects, map[int64][]int64{})
	}
	return w
}

func (w *world) value() int64 {
	switch w.rng.IntN(6) {
	case 0:
		return game.MaxValue
	case 1:
		return -game.MaxValue
	case 2:
		return w.rng.Int64N(2*game.MaxValue+1) - game.MaxValue
	default:
		return w.rng.Int64N(2001) - 1000
	}
}

func (w *world) id() string {
	if w.rng.IntN(3) == 0 {
		return fmt.Sprintf("bot_%d", w.rng.IntN(40)) // not the packed form
	}
	return fmt.Sprintf("p%016x", w.rng.Uint64N(40)*0x0123456789ab)
}

func (w *world) tick() {
	w.h.Seq += uint64(1 + w.rng.IntN(2))
	w.h.Time += int64(w.rng.IntN(120)) - 10
	w.h.Time = max(w.h.Time, 0)
	for i := range w.globals {
		if w.rng.IntN(4) == 0 {
			w.globals[i] = w.value()
		}
	}
	for range w.rng.IntN(4) {
		id := w.id()
		if p, ok := w.players[id]; ok {
			switch w.rng.IntN(4) {
			case 0:
				delete(w.players, id)
			case 1:
				p.r.Name = fmt.Sprintf("name %d ü", w.rng.IntN(9))
			case 2:
				p.r.Conn = uint64(w.rng.Int64N(game.MaxValue))
				p.r.Online = true
				p.r.Away = 0
			default:
				p.r.Online = false
				p.r.Away = w.h.Seq
			}
			continue
		}
		p := &wplayer{r: compact.Roster{ID: id, Name: "new", Ack: uint64(w.rng.IntN(100)), Conn: 1, Online: true}, fields: make([]int64, len(wideSchema.Player))}
		for i := range p.fields {
			p.fields[i] = w.value()
		}
		w.players[id] = p
	}
	ids := make([]string, 0, len(w.players))
	for id := range w.players {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the random numbers go to the players in a fixed order: the world is the same every run
	for _, id := range ids {
		p := w.players[id]
		if w.rng.IntN(3) == 0 {
			p.r.Ack += uint64(w.rng.IntN(5))
			i := w.rng.IntN(len(p.fields))
			p.fields[i] = max(-game.MaxValue, min(game.MaxValue, p.fields[i]+int64(w.rng.IntN(21)-10)))
			if w.rng.IntN(20) == 0 {
				p.fields[w.rng.IntN(len(p.fields))] = w.value()
			}
		}
	}
	for k, kind := range wideSchema.Objects {
		objs := w.objects[k]
		for range w.rng.IntN(5) {
			id := w.rng.Int64N(30)
			if w.rng.IntN(50) == 0 {
				id = game.MaxValue - w.rng.Int64N(3)
			}
			if f, ok := objs[id]; ok {
				if w.rng.IntN(2) == 0 || len(f) == 0 {
					delete(objs, id)
				} else {
					f[w.rng.IntN(len(f))] = w.value()
				}
				continue
			}
			f := make([]int64, len(kind.Fields))
			for i := range f {
				f[i] = w.value()
			}
			objs[id] = f
		}
	}
}

func (w *world) fill(t testing.TB, enc *compact.Encoder) {
	t.Helper()
	var v game.View
	v.Globals = slices.Clone(w.globals)
	ids := make([]string, 0, len(w.players))
	for id := range w.players {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var roster []compact.Roster
	for _, id := range ids {
		p := w.players[id]
		roster = append(roster, p.r)
		v.Players = append(v.Players, game.PlayerView{ID: id, Fields: slices.Clone(p.fields)})
	}
	for k := range wideSchema.Objects {
		var l []game.Object
		for id, f := range w.objects[k] {
			l = append(l, game.Object{ID: id, Fields: slices.Clone(f)})
		}
		slices.SortFunc(l, func(a, b game.Object) int { return int(min(max(a.ID-b.ID, -1), 1)) })
		v.Objects = append(v.Objects, l)
	}
	if err := enc.Fill(w.h, wideSchema, roster, &v); err != nil {
		t.Fatal(err)
	}
}

// randomFrames returns a stream of frames of a random world, a keyframe first, with the states they stand for.
func randomFrames(t testing.TB, seed uint64, n int) (frames [][]byte, states []*compact.State) {
	w := newWorld(seed)
	enc := compact.NewEncoder()
	for i := range n {
		w.tick()
		w.fill(t, enc)
		var f []byte
		if i%25 == 0 {
			f = enc.AppendKeyframe(nil)
		} else {
			f = enc.AppendDelta(nil)
		}
		enc.Commit()
		var st compact.State
		st.CopyFrom(enc.Current())
		frames, states = append(frames, f), append(states, &st)
	}
	return frames, states
}

func TestRandomWorldsRoundTrip(t *testing.T) {
	for seed := range uint64(20) {
		frames, states := randomFrames(t, seed, 200)
		var dec compact.Decoder
		for i, f := range frames {
			if err := dec.Apply(f); err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, i, err)
			}
			if !dec.State().Equal(states[i]) {
				t.Fatalf("seed %d frame %d: the decoded state is not the encoded one", seed, i)
			}
			// The keyframe of the decoded state is the keyframe of the encoded one: slots survive decoding, so a
			// relay's keyframe is the owner's.
			if !bytes.Equal(compact.AppendKeyframe(nil, dec.State()), compact.AppendKeyframe(nil, states[i])) {
				t.Fatalf("seed %d frame %d: keyframes differ", seed, i)
			}
		}
	}
}

// Every proper prefix of every frame, and every frame with a byte more, is refused, and leaves the state as it
// was.
func TestTruncatedAndPaddedFramesAreRefused(t *testing.T) {
	frames, states := randomFrames(t, 99, 60)
	var dec compact.Decoder
	for i, f := range frames {
		for n := 0; n < len(f); n++ {
			if err := dec.Apply(f[:n]); !errors.Is(err, compact.ErrMalformed) && !errors.Is(err, compact.ErrBase) {
				t.Fatalf("frame %d cut to %d of %d bytes: %v", i, n, len(f), err)
			}
		}
		if err := dec.Apply(append(slices.Clone(f), 0)); !errors.Is(err, compact.ErrMalformed) {
			t.Fatalf("frame %d with a byte more: %v", i, err)
		}
		if i > 0 && !dec.State().Equal(states[i-1]) {
			t.Fatalf("frame %d: a refused frame changed the state", i)
		}
		if err := dec.Apply(f); err != nil {
			t.Fatal(err)
		}
	}
}
