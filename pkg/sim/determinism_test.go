package sim_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game/gametest"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// The conformance kit, run on the probe game, exercises the framework's rules as much as the game's.
func TestProbeGamePassesTheConformanceKit(t *testing.T) {
	input := func(r *rand.Rand) []byte { return []byte(strconv.Itoa(r.IntN(1001))) }
	invalid := [][]byte{[]byte("-1"), []byte("1001"), []byte("1.5"), []byte("123456789")}
	gametest.Run(t, probeGame(false), gametest.Config{Input: input, Invalid: invalid})
	gametest.Run(t, probeGame(true), gametest.Config{Input: input, Invalid: invalid})
}

// scriptConfig is a small, crowded room, so that short scripts reach the player limit, grace removal,
// tombstone expiry and the tombstone cap.
var scriptConfig = sim.Config{GraceTicks: 6, TombstoneTicks: 25, TombstoneCap: 2, MaxPlayers: 3}

var scriptPlayers = []string{"p0", "p1", "p2", "p3", "p4"}

// op is one step of a script: either Steps ticks or one event.
type op struct {
	steps int
	ev    sim.Event
}

// decodeScript derives a seed and a script from fuzz bytes. Every byte string is a valid script; most events
// are fresh (seq above the player's highest seq so far), some are stale replays, leaves of old connections,
// invalid, or jump too far.
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
			ops = append(ops, op{ev: joinEv(id, hi[p], "")})
		case 3, 4: // input, as data or as legacy keys
			hi[p] += 1 + uint64(arg%2)
			if arg&0x80 != 0 {
				ops = append(ops, op{ev: keysEv(id, hi[p], (arg>>3)&15)})
			} else {
				ops = append(ops, op{ev: inputEv(id, hi[p], int(arg))})
			}
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
				ops = append(ops, op{ev: inputEv(id, seq, int(arg>>4))})
			}
		case 7: // rarely: an invalid event, a seq jump beyond the bound, or a big one within it
			switch arg % 4 {
			case 0:
				ops = append(ops, op{ev: keysEv(id, hi[p]+1, 16|arg)})
			case 1:
				ops = append(ops, op{ev: inputEv(id, hi[p]+sim.MaxSeqJump+1, 1)})
			default:
				hi[p] += 1000
				ops = append(ops, op{ev: inputEv(id, hi[p], 2)})
			}
		}
	}
	return seed, ops
}

type result struct {
	final   string
	trace   [32]byte
	applied int
}

type mode int

const (
	deliverOnce   mode = iota
	deliverTwice       // every event delivered twice in a row
	deliverReplay      // plus earlier applied events redelivered in between
)

func runScript(t testing.TB, seed uint64, ops []op, m mode) result {
	t.Helper()
	r := sim.New(probeGame(true), scriptConfig, seed)
	h := sha256.New()
	var res result
	var history []sim.Event
	rng := seed ^ 0x5eed
	deliver := func(ev sim.Event, wantNoop bool) {
		ok, err := r.Apply(ev)
		if err != nil && !errors.Is(err, sim.ErrInvalidEvent) && !errors.Is(err, sim.ErrRoomFull) {
			t.Fatalf("Apply(%+v): unexpected error %v", ev, err)
		}
		if err != nil && ok {
			t.Fatalf("Apply(%+v) = true with error %v", ev, err)
		}
		if wantNoop {
			if ok {
				t.Fatalf("redelivered %+v was applied again", ev)
			}
			return
		}
		if ok {
			res.applied++
			history = append(history, ev)
		}
	}
	for _, o := range ops {
		if o.steps > 0 {
			steps(r, o.steps)
		} else {
			deliver(o.ev, false)
			if m >= deliverTwice {
				deliver(o.ev, true)
			}
		}
		// Exactly-once holds while the room remembers a player without a break (present or in a tombstone).
		history = slices.DeleteFunc(history, func(ev sim.Event) bool {
			_, present := r.Player(ev.Player)
			_, tomb := r.Tombstone(ev.Player)
			return !present && !tomb
		})
		if m == deliverReplay && len(history) > 0 {
			rng = splitmix(rng)
			if rng%2 == 0 {
				deliver(history[int((rng>>8)%uint64(len(history)))], true)
			}
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("after %+v: %v", o, err)
		}
		h.Write(r.AppendJSON(nil))
		h.Write([]byte{'\n'})
	}
	res.final = encode(r)
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
	// join p0, input, steps, leave, steps past grace, stale join.
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 2, 0, 3, 0x80, 0, 5, 5, 0, 0, 11, 6, 2})
	// several players, room full, leaves and rejoins.
	f.Add([]byte{9, 9, 9, 9, 9, 9, 9, 9,
		2, 0x10, 10, 0x20, 18, 0x30, 26, 0x40, 34, 0x50,
		3, 0x50, 11, 0xa0, 19, 0x90, 0, 3,
		5, 0, 13, 0, 0, 11, 0, 11,
		26, 0, 34, 0, 2, 0, 0, 11, 0, 11, 0, 11,
		6, 0x21, 6, 0x02, 15, 0x33, 23, 0x01, 7, 0, 15, 1, 23, 2})
	f.Add(append([]byte{0xff, 0, 0, 0, 0, 0, 0, 1, 2, 0, 3, 0xa0}, bytes.Repeat([]byte{0, 11}, 20)...))
	var all []byte
	for b := range 40 {
		all = append(all, byte(b), byte(b*37))
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScript(t, data)
	})
}

// TestRedeliveredEventsNeverChangeTheRoom checks the exactly-once property on many pseudo-random scripts.
func TestRedeliveredEventsNeverChangeTheRoom(t *testing.T) {
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

// TestScriptsReachInterestingStates guards the script generator: random scripts must exercise removals, a full
// room, the tombstone cap, tombstone expiry and refused seq jumps.
func TestScriptsReachInterestingStates(t *testing.T) {
	var removed, full, capped, expired, jumped bool
	for i := range 200 {
		x := splitmix(uint64(i) + 1)
		data := make([]byte, 8+400)
		for j := range data {
			x = splitmix(x)
			data[j] = byte(x)
		}
		seed, ops := decodeScript(data)
		r := sim.New(probeGame(true), scriptConfig, seed)
		for _, o := range ops {
			if o.steps > 0 {
				before, gone := len(r.Players()), len(r.Gone())
				for range o.steps {
					nb := len(r.Players())
					r.Step()
					capped = capped || (len(r.Players()) < nb && len(r.Gone()) == scriptConfig.TombstoneCap && gone == scriptConfig.TombstoneCap)
				}
				removed = removed || len(r.Players()) < before
				expired = expired || (gone > 0 && len(r.Gone()) == 0)
				continue
			}
			_, err := r.Apply(o.ev)
			full = full || errors.Is(err, sim.ErrRoomFull)
			jumped = jumped || errors.Is(err, sim.ErrSeqJump)
		}
	}
	if !removed || !full || !capped || !expired || !jumped {
		t.Fatalf("removed=%v full=%v capped=%v expired=%v jumped=%v", removed, full, capped, expired, jumped)
	}
}
