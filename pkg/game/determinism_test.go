package game_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// scriptConfig is a small, crowded room, so that short scripts reach walls,
// the player limit, grace removal and tombstone expiry.
var scriptConfig = game.Config{Width: 60, Height: 40, Speed: 7, GraceTicks: 6, TombstoneTicks: 25, TombstoneCap: 1000, MaxPlayers: 3}

var scriptPlayers = []string{"p0", "p1", "p2", "p3", "p4"}

var scriptNames = []string{"", "alice", "bob", "Zoë", "日本語", "🚀 rocket"}

// op is one step of a script: either Steps ticks or one event.
type op struct {
	steps int
	ev    game.Event
}

// decodeScript derives a seed and a script from fuzz bytes. Every byte string
// is a valid script; most events are fresh (seq above the player's highest
// seq so far), some are stale replays, leaves of old connections, or invalid.
func decodeScript(data []byte) (seed uint64, ops []op) {
	var head [8]byte
	n := copy(head[:], data)
	seed = binary.LittleEndian.Uint64(head[:])
	data = data[n:]
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	hi := make([]uint64, len(scriptPlayers))   // highest seq used per player
	conn := make([]uint64, len(scriptPlayers)) // last join seq per player
	for len(data) > 0 && len(ops) < 512 {
		b, arg := next(), next()
		p := int(b>>3) % len(scriptPlayers)
		id := scriptPlayers[p]
		switch b & 7 {
		case 0, 1:
			ops = append(ops, op{steps: 1 + int(arg%12)})
		case 2: // join of a new connection
			hi[p] += 1 + uint64(arg%3)
			conn[p] = hi[p]
			ops = append(ops, op{ev: joinEv(id, hi[p], scriptNames[int(arg>>4)%len(scriptNames)])})
		case 3, 4: // input
			hi[p] += 1 + uint64(arg%2)
			ops = append(ops, op{ev: inputEv(id, hi[p], game.Keys(arg>>4)&game.AllKeys)})
		case 5: // leave, usually of the last connection
			c := conn[p]
			if arg%4 == 0 || c == 0 {
				c = 1 + uint64(arg>>2)%(hi[p]+1)
			}
			ops = append(ops, op{ev: leaveEv(id, c)})
		case 6: // stale or out-of-order event with an arbitrary seq
			seq := uint64(arg>>1) % (hi[p] + 3) // may be 0 (invalid) or above hi
			if arg&1 == 0 {
				ops = append(ops, op{ev: joinEv(id, seq, "")})
			} else {
				ops = append(ops, op{ev: inputEv(id, seq, game.Keys(arg>>4))})
			}
		case 7: // rarely: an invalid event, or a big seq jump
			switch arg % 4 {
			case 0:
				ops = append(ops, op{ev: inputEv(id, hi[p]+1, game.Keys(16|arg))})
			case 1:
				ops = append(ops, op{ev: joinEv("bad:id", 1, "")})
			default:
				hi[p] += 1000
				ops = append(ops, op{ev: inputEv(id, hi[p], game.KeyDown)})
			}
		}
	}
	return seed, ops
}

// result is what one run of a script produced.
type result struct {
	final   string   // json.Marshal of the final state
	trace   [32]byte // hash of json.Marshal after every op
	applied int      // events that changed the state
}

// mode says how events are delivered during a run.
type mode int

const (
	deliverOnce   mode = iota
	deliverTwice       // every event delivered twice in a row
	deliverReplay      // plus earlier applied events redelivered in between
)

// runScript runs a script on a fresh state and checks, along the way, that
// the state stays valid and that no redelivery reports being applied.
func runScript(t testing.TB, seed uint64, ops []op, m mode) result {
	t.Helper()
	cfg := scriptConfig
	s := game.NewState(seed)
	h := sha256.New()
	var res result
	type done struct {
		ev   game.Event
		tick int64
	}
	var history []done // applied events, for deliverReplay
	rng := seed ^ 0x5eed
	deliver := func(ev game.Event, wantNoop bool) {
		ok, err := s.Apply(cfg, ev)
		if err != nil && !errors.Is(err, game.ErrInvalidEvent) && !errors.Is(err, game.ErrRoomFull) {
			t.Fatalf("Apply(%+v): unexpected error %v", ev, err)
		}
		if err != nil && ok {
			t.Fatalf("Apply(%+v) = true with error %v", ev, err)
		}
		if wantNoop {
			// A redelivery that changed the state without reporting it would
			// show up in the trace compared by checkScript.
			if ok {
				t.Fatalf("redelivered %+v was applied again", ev)
			}
			return
		}
		if ok {
			res.applied++
			history = append(history, done{ev, s.Tick})
		}
	}
	for _, o := range ops {
		if o.steps > 0 {
			steps(s, cfg, o.steps)
		} else {
			deliver(o.ev, false)
			if m >= deliverTwice {
				deliver(o.ev, true)
			}
		}
		if m == deliverReplay && len(history) > 0 {
			rng = splitmix(rng)
			if rng%2 == 0 {
				// Replay an applied event still covered by tombstones: the
				// exactly-once guarantee holds for TombstoneTicks.
				d := history[int((rng>>8)%uint64(len(history)))]
				if s.Tick-d.tick < cfg.TombstoneTicks {
					deliver(d.ev, true)
				}
			}
		}
		if err := s.Validate(cfg); err != nil {
			t.Fatalf("after %+v: %v", o, err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	res.final = marshal(t, s)
	copy(res.trace[:], h.Sum(nil))
	return res
}

func splitmix(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// checkScript is the determinism and exactly-once property for one script.
func checkScript(t testing.TB, data []byte) {
	t.Helper()
	seed, ops := decodeScript(data)
	a := runScript(t, seed, ops, deliverOnce)
	b := runScript(t, seed, ops, deliverOnce)
	if a.final != b.final || a.trace != b.trace {
		t.Fatalf("two runs of the same script differ:\n%s\n%s", a.final, b.final)
	}
	c := runScript(t, seed, ops, deliverTwice)
	if c.final != a.final || c.trace != a.trace || c.applied != a.applied {
		t.Fatalf("delivering every event twice changed the result:\nonce  %s\ntwice %s", a.final, c.final)
	}
	d := runScript(t, seed, ops, deliverReplay)
	if d.final != a.final || d.trace != a.trace || d.applied != a.applied {
		t.Fatalf("replaying applied events changed the result:\nonce   %s\nreplay %s", a.final, d.final)
	}
}

func FuzzDeterminism(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("seed0000"))
	// join p0, input right, steps, leave, steps past grace, stale join.
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 2, 0, 3, 0x80, 0, 5, 5, 0, 0, 11, 6, 2})
	// several players, room full, leaves and rejoins.
	f.Add([]byte{9, 9, 9, 9, 9, 9, 9, 9,
		2, 0x10, 10, 0x20, 18, 0x30, 26, 0x40, 34, 0x50, // joins of p0..p4 (p3, p4 rejected)
		3, 0x50, 11, 0xa0, 19, 0x90, 0, 3, // inputs, steps
		5, 0, 13, 0, 0, 11, 0, 11, // leaves of p0 and p1, steps past grace
		26, 0, 34, 0, 2, 0, 0, 11, 0, 11, 0, 11, // joins, tombstone expiry
		6, 0x21, 6, 0x02, 15, 0x33, 23, 0x01, 7, 0, 15, 1, 23, 2})
	// long walk into the walls.
	f.Add(append([]byte{0xff, 0, 0, 0, 0, 0, 0, 1, 2, 0, 3, 0xa0}, bytes.Repeat([]byte{0, 11}, 20)...))
	// every op kind for every player.
	var all []byte
	for b := range 40 {
		all = append(all, byte(b), byte(b*37))
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScript(t, data)
	})
}

// TestRedeliveredEventsNeverChangeState checks the exactly-once property on
// many pseudo-random scripts: duplicates and replays of applied events,
// interleaved anywhere, leave every intermediate and the final state as
// without them.
func TestRedeliveredEventsNeverChangeState(t *testing.T) {
	n := 100
	if testing.Short() {
		n = 20
	}
	for i := range n {
		x := splitmix(uint64(i) + 1)
		data := make([]byte, 8+2*(int(x%200)+1))
		for j := range data {
			x = splitmix(x)
			data[j] = byte(x)
		}
		checkScript(t, data)
	}
}

// TestScriptsReachInterestingStates guards the script generator: random
// scripts must exercise removals, tombstones, a full room and movement.
func TestScriptsReachInterestingStates(t *testing.T) {
	var removed, full, moved, tombstonesExpired bool
	for i := range 200 {
		x := splitmix(uint64(i) + 1)
		data := make([]byte, 8+400)
		for j := range data {
			x = splitmix(x)
			data[j] = byte(x)
		}
		seed, ops := decodeScript(data)
		s := game.NewState(seed)
		hadGone := false
		for _, o := range ops {
			if o.steps > 0 {
				before := len(s.Players)
				px := map[string]int{}
				for _, p := range s.Players {
					px[p.ID] = p.X*1000 + p.Y
				}
				steps(s, scriptConfig, o.steps)
				removed = removed || len(s.Players) < before
				for _, p := range s.Players {
					if v, ok := px[p.ID]; ok && v != p.X*1000+p.Y {
						moved = true
					}
				}
				if hadGone && len(s.Gone) == 0 {
					tombstonesExpired = true
				}
				hadGone = len(s.Gone) > 0
				continue
			}
			if _, err := s.Apply(scriptConfig, o.ev); errors.Is(err, game.ErrRoomFull) {
				full = true
			}
			hadGone = len(s.Gone) > 0
		}
	}
	if !removed || !full || !moved || !tombstonesExpired {
		t.Fatalf("removed=%v full=%v moved=%v tombstonesExpired=%v", removed, full, moved, tombstonesExpired)
	}
}
